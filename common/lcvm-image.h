/* SPDX-License-Identifier: MIT */
/* The OS image store: state_dir/images/<name>/ as dstack lays it out (metadata.json,
 * sha256sum.txt, digest.txt, firmware, kernel, initrd, rootfs). Loading parses the metadata and
 * digest only; verification hashes the files. Nothing here downloads, extracts or deletes, and
 * no path taken from metadata.json may ever resolve outside the image directory. */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>

#include "lcvm-config.h"

typedef struct {
  char *name;    /* dir name under state_dir/images */
  char *dir;     /* absolute path of the image dir */
  char *version; /* metadata.json "version" (guessed from the dir name when empty) */
  char *digest;  /* contents of digest.txt, 64 lower-case hex, or NULL */
  /* metadata.json values: file names relative to dir (NULL when absent), cmdline text */
  char *kernel, *initrd, *bios, *rootfs, *cmdline;
  gboolean shared_ro;         /* metadata.json "shared_ro": the 9p share must be read-only */
  gboolean is_dev;            /* metadata.json "is_dev" */
  guint64 rootfs_size;        /* dstack.rootfs_size= on the cmdline, 0 if absent */
  GHashTable *metadata_extra; /* other metadata keys (string → string), e.g. "git_revision",
                               * "bios-sev", "hda", "ovmf_variant", "rootfs_hash" */
} LcvmImage;

/* TRUE when name may be an image directory name: ≤64 chars of [A-Za-z0-9_.-], no "..". */
gboolean lcvm_image_name_is_valid(const char *name);

/* Parse metadata.json + digest.txt; no hashing. Refuses names with '/' or '..'; every
 * artefact must be a regular file inside dir. */
LcvmImage *lcvm_image_load(const LcvmConfig *config, const char *name, GError **error);
/* Same, for an image directory anywhere (used on a freshly extracted tree before it is
 * renamed into the store). */
LcvmImage *lcvm_image_load_dir(const char *dir, const char *name, GError **error);

/* Opens for reading the file metadata.json names under key ("kernel", "initrd", "bios",
 * "rootfs", ...): a regular file below image->dir, never reached through a symlink at or below
 * it, even when the store changed after the image was loaded. Root hands QEMU what this opens,
 * never a path. -1 with G_IO_ERROR_INVALID_DATA otherwise. */
int lcvm_image_open_artefact(const LcvmImage *image, const char *key, GError **error);

/* Full verification: every line of sha256sum.txt matches its file, digest.txt equals
 * sha256(sha256sum.txt), and the artefacts metadata.json names are present. */
gboolean lcvm_image_verify(const LcvmImage *image, GError **error);

/* All loadable images in the store, sorted by name (LcvmImage*, owned by the array).
 * Directories that fail to load are skipped; a missing store is an empty list. */
GPtrArray *lcvm_image_list(const LcvmConfig *config, GError **error);

/* What `images` shows without hashing: a stamp (state_dir/images/.NAME.verified) records the
 * digest and every file's size, mtime and inode at the last successful verification. */
typedef enum {
  LCVM_IMAGE_UNVERIFIED, /* never verified here */
  LCVM_IMAGE_VERIFIED,   /* verified, and no file changed since */
  LCVM_IMAGE_MODIFIED,   /* a file changed since it was verified */
} LcvmImageState;

LcvmImageState lcvm_image_state(const LcvmImage *image);
const char *lcvm_image_state_name(LcvmImageState state);
gboolean lcvm_image_mark_verified(const LcvmImage *image, GError **error);

/* Total size in bytes of the files in the image directory. */
guint64 lcvm_image_size(const LcvmImage *image);

/* Names of the VM definitions (state_dir/vms/NAME/vm-manifest.json "image") that use the image. */
GStrv lcvm_image_users(const LcvmConfig *config, const char *name);

/* Removes the image directory and its stamp. Does not check users: callers do. */
gboolean lcvm_image_remove(const LcvmConfig *config, const char *name, GError **error);

void lcvm_image_free(LcvmImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmImage, lcvm_image_free)

/* The image's name, dir, version, digest, is_dev, size and state as members of the JSON object
 * b is building (what `download` and `images` print). */
void lcvm_image_add_json_members(JsonBuilder *b, const LcvmImage *image);
