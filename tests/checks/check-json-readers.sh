#!/bin/sh
# SPDX-License-Identifier: MIT
# JSON someone else wrote is read only through the bounded loader (common/lcvm-json-depth.c):
# json-glib's own entry points take several top-level values (and leak them), unbounded
# nesting, and lone surrogates. Fails naming any other place that calls them.
# Usage: check-json-readers.sh SOURCE_ROOT
set -u
cd "$1" || exit 1
found=$(grep -rnE 'json_parser_load_from_(data|file|stream|mapped_file)|json_from_string|json_gvariant_deserialize' \
  common helper frontend | grep -v '^common/lcvm-json-depth\.[ch]:')
if [ -n "$found" ]; then
  echo "$found"
  echo "FAIL: read JSON with lcvm_json_load_bounded or lcvm_json_parse_bounded"
  exit 1
fi
echo "ok: every JSON reader goes through the bounded loader"
