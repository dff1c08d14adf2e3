#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the Cockpit page into OUTDIR from src/ with the npm packages pinned in
# package-lock.json, installed once under NPMDIR (a cache in the build dir, never in the
# source tree). Run by meson (cockpit/meson.build) and so by the package build; the built
# page needs no network at run time. Usage: build.sh OUTDIR NPMDIR [STAMP]
set -eu
src=$(cd "$(dirname "$0")" && pwd)
out=$1
npmdir=$2
mkdir -p "$npmdir"
if [ ! -d "$npmdir/node_modules" ] || ! cmp -s "$src/package-lock.json" "$npmdir/package-lock.json"; then
  cp "$src/package.json" "$src/package-lock.json" "$npmdir/"
  (cd "$npmdir" && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts=false) >&2
fi
NODE_PATH="$npmdir/node_modules" LCVM_COCKPIT_OUT="$out" node "$src/build.js"
if [ $# -ge 3 ]; then
  : > "$3"
fi
