// SPDX-License-Identifier: MIT
// The page frame: the helper's version (Host.GetInfo, allowed to everyone) and the tabs.
import React, { useEffect, useState } from "react";
import { Alert, PageSection, Tab, Tabs, TabTitleText, Title, Content } from "@patternfly/react-core";
import { call, HOST_IFACE } from "./lium.js";
import { HostTab } from "./host.jsx";
import { GpusTab } from "./gpus.jsx";
import { VmsTab } from "./vms.jsx";

function useHelperInfo() {
    const [info, setInfo] = useState(null);
    const [error, setError] = useState(null);
    useEffect(() => {
        call(HOST_IFACE, "GetInfo", [])
                .then(([dict]) => setInfo(dict))
                .catch(setError);
    }, []);
    return [info, error];
}

export function App() {
    const [tab, setTab] = useState(() => window.cockpit.location.path[0] || "host");
    const [info, infoError] = useHelperInfo();

    useEffect(() => {
        const onChange = () => setTab(window.cockpit.location.path[0] || "host");
        window.cockpit.addEventListener("locationchanged", onChange);
        return () => window.cockpit.removeEventListener("locationchanged", onChange);
    }, []);

    const select = (event, key) => {
        setTab(key);
        window.cockpit.location.go([key]);
    };
    const version = info && info.version ? info.version.v : null;

    return (
        <div className="lcvm-page">
            <PageSection>
                <Title headingLevel="h1">Confidential VMs</Title>
                <Content component="p" id="helper-version">
                    {version ? `lium-cvm helper ${version} on the system bus` : "Asking the lium-cvm helper…"}
                </Content>
                {infoError &&
                    <Alert variant="danger" isInline title="The lium-cvm helper does not answer">
                        {infoError.message}
                    </Alert>}
            </PageSection>
            <PageSection>
                <Tabs activeKey={tab} onSelect={select} mountOnEnter>
                    <Tab eventKey="host" id="tab-host" title={<TabTitleText>Host</TabTitleText>}>
                        <HostTab />
                    </Tab>
                    <Tab eventKey="gpus" id="tab-gpus" title={<TabTitleText>GPUs</TabTitleText>}>
                        <GpusTab />
                    </Tab>
                    <Tab eventKey="vms" id="tab-vms" title={<TabTitleText>CVMs</TabTitleText>}>
                        <VmsTab />
                    </Tab>
                </Tabs>
            </PageSection>
        </div>
    );
}
