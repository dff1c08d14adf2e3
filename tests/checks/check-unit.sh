#!/bin/sh
# SPDX-License-Identifier: MIT
# systemd-analyze verify of the built helper unit. verify exits 0 on most unit errors (an
# unknown key, a bad value: "ignoring"), so ANY message about our unit fails the check.
# ExecStart= must name an existing binary: a temporary copy points it at the built helper.
# Documentation=man: pages are looked up in docs/ (MANPATH), so a missing page fails too.
# Further units (a timer for the service) are verified beside it, unchanged.
# Usage: check-unit.sh BUILT_UNIT BUILT_BINARY DOCS_DIR [UNIT…]
set -u
unit=$1 helper=$2 docs=$3
shift 3
name=$(basename "$unit")

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze missing (apt install systemd)"
  exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/unit" "$tmp/man/man1" "$tmp/man/man8"
sed -e "s#^ExecStart=[^ ]*#ExecStart=$helper#" "$unit" >"$tmp/unit/$name"
names=$name
for extra in "$@"; do
  cp "$extra" "$tmp/unit/"
  names="$names $(basename "$extra")"
done
cp "$docs"/*.1 "$tmp/man/man1/"
cp "$docs"/*.8 "$tmp/man/man8/"

man_opt=--man=yes
if ! command -v man >/dev/null; then
  man_opt=--man=no
  pages=$(sed -n 's/^Documentation=//p' "$unit" "$@" | tr ' ' '\n' |
    sed -n 's/^man:\(.*\)(\([0-9]\))$/\1.\2/p')
  for page in $pages; do
    if [ ! -f "$docs/$page" ]; then
      echo "FAIL: $name: Documentation= names $page, which is not in docs/"
      exit 1
    fi
  done
fi

out=$(MANPATH="$tmp/man" SYSTEMD_LOG_COLOR=0 \
  systemd-analyze verify "$man_opt" $(for n in $names; do echo "$tmp/unit/$n"; done) 2>&1)
status=$?
printf '%s\n' "$out"
if [ $status -ne 0 ]; then
  echo "FAIL: systemd-analyze verify exited $status"
  exit 1
fi
for n in $names; do
  if printf '%s\n' "$out" | grep -F "$n" >/dev/null; then
    echo "FAIL: systemd-analyze verify reported problems in $n (see above)"
    exit 1
  fi
done
echo "ok: $names verify cleanly"
