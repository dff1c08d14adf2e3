#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Builds the page into dist/ with esbuild, offline, from the pinned node_modules: one
// index.js (React + PatternFly), one index.css, the HTML and the manifest. Cockpit's own
// cockpit.js is not bundled: the page loads ../base1/cockpit.js from the running Cockpit.
"use strict";
const esbuild = require("esbuild");
const fs = require("fs");
const path = require("path");

const src = path.join(__dirname, "src");
const out = process.env.LCVM_COCKPIT_OUT || path.join(__dirname, "dist");
const production = process.env.NODE_ENV !== "development";

async function main() {
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out, { recursive: true });
    await esbuild.build({
        entryPoints: { index: path.join(src, "index.jsx") },
        bundle: true,
        outdir: out,
        target: ["es2020"],
        minify: production,
        sourcemap: false,
        legalComments: "external",
        loader: { ".woff": "file", ".woff2": "file", ".svg": "dataurl", ".jpg": "file", ".png": "file" },
        define: { "process.env.NODE_ENV": JSON.stringify(production ? "production" : "development") },
        nodePaths: (process.env.NODE_PATH || "").split(":").filter(Boolean),
        logLevel: "warning",
    });
    for (const f of ["index.html", "manifest.json"])
        fs.copyFileSync(path.join(src, f), path.join(out, f));
}

main().catch(err => { console.error(err.message || err); process.exit(1); });
