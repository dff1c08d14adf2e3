# SPDX-License-Identifier: MIT
"""lium-cvm-metrics.service and its timer as the package ships them, under systemd in the system
suite's container (checks/70-metrics.sh): not enabled by the install, and the service's own
sandbox lets it ask the helper and write node_exporter's textfile."""

from test_system import ok, rec


def test_metrics_timer_is_installed_but_left_to_the_administrator():
    assert rec("70-metrics", "timer-enabled").out.strip() == "disabled"
    assert rec("70-metrics", "timer-active").out.strip() == "inactive"


def test_metrics_service_writes_the_textfile_under_its_sandbox():
    ok("70-metrics", "start")
    props = ok("70-metrics", "result").props()
    assert props["Result"] == "success" and props["ExecMainStatus"] == "0", \
        ok("70-metrics", "journal").out
    prom = ok("70-metrics", "prom").out
    values = {line.split()[0]: line.split()[-1] for line in prom.splitlines()
              if line and not line.startswith("#")}
    assert values.get("lium_cvm_helper_up") == "1", prom
    assert values.get("lium_cvm_check_up") == "1", prom
