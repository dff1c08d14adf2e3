# SPDX-License-Identifier: MIT
"""The Cockpit page as a package on a real systemd host (checks/65-cockpit.sh): installed with
apt beside lium-cvm, listed by the operator's own cockpit-bridge, and served by a real
cockpit-ws whose session bridge runs as the operator. The page itself is driven in a browser
by tests/run/test_cockpit.py."""

import json

import pytest

from test_system import RESULTS, ok


def test_the_packaged_page_is_found_and_served_by_the_operators_bridge():
    if (RESULTS / "65-cockpit" / "deb").read_text().strip() == "absent":
        pytest.skip("no lium-cvm-cockpit package for this release (built only where node and "
                    "npm are installed: not in the trixie build root) or no cockpit-bridge")
    ok("65-cockpit", "apt-install")
    files = ok("65-cockpit", "files").out.split()
    for name in ("index.html", "index.js", "index.css", "manifest.json"):
        assert f"/usr/share/cockpit/lium-cvm/{name}" in files
    listed = ok("65-cockpit", "packages").out.splitlines()
    # NAME  LABEL…  PATH
    assert any(line.split()[0] == "lium-cvm" and line.split()[-1] == "/usr/share/cockpit/lium-cvm"
               for line in listed if line.strip()), listed
    manifest = json.loads(ok("65-cockpit", "manifest").out)
    assert manifest["menu"]["index"]["label"] == "Confidential VMs"
    assert '<script src="../base1/cockpit.js"></script>' in ok("65-cockpit", "index").out
