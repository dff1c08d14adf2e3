/* SPDX-License-Identifier: MIT */
/* Validation of every name a caller may send across the D-Bus boundary: VM names, PCI
 * slots, kernel module names. The helper validates again whatever the frontend sent. */
#pragma once
#include <glib.h>

/* ^[a-z0-9][a-z0-9_-]{0,62}$ */
gboolean lcvm_vm_name_valid(const char *name, GError **error);

/* Accepts BB:DD.F and DDDD:BB:DD.F (hex, any case); returns DDDD:BB:DD.F lower-case. */
char *lcvm_slot_normalize(const char *text, GError **error);
/* TRUE for exactly DDDD:BB:DD.F lower-case hex (what the helper accepts on the bus). */
gboolean lcvm_slot_is_canonical(const char *slot);

/* Kernel modules the helper will load. Dashes are normalised to underscores first. */
const char *const *lcvm_module_allow_list(void);
char *lcvm_module_normalize(const char *name);
gboolean lcvm_module_allowed(const char *normalized);
