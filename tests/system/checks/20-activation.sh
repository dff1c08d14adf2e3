# SPDX-License-Identifier: MIT
# D-Bus activation under systemd: nothing runs before the first call; the first call starts
# lium-cvm-helper.service; it exits by itself when idle (a clean exit, not a failure) and the
# next call starts it again.
. "$LIUM_TEST/lib.sh"

has_owner() {
  busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner \
    s io.lium.Cvm1
}
inactive() { ! systemctl -q is-active lium-cvm-helper.service; }

record before-state systemctl is-active lium-cvm-helper.service
record before-owner has_owner
record first-call as_op lium-cvm --json version
record dirs-while-running stat -c '%n %U:%G %a' /var/lib/lium-cvm /run/lium-cvm
record first-state systemctl show lium-cvm-helper.service -p ActiveState -p InvocationID \
  -p MainPID
record idle-wait wait_for 60 inactive
record idle-state systemctl show lium-cvm-helper.service -p ActiveState -p Result \
  -p ExecMainStatus -p NRestarts
record second-call as_out lium-cvm --json version
record second-state systemctl show lium-cvm-helper.service -p ActiveState -p InvocationID
