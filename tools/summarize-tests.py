#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Prints the closing line of a test run from meson's testlog.json files:
'N passed, N failed, N skipped'. Exits 1 when any test failed or none ran."""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            lines = f.readlines()
    except OSError as e:
        print(f"missing test log {path}: {e}", file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        result = json.loads(line).get("result")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
