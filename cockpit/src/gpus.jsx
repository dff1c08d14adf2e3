// SPDX-License-Identifier: MIT
// GPUs tab: NVIDIA GPUs and NVSwitches from `lium-cvm lsgpu`, which VM holds each (the Vm
// objects' Gpus), and the helper's device jobs (bind, unbind, CC/PPCIe mode) with progress.
import React, { useCallback, useEffect, useState } from "react";
import { Alert, Button, Flex, FlexItem, FormSelect, FormSelectOption, Spinner } from "@patternfly/react-core";
import { Table, Tbody, Td, Th, Thead, Tr } from "@patternfly/react-table";
import { callJob, cli, HOST_IFACE, watchVms } from "./lium.js";
import { Outcome } from "./common.jsx";

const MODES = [
    { value: "", label: "Set mode…" },
    { value: "cc:on", label: "CC on (one GPU per VM)" },
    { value: "cc:off", label: "CC off" },
    { value: "cc:devtools", label: "CC devtools" },
    { value: "ppcie:on", label: "Protected PCIe on (whole board)" },
    { value: "ppcie:off", label: "Protected PCIe off" },
];

function modeText(d) {
    if (!d.mode)
        return { cc: "not queried", ppcie: "not queried" };
    return { cc: d.mode.cc || "unknown", ppcie: d.mode.ppcie || "unknown" };
}

function holders(d, vmsBySlot) {
    const out = [];
    if (vmsBySlot[d.slot])
        out.push(`VM ${vmsBySlot[d.slot]}`);
    for (const h of d.held_by || [])
        out.push(`${h.command || "pid"} (${h.pid})`);
    return out.join(", ");
}

function useVmsBySlot() {
    const [bySlot, setBySlot] = useState({});
    useEffect(() => {
        const watch = watchVms(list => {
            const map = {};
            for (const p of list) {
                if (["starting", "running", "stopping"].includes(p.State))
                    for (const slot of p.Gpus || [])
                        map[slot] = p.Name;
            }
            setBySlot(map);
        });
        return () => watch.close();
    }, []);
    return bySlot;
}

function GpuRow({ d, vmsBySlot, busy, act }) {
    const [mode, setMode] = useState("");
    const m = modeText(d);
    const onVfio = d.driver === "vfio-pci";
    const applyMode = () => {
        const [key, value] = mode.split(":");
        const cc = key === "cc" ? value : "";
        const ppcie = key === "ppcie" ? value : "";
        act(`Mode of ${d.slot}`, "SetGpuMode", [d.slot, cc, ppcie, 0]);
    };
    return (
        <Tr data-slot={d.slot}>
            <Td dataLabel="Slot"><code>{d.slot}</code></Td>
            <Td dataLabel="Kind">{d.kind}</Td>
            <Td dataLabel="Model">{d.model || d.id}</Td>
            <Td dataLabel="Driver" className="lcvm-driver">{d.driver || "none"}</Td>
            <Td dataLabel="IOMMU group">{d.iommu_group ?? "none"}</Td>
            <Td dataLabel="CC">{m.cc}</Td>
            <Td dataLabel="PPCIe">{m.ppcie}</Td>
            <Td dataLabel="Held by" className="lcvm-held">{holders(d, vmsBySlot)}</Td>
            <Td dataLabel="Actions">
                <Flex spaceItems={{ default: "spaceItemsSm" }} flexWrap={{ default: "nowrap" }}>
                    <FlexItem>
                        {onVfio
                            ? <Button size="sm" variant="secondary" className="lcvm-unbind" isDisabled={busy}
                                      onClick={() => act(`Unbind ${d.slot}`, "UnbindVfio", [[d.slot], 0])}>
                                Unbind
                            </Button>
                            : <Button size="sm" variant="secondary" className="lcvm-bind" isDisabled={busy}
                                      onClick={() => act(`Bind ${d.slot} to vfio-pci`, "BindVfio", [[d.slot], 0])}>
                                Bind to vfio-pci
                            </Button>}
                    </FlexItem>
                    <FlexItem>
                        <FormSelect value={mode} aria-label={`mode for ${d.slot}`} className="lcvm-mode" style={{ minInlineSize: "16rem" }}
                                    onChange={(event, value) => setMode(value)}>
                            {MODES.map(o => <FormSelectOption key={o.value} value={o.value} label={o.label} />)}
                        </FormSelect>
                    </FlexItem>
                    <FlexItem>
                        <Button size="sm" variant="secondary" className="lcvm-apply-mode"
                                isDisabled={busy || !mode} onClick={applyMode}>Apply</Button>
                    </FlexItem>
                </Flex>
            </Td>
        </Tr>
    );
}

export function GpusTab() {
    const [inventory, setInventory] = useState(null);
    const [error, setError] = useState(null);
    const [outcome, setOutcome] = useState(null);
    const vmsBySlot = useVmsBySlot();

    const load = useCallback(() => {
        cli(["lsgpu"]).then(doc => { setInventory(doc); setError(null) })
                .catch(setError);
    }, []);
    useEffect(load, [load]);

    const act = (title, method, args) => {
        setOutcome({ running: true, title, progress: 0, message: "Asking the helper…" });
        callJob(HOST_IFACE, method, args,
                p => setOutcome({ running: true, title, progress: p.progress, message: p.message }))
                .then(result => setOutcome({ title, message: result }))
                .catch(err => setOutcome({ title, error: err }))
                .finally(load);
    };

    const busy = !!(outcome && outcome.running);
    return (
        <Flex direction={{ default: "column" }} id="gpus-tab">
            <Outcome outcome={outcome} onClose={() => setOutcome(null)} />
            {error && <Alert variant="danger" isInline title="lium-cvm lsgpu could not run">{error.message}</Alert>}
            {inventory && !inventory.iommu_active &&
                <Alert variant="warning" isInline title="The IOMMU is off: GPUs cannot be passed to VMs" />}
            {!inventory && !error && <Spinner aria-label="listing GPUs" />}
            {inventory && inventory.devices.length === 0 &&
                <Alert variant="info" isInline title="No NVIDIA GPU or NVSwitch on this host" />}
            {inventory && inventory.devices.length > 0 &&
                <Table variant="compact" aria-label="GPUs and NVSwitches" id="gpu-table">
                    <Thead>
                        <Tr>
                            <Th>Slot</Th><Th>Kind</Th><Th>Model</Th><Th>Driver</Th><Th>IOMMU group</Th>
                            <Th>CC</Th><Th>PPCIe</Th><Th>Held by</Th><Th>Actions</Th>
                        </Tr>
                    </Thead>
                    <Tbody>
                        {inventory.devices.map(d =>
                            <GpuRow key={d.slot} d={d} vmsBySlot={vmsBySlot} busy={busy} act={act} />)}
                    </Tbody>
                </Table>}
        </Flex>
    );
}
