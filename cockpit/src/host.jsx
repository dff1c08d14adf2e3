// SPDX-License-Identifier: MIT
// Host tab: the `lium-cvm check` report grouped by area (the first part of each check id),
// each failure or warning with its remedy, and a button to run the checks again.
import React, { useCallback, useEffect, useState } from "react";
import {
    Alert, Button, Card, CardBody, CardTitle, Flex, FlexItem, Label, LabelGroup, Spinner,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { cli } from "./lium.js";
import { StatusLabel } from "./common.jsx";

const ORDER = { fail: 0, warn: 1, unknown: 2, ok: 3, skip: 4 };

function groupByArea(checks) {
    const groups = new Map();
    for (const c of checks) {
        const area = c.id.split(".")[0];
        if (!groups.has(area))
            groups.set(area, []);
        groups.get(area).push(c);
    }
    const worst = list => Math.min(...list.map(c => ORDER[c.status] ?? 5));
    return [...groups.entries()].sort((a, b) => worst(a[1]) - worst(b[1]) || a[0].localeCompare(b[0]));
}

function AreaCard({ area, checks }) {
    return (
        <Card isCompact id={`area-${area}`} className="lcvm-area">
            <CardTitle>{area}</CardTitle>
            <CardBody>
                <Table variant="compact" aria-label={`${area} checks`}>
                    <Thead>
                        <Tr><Th>Status</Th><Th>Check</Th><Th>Observed</Th><Th>Expected</Th><Th>Remedy</Th></Tr>
                    </Thead>
                    <Tbody>
                        {checks.map(c => (
                            <Tr key={c.id} data-check-id={c.id} data-status={c.status}>
                                <Td dataLabel="Status"><StatusLabel status={c.status} /></Td>
                                <Td dataLabel="Check">{c.title}</Td>
                                <Td dataLabel="Observed">{c.observed}</Td>
                                <Td dataLabel="Expected">{c.expected}</Td>
                                <Td dataLabel="Remedy" className="lcvm-remedy">
                                    {c.status === "ok" ? null : c.remedy}
                                </Td>
                            </Tr>
                        ))}
                    </Tbody>
                </Table>
            </CardBody>
        </Card>
    );
}

export function HostTab() {
    const [report, setReport] = useState(null);
    const [error, setError] = useState(null);
    const [busy, setBusy] = useState(false);

    const load = useCallback(() => {
        setBusy(true);
        cli(["check"])
                .then(doc => { setReport(doc); setError(null) })
                .catch(setError)
                .finally(() => setBusy(false));
    }, []);
    useEffect(load, [load]);

    const s = report ? report.summary : null;
    return (
        <Flex direction={{ default: "column" }} id="host-tab">
            <Flex alignItems={{ default: "alignItemsCenter" }}>
                <FlexItem>
                    <Button id="check-rerun" variant="secondary" onClick={load} isDisabled={busy}>
                        Run the checks again
                    </Button>
                </FlexItem>
                {busy && <FlexItem><Spinner size="md" aria-label="checking" /></FlexItem>}
                {s &&
                    <FlexItem>
                        <LabelGroup id="check-summary" numLabels={5}>
                            <Label color="green">{s.ok} ok</Label>
                            <Label color="orange">{s.warn} warnings</Label>
                            <Label color="red">{s.fail} failed</Label>
                            <Label color="grey">{s.unknown} unknown</Label>
                            <Label color="grey">{s.skip} skipped</Label>
                        </LabelGroup>
                    </FlexItem>}
            </Flex>
            {error && <Alert variant="danger" isInline title="lium-cvm check could not run">{error.message}</Alert>}
            {report &&
                <Alert id="check-verdict" variant={report.ready ? "success" : "warning"} isInline
                       title={report.ready ? "This host is ready for TDX CVMs with GPUs"
                           : "This host is not ready: fix the failed checks below, each says how"} />}
            {report && groupByArea(report.checks).map(([area, checks]) =>
                <AreaCard key={area} area={area} checks={checks} />)}
        </Flex>
    );
}
