# SPDX-License-Identifier: MIT
# The audit trail: every privileged call, allowed or refused, is one journal record with the
# fixed MESSAGE_ID and the caller's uid as a field of its own, so journalctl's field matches
# find one caller's calls.
. "$LIUM_TEST/lib.sh"

journalctl --sync 2>/dev/null || true
for who in op out; do
  uid=$(id -u "lcvm-$who")
  record "audit-$who" journalctl -o json --no-pager "MESSAGE_ID=$AUDIT_MESSAGE_ID" \
    "LCVM_CALLER_UID=$uid"
done
