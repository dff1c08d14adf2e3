#!/bin/sh
# SPDX-License-Identifier: MIT
# Every C source and header in the tree is formatted as .clang-format says.
# Usage: check-format.sh SOURCE_ROOT
set -u
cd "$1" || exit 1
if ! command -v clang-format >/dev/null; then
  echo "clang-format missing (apt install clang-format)"
  exit 77
fi
files=$(find common helper frontend tests seccomp bench fuzz -name '*.[ch]' -type f | sort)
[ -n "$files" ] || { echo "no C files found under $1"; exit 1; }
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files; then
  echo "FAIL: run 'clang-format -i' on the files named above"
  exit 1
fi
echo "ok: $(echo "$files" | wc -l) files formatted"
