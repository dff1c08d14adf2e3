// SPDX-License-Identifier: MIT
// Entry point of the lium-cvm Cockpit page: three tabs (Host, GPUs, CVMs) over the helper's
// D-Bus API and the frontend's --json output. See lium.js for the only ways to the host.
import React from "react";
import { createRoot } from "react-dom/client";
import "@patternfly/patternfly/patternfly.css";
import "./index.css";
import { App } from "./app.jsx";

document.addEventListener("DOMContentLoaded", () => {
    createRoot(document.getElementById("app")).render(<App />);
});
