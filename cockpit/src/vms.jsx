// SPDX-License-Identifier: MIT
// CVMs tab: every VM definition (`lium-cvm list`) joined with its live Vm object (State,
// StartedAt, Ports, BootProgress, ComposeHash … kept current by PropertiesChanged); start and
// stop through the Manager (the stop Job's steps shown); the definition (`show`) and the
// console that follows (`logs -f`) of the selected VM.
import React, { useCallback, useEffect, useRef, useState } from "react";
import {
    Alert, Button, Card, CardBody, CardTitle, CodeBlock, CodeBlockCode, DescriptionList,
    DescriptionListDescription, DescriptionListGroup, DescriptionListTerm, Flex, FlexItem, Spinner,
} from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { call, callJob, cli, followConsole, formatUptime, MANAGER_IFACE, printable, watchVms } from "./lium.js";
import { Outcome, StateLabel } from "./common.jsx";

const LIVE = ["starting", "running", "stopping"];
const CONSOLE_LIMIT = 200000;

function useLiveVms() {
    const [live, setLive] = useState({});
    const watch = useRef(null);
    useEffect(() => {
        watch.current = watchVms(list => {
            const byName = {};
            for (const p of list) {
                byName[p.Name] = {
                    state: p.State, pid: p.Pid, startedAt: p.StartedAt, exitStatus: p.ExitStatus,
                    gpus: p.Gpus || [], ports: p.Ports || [], composeHash: p.ComposeHash,
                    bootProgress: printable(p.BootProgress), bootError: printable(p.BootError),
                    unexpectedExit: printable(p.UnexpectedExit),
                };
            }
            setLive(byName);
        });
        return () => watch.current.close();
    }, []);
    return [live, () => watch.current && watch.current.refresh()];
}

function useNow() {
    const [now, setNow] = useState(Date.now());
    useEffect(() => {
        const t = window.setInterval(() => setNow(Date.now()), 1000);
        return () => window.clearInterval(t);
    }, []);
    return now;
}

function Definition({ name }) {
    const [doc, setDoc] = useState(null);
    const [error, setError] = useState(null);
    useEffect(() => { cli(["show", name]).then(setDoc).catch(setError) }, [name]);
    if (error)
        return <Alert variant="danger" isInline title="lium-cvm show could not run">{error.message}</Alert>;
    if (!doc)
        return <Spinner size="md" aria-label="reading the definition" />;
    const rows = Object.entries(doc).filter(([, v]) => v !== null && typeof v !== "object" || Array.isArray(v));
    return (
        <DescriptionList isHorizontal isCompact id="vm-definition">
            {rows.map(([k, v]) => (
                <DescriptionListGroup key={k}>
                    <DescriptionListTerm>{k}</DescriptionListTerm>
                    <DescriptionListDescription>
                        {Array.isArray(v) ? v.map(x => typeof x === "object" ? JSON.stringify(x) : String(x)).join(", ") : String(v)}
                    </DescriptionListDescription>
                </DescriptionListGroup>
            ))}
        </DescriptionList>
    );
}

function Console({ name }) {
    const [text, setText] = useState("");
    const [ended, setEnded] = useState(null);
    const box = useRef(null);
    useEffect(() => {
        setText("");
        setEnded(null);
        const proc = followConsole(name, 200,
                                   chunk => setText(t => (t + chunk).slice(-CONSOLE_LIMIT)),
                                   err => setEnded(err ? err.message : "the console ended"));
        return () => proc.close();
    }, [name]);
    useEffect(() => { if (box.current) box.current.scrollTop = box.current.scrollHeight }, [text]);
    return (
        <>
            <div ref={box} className="lcvm-console-box">
                <CodeBlock><CodeBlockCode id="vm-console">{text}</CodeBlockCode></CodeBlock>
            </div>
            {ended && <p className="lcvm-console-ended">{ended}</p>}
        </>
    );
}

function TitledCard({ title, children }) {
    return (
        <FlexItem>
            <Card isCompact>
                <CardTitle>{title}</CardTitle>
                <CardBody>{children}</CardBody>
            </Card>
        </FlexItem>
    );
}

