/* SPDX-License-Identifier: MIT */
/* Helpers shared by the VM-definition commands (cmd-new.c, cmd-vm.c): the definitions
 * directory state_dir/vms, and how a definition is shown. Nothing here writes a file. */
#pragma once
#include "cli.h"
#include "lcvm-manifest.h"

char *cli_vm_dir_path(const LcvmCli *cli);
/* Opens state_dir/vms; with create, makes it (mode 2770) when only it is missing. */
int cli_vm_dir_open(const LcvmCli *cli, gboolean create, GError **error);
/* TRUE when vms_dirfd holds an entry called name (of any type; never followed). */
gboolean cli_vm_exists(int vms_dirfd, const char *name);

/* "64G" for whole GiB, else "512M". */
char *cli_vm_format_size(guint64 bytes);
/* "2200->22, 8001, 19001-19003": identity forwards on consecutive ports become ranges. */
char *cli_vm_format_ports(const GArray *ports);
/* "2 (0000:19:00.0, …) + 1 NVSwitch (…)" or "none". */
char *cli_vm_format_devices(const LcvmManifest *manifest);
/* The manifest as the JSON object the commands print. */
JsonNode *cli_vm_manifest_node(const LcvmManifest *manifest, GError **error);

/* Asks a yes/no question on the terminal; FALSE (no) when stdin is not one. */
gboolean cli_confirm(const char *question);
