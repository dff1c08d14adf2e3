/* SPDX-License-Identifier: MIT */
/* GRUB command-line tokens (see the header). Ids are compared lower-case: the field found
 * upper-case 10DE: ids that matched nothing (reference/lium.md §8.14). */
#include "lcvm-grub.h"
#include "lcvm-pci.h"
#include <string.h>

static void
add_id(GPtrArray *ids, const char *id)
{
  g_autofree char *lower = g_ascii_strdown(id, -1);
  g_strstrip(lower);
  if (lower[0] == '\0' || g_ptr_array_find_with_equal_func(ids, lower, g_str_equal, NULL))
    return;
  g_ptr_array_add(ids, g_steal_pointer(&lower));
}

/* Every vfio-pci.ids= token of the command line (all occurrences: none may be dropped). */
static void
add_cmdline_ids(GPtrArray *ids, const char *cmdline)
{
  g_auto(GStrv) tokens = g_strsplit_set(cmdline ? cmdline : "", " \t\n", -1);
  for (guint i = 0; tokens[i] != NULL; i++) {
    if (!g_str_has_prefix(tokens[i], "vfio-pci.ids=") &&
        !g_str_has_prefix(tokens[i], "vfio_pci.ids="))
      continue;
    g_auto(GStrv) parts = g_strsplit(strchr(tokens[i], '=') + 1, ",", -1);
    for (guint j = 0; parts[j] != NULL; j++)
      add_id(ids, parts[j]);
  }
}

char *
lcvm_grub_tokens(const char *const *device_ids, const char *cmdline)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; device_ids != NULL && device_ids[i] != NULL; i++)
    add_id(ids, device_ids[i]);
  add_cmdline_ids(ids, cmdline);
  g_ptr_array_add(ids, NULL);
  g_autofree char *list = g_strjoinv(",", (char **)ids->pdata);
  GString *s = g_string_new("kvm_intel.tdx=on intel_iommu=on iommu=pt nohibernate");
  if (list[0] != '\0')
    g_string_append_printf(s, " vfio-pci.ids=%s", list);
  g_string_append_printf(s, " vfio_iommu_type1.dma_entry_limit=%d", LCVM_DMA_ENTRY_LIMIT_DEFAULT);
  return g_string_free(s, FALSE);
}

char *
lcvm_grub_tokens_for_host(const char *sysfs_root, const char *proc_root, GError **error)
{
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(sysfs_root, error);
  if (inv == NULL)
    return NULL;
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < inv->devices->len; i++) {
    LcvmPciDevice *d = inv->devices->pdata[i];
    g_autofree char *id = g_strdup_printf("%04x:%04x", d->vendor_id, d->device_id);
    if (!g_ptr_array_find_with_equal_func(ids, id, g_str_equal, NULL))
      g_ptr_array_add(ids, g_steal_pointer(&id));
  }
  g_ptr_array_add(ids, NULL);
  g_autofree char *path = g_build_filename(proc_root, "cmdline", NULL);
  g_autofree char *cmdline = NULL;
  g_file_get_contents(path, &cmdline, NULL, NULL);
  return lcvm_grub_tokens((const char *const *)ids->pdata, cmdline);
}

char *
lcvm_grub_advice(const char *sysfs_root, const char *proc_root, GError **error)
{
  g_autofree char *tokens = lcvm_grub_tokens_for_host(sysfs_root, proc_root, error);
  if (tokens == NULL)
    return NULL;
  return g_strdup_printf(
      "Add these to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub (append; keep what is "
      "there, and do not put them in GRUB_CMDLINE_LINUX):\n"
      "  %s\n"
      "then run:\n"
      "  sudo update-grub && sudo reboot\n",
      tokens);
}