function VmRow({ name, def, vm, now, busy, onStart, onStop, onSelect, selected }) {
    const state = vm ? vm.state : (def ? def.state : "unknown");
    const live = LIVE.includes(state);
    return (
        <Tr data-vm={name} isRowSelected={selected}>
            <Td dataLabel="Name"><Button variant="link" isInline onClick={onSelect} className="lcvm-select">{name}</Button></Td>
            <Td dataLabel="State" className="lcvm-vm-state"><StateLabel state={state} /></Td>
            <Td dataLabel="Uptime">{vm && live ? formatUptime(vm.startedAt, now) : ""}</Td>
            <Td dataLabel="Ports">{vm ? vm.ports.join(" ") : ""}</Td>
            <Td dataLabel="Boot progress" className="lcvm-boot">
                {vm ? (vm.unexpectedExit || vm.bootError || vm.bootProgress) : ""}
            </Td>
            <Td dataLabel="Compose hash"><code>{vm && vm.composeHash ? vm.composeHash.slice(0, 12) : ""}</code></Td>
            <Td dataLabel="Actions">
                {live
                    ? <Button size="sm" variant="secondary" className="lcvm-stop" isDisabled={busy} onClick={onStop}>Stop</Button>
                    : <Button size="sm" variant="primary" className="lcvm-start" isDisabled={busy || (def && def.problem)}
                              onClick={onStart}>Start</Button>}
            </Td>
        </Tr>
    );
}

export function VmsTab() {
    const [defs, setDefs] = useState(null);
    const [error, setError] = useState(null);
    const [outcome, setOutcome] = useState(null);
    const [selected, setSelected] = useState(null);
    const [live, refreshLive] = useLiveVms();
    const now = useNow();

    const load = useCallback(() => {
        cli(["list"]).then(list => { setDefs(list); setError(null) }).catch(setError);
    }, []);
    useEffect(load, [load]);

    const start = name => {
        const title = `Start ${name}`;
        setOutcome({ running: true, title, progress: 0, message: "Asking the helper…" });
        call(MANAGER_IFACE, "StartVm", [name, 0])
                .then(() => setOutcome({ title, message: `QEMU runs; the boot progress shows in the table.` }))
                .catch(err => setOutcome({ title, error: err }))
                .finally(() => { load(); refreshLive() });
    };
    const stop = name => {
        const title = `Stop ${name}`;
        setOutcome({ running: true, title, progress: 0, message: "Asking the helper…" });
        callJob(MANAGER_IFACE, "StopVm", [name, 0, 0],
                p => setOutcome({ running: true, title, progress: p.progress, message: p.message }))
                .then(result => setOutcome({ title, message: result }))
                .catch(err => setOutcome({ title, error: err }))
                .finally(() => { load(); refreshLive() });
    };

    const names = [...new Set([...(defs || []).map(d => d.name), ...Object.keys(live)])].sort();
    const busy = !!(outcome && outcome.running);
    return (
        <Flex direction={{ default: "column" }} id="vms-tab">
            <Outcome outcome={outcome} onClose={() => setOutcome(null)} />
            {error && <Alert id="vms-error" variant="danger" isInline title="lium-cvm list could not run">{error.message}</Alert>}
            {!defs && !error && <Spinner aria-label="listing VMs" />}
            {defs && names.length === 0 &&
                <Alert variant="info" isInline title="No VM is defined yet">
                    Define one on the host with <code>lium-cvm new NAME</code> from a Lium <code>.env</code>.
                </Alert>}
            {names.length > 0 &&
                <Table variant="compact" aria-label="CVMs" id="vm-table">
                    <Thead>
                        <Tr><Th>Name</Th><Th>State</Th><Th>Uptime</Th><Th>Ports</Th><Th>Boot progress</Th>
                            <Th>Compose hash</Th><Th>Actions</Th></Tr>
                    </Thead>
                    <Tbody>
                        {names.map(name =>
                            <VmRow key={name} name={name} def={(defs || []).find(d => d.name === name)}
                                   vm={live[name]} now={now} busy={busy} selected={selected === name}
                                   onStart={() => start(name)} onStop={() => stop(name)}
                                   onSelect={() => setSelected(name)} />)}
                    </Tbody>
                </Table>}
            {selected &&
                <Flex direction={{ default: "column" }}>
                    <TitledCard title={`Definition of ${selected}`}><Definition name={selected} /></TitledCard>
                    <TitledCard title={`Console of ${selected}`}><Console name={selected} /></TitledCard>
                </Flex>}
        </Flex>
    );
}
