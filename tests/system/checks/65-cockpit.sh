# SPDX-License-Identifier: MIT
# The Cockpit page as packaged (lium-cvm-cockpit, built where node and npm exist: not in the
# trixie build root): apt installs it beside lium-cvm; the operator's own cockpit-bridge lists
# it, and a real cockpit-ws whose session bridge runs as the operator serves its files.
. "$LIUM_TEST/lib.sh"

set -- /lium-test/deb/lium-cvm-cockpit_*_all.deb
if [ ! -f "$1" ] || ! command -v cockpit-bridge >/dev/null; then
  echo absent >"$RESULTS/deb"
  exit 0
fi
echo present >"$RESULTS/deb"
record apt-install apt-get install -y --no-install-recommends "$1"
record files dpkg -L lium-cvm-cockpit
record packages as_op cockpit-bridge --packages

port=9191
runuser -u lcvm-op -- /usr/lib/cockpit/cockpit-ws --no-tls --local-session=cockpit-bridge \
  -a 127.0.0.1 -p "$port" >"$RESULTS/cockpit-ws.log" 2>&1 &
ws=$!
wait_for 30 curl -sf -o /dev/null "http://127.0.0.1:$port/cockpit/@localhost/lium-cvm/manifest.json"
record manifest curl -sf "http://127.0.0.1:$port/cockpit/@localhost/lium-cvm/manifest.json"
record index curl -sf "http://127.0.0.1:$port/cockpit/@localhost/lium-cvm/index.html"
kill "$ws"
wait "$ws" 2>/dev/null || true  # 143: it ended on our SIGTERM
