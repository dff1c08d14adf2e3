/* SPDX-License-Identifier: MIT */
/* What helper-instance.c (validation) and helper-instance-prepare.c (assembly) share, so the
 * definition is opened, read and its compose hash checked in exactly one way. */
#pragma once
#include <glib.h>

#include "lcvm-config.h"
#include "lcvm-manifest.h"

/* Opens state_dir/vms/NAME (O_DIRECTORY|O_NOFOLLOW): LCVM_ERROR_NOT_FOUND when absent,
 * LCVM_ERROR_INVALID_ARGUMENT when it is a symlink or not a directory. */
int helper_instance_open_definition(const LcvmConfig *config, const char *name, GError **error);

/* A definition file's bytes (O_NOFOLLOW, at most max bytes, regular files of one name). Absent:
 * NULL with G_IO_ERROR_NOT_FOUND; anything else refused: LCVM_ERROR_INVALID_ARGUMENT. */
char *helper_instance_read_definition_file(int vm_fd, const LcvmManifest *manifest,
                                           const char *file, gsize max, gsize *len, GError **error);

/* sha256(bytes) must be the manifest's compose_hash; LCVM_ERROR_FAILED names both. */
gboolean helper_instance_check_compose(const LcvmManifest *manifest, const char *bytes, gsize len,
                                       GError **error);
