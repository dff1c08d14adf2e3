# SPDX-License-Identifier: MIT
"""What the harness benchmarks share: run measure(h, users, args) inside a fresh integration
harness (tests/integration/lcvm_harness.py) after checking root and the bench's own programs.
Returns (figures, None), or (None, exit status) when it cannot run: 77 (meson's skip) without
root or a harness tool, 1 when a program is missing."""

import sys


def run_in_harness(lh, prepare, measure, args, name, programs):
    lh.ensure_private_mount_namespace([sys.executable] + sys.argv)
    reason = lh.unavailable_reason()
    if reason is not None:
        print(f"SKIP: {reason}")
        return None, 77
    for program in programs:
        if not program.exists():
            print(f"{program} is missing: build it first (ninja -C BUILD)")
            return None, 1
    users = lh.TestUsers()
    try:
        with lh.Harness(users, prepare=prepare, name=name) as h:
            return measure(h, users, args), None
    finally:
        users.close()
