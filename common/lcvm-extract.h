/* SPDX-License-Identifier: MIT */
/* Streaming, refusing extraction of a dstack image archive (libarchive, any tar flavour and
 * compression). Only directories, regular files and links that stay inside are written, all
 * below one top-level `dstack-*` directory; every other entry stops the extraction with an
 * error naming it. Never writes outside the directory it is given, never follows a symlink
 * (not even one the archive itself created), never creates a device node, FIFO or socket.
 * Directories get mode 2775, files 0644, group lium-cvm when that group exists. */
#pragma once
#include <glib.h>

#define LCVM_EXTRACT_ERROR (lcvm_extract_error_quark())
GQuark lcvm_extract_error_quark(void);

typedef enum {
  LCVM_EXTRACT_ERROR_UNSAFE, /* an entry that escapes, or a device node/FIFO/socket */
  LCVM_EXTRACT_ERROR_LAYOUT, /* not exactly one top-level dstack-* directory */
  LCVM_EXTRACT_ERROR_FORMAT, /* not a readable archive */
  LCVM_EXTRACT_ERROR_WRITE,  /* writing failed (disk full, permission) */
} LcvmExtractError;

/* Reads up to len bytes of the archive; 0 at its end, -1 with error set on failure. */
typedef gssize (*LcvmExtractReadFunc)(gpointer user_data, void *buf, gsize len, GError **error);

/* Extracts into dirfd, which should be an empty directory. On success *top holds the name
 * of the one top-level directory (a valid image name starting with "dstack-"). An error from
 * read_func is passed on unchanged. */
gboolean lcvm_extract_image(int dirfd, LcvmExtractReadFunc read_func, gpointer user_data,
                            char **top, GError **error);
