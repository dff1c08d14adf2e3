#!/bin/sh
# SPDX-License-Identifier: MIT
# meson install script: copies the built page (DIST) to DESTDIR/PREFIX/REL (share/cockpit/lium-cvm).
set -eu
dist=$1
dest="${MESON_INSTALL_DESTDIR_PREFIX}/$2"
rm -rf "$dest"
mkdir -p "$dest"
cp -R "$dist/." "$dest/"
find "$dest" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
