/* SPDX-License-Identifier: MIT */
/* Every CVM data disk on this host, as Lium's upgrade guard counts them (field-2026 §5.1,
 * lium.md §3 cvm_upgrade_guard.sh inventory): lium-cvm's own (state_dir/instances/NAME/hda.img)
 * and those of Lium checkouts (`run/vms/NAME/hda.img` under the roots registered in Lium's
 * registry file, and anywhere below the sweep roots and the real file systems mounted there).
 * Each with the image, compose hash and key provider MRENCLAVE it was made with, where known.
 * A data disk is sealed to those measurements: upgrades must not change them while it exists.
 * Reads only; never follows a symlink; never crosses into a pseudo file system. */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>

#include "lcvm-config.h"

typedef struct {
  char *owner;         /* "lium-cvm" or "lium-cvm.sh" (a Lium checkout) */
  char *name;          /* the VM directory's name */
  char *dir;           /* the VM directory */
  char *state;         /* lium-cvm: "defined" | "orphan"; Lium: "running" | "stopped" | "orphan" */
  char *image;         /* NULL: unknown */
  char *os_image_hash; /* NULL: unknown */
  char *compose_hash;  /* NULL: unknown */
  char *mrenclave;     /* NULL: not recorded */
} LcvmInventoryDisk;

typedef struct {
  GPtrArray *disks;      /* LcvmInventoryDisk*, lium-cvm's first, then by directory */
  GPtrArray *incomplete; /* char*: what could not be searched (a registered root missing…) */
  GPtrArray *notes;      /* char*: what was searched only in part, and why */
} LcvmInventory;

/* Exit statuses of `lium-cvm inventory`, as the guard's. */
enum {
  LCVM_INVENTORY_NONE = 0,
  LCVM_INVENTORY_DISKS = 3,
  LCVM_INVENTORY_INCOMPLETE = 4,
};

LcvmInventory *lcvm_inventory_scan(const LcvmConfig *config);
/* INCOMPLETE when anything could not be searched, else DISKS when any disk exists, else NONE. */
int lcvm_inventory_status(const LcvmInventory *inventory);
JsonNode *lcvm_inventory_to_json(const LcvmInventory *inventory);

void lcvm_inventory_free(LcvmInventory *inventory);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmInventory, lcvm_inventory_free)
