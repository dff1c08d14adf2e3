# SPDX-License-Identifier: MIT
# The metrics unit under systemd with its own sandbox: installed, neither enabled nor started
# by the package; started by hand (as the timer would), it writes node_exporter's textfile.
. "$LIUM_TEST/lib.sh"

record timer-enabled systemctl is-enabled lium-cvm-metrics.timer
record timer-active systemctl is-active lium-cvm-metrics.timer
mkdir -p /var/lib/prometheus/node-exporter
record start systemctl start lium-cvm-metrics.service
record result systemctl show lium-cvm-metrics.service -p Result -p ExecMainStatus
record prom cat /var/lib/prometheus/node-exporter/lium_cvm.prom
record journal journalctl -u lium-cvm-metrics.service --no-pager -o cat
