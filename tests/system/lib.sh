# SPDX-License-Identifier: MIT
# Sourced by tests/system/checks/*.sh inside the container. A check records facts; it asserts
# nothing itself (tests/system/test_*.py does, on the host):
#   record NAME CMD…   runs CMD; its stdout, stderr and exit status go to
#                      $RESULTS/NAME.out, NAME.err and NAME.rc
#   as_op CMD…         CMD as lcvm-op (group lium-cvm: every action allowed by the rules)
#   as_out CMD…        CMD as lcvm-out (no group, no rule: refused without a password)
#   wait_for SECONDS CMD…   runs CMD every 0.2 s until it succeeds (within SECONDS); prints
#                      the seconds it waited
export DEBIAN_FRONTEND=noninteractive
export SYSTEMD_PAGER='' PAGER=cat SYSTEMD_COLORS=0
AUDIT_MESSAGE_ID=6b1f3c2a9d4e4f0b8a7c5e2d1f0a9b38
FAKE_SYSFS=/var/lib/lium-cvm/fake-sys

record() {
  name=$1
  shift
  "$@" >"$RESULTS/$name.out" 2>"$RESULTS/$name.err"
  echo $? >"$RESULTS/$name.rc"
}

as_op() { runuser -u lcvm-op -- "$@"; }
as_out() { runuser -u lcvm-out -- "$@"; }

wait_for() {
  limit=$1
  shift
  start=$(date +%s)
  while ! "$@" >/dev/null 2>&1; do
    [ $(($(date +%s) - start)) -ge "$limit" ] && return 1
    sleep 0.2
  done
  echo $(($(date +%s) - start))
}
