#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the booted system-suite container (lium-test-probe.service), as root: runs each
# /lium-test/src/checks/NN-NAME.sh in name order, each with RESULTS=/lium-test/results/NN-NAME (a
# directory it fills through lib.sh's `record`), and writes its log and exit status there.
# tests/system/test_*.py assert on those files on the host after the container is gone.
set -u
results=/lium-test/results
export LIUM_TEST=/lium-test/src
for check in "$LIUM_TEST"/checks/*.sh; do
  name=$(basename "$check" .sh)
  mkdir -p "$results/$name"
  echo "== $name"
  RESULTS=$results/$name sh -u "$check" >"$results/$name/check.log" 2>&1
  echo $? >"$results/$name/check.rc"
done
date -u +%s >"$results/probe.done"
