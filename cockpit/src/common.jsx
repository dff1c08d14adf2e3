// SPDX-License-Identifier: MIT
// Small pieces the three tabs share: status labels, an action's outcome, a job's progress.
import React from "react";
import { Alert, AlertActionCloseButton, Label, Progress } from "@patternfly/react-core";

const STATUS_COLOR = { ok: "green", warn: "orange", fail: "red", unknown: "grey", skip: "grey" };

export function StatusLabel({ status }) {
    return <Label color={STATUS_COLOR[status] || "grey"} className="lcvm-status">{status}</Label>;
}

const STATE_COLOR = {
    running: "green", starting: "blue", stopping: "blue", stopped: "grey",
    defined: "grey", failed: "red",
};

export function StateLabel({ state }) {
    return <Label color={STATE_COLOR[state] || "grey"} className="lcvm-state">{state}</Label>;
}

// What the last action did: a job in flight, its success, or the helper's refusal verbatim.
export function Outcome({ outcome, onClose }) {
    if (!outcome)
        return null;
    if (outcome.running) {
        const pct = Math.round(100 * (outcome.progress || 0));
        return (
            <Progress id="job-progress" value={pct} title={outcome.title}
                      label={outcome.message || `${pct}%`} />
        );
    }
    const close = onClose ? <AlertActionCloseButton onClose={onClose} /> : null;
    if (outcome.error) {
        const refused = /NotAuthorized|InteractiveAuthorizationRequired/.test(outcome.error.dbusName || "");
        return (
            <Alert id="action-error" variant="danger" isInline title={outcome.title} actionClose={close}>
                <p className="lcvm-error-text">{outcome.error.message}</p>
                {refused &&
                    <p>Operators are the members of group <code>lium-cvm</code>; ask an administrator to add you.</p>}
            </Alert>
        );
    }
    return (
        <Alert id="action-ok" variant="success" isInline title={outcome.title} actionClose={close}>
            {outcome.message}
        </Alert>
    );
}
