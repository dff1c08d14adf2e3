/* SPDX-License-Identifier: MIT */
/* `download` as one transaction on the image store: under a per-image lock, skip when the
 * image is present and verifies; otherwise download (resuming a partial file), extract while
 * the bytes arrive, check the archive sha256 and the image, and rename the new directory
 * into place. Whatever fails, the store never holds a partial image; only a network
 * interruption leaves the partial download behind (for the next run to resume). */
#pragma once
#include <glib.h>

#include "lcvm-config.h"
#include "lcvm-download.h"
#include "lcvm-image.h"

typedef struct {
  const char *name; /* image name: the archive's top-level directory must match it */
  const char *url;
  const char *sha256;    /* expected archive sha256, or NULL */
  gboolean fetch_sha256; /* when sha256 is NULL: try URL.sha256 */
  /* The digest.txt values the new image must have (the known-good list's), or NULL; an image
   * with another digest is refused before it reaches the store. */
  const char *const *accepted_digests;
  LcvmDownloadProgressFunc progress;
  void (*notice)(const char *message, gpointer user_data); /* waiting, resuming, … */
  gpointer user_data;
} LcvmImageInstallOptions;

/* The URL of a dstack release archive for an image name (dstack.md §2.4): meta-dstack
 * releases before 0.6.0, the dstack monorepo's guest-os releases from 0.6.0. With a
 * configured [images] url pattern, "%s" in it stands for the name instead. */
char *lcvm_image_default_url(const LcvmConfig *config, const char *name);

/* Installs the image; *downloaded tells whether anything was fetched. */
LcvmImage *lcvm_image_install(const LcvmConfig *config, const LcvmImageInstallOptions *options,
                              gboolean *downloaded, GError **error);
