/* SPDX-License-Identifier: MIT */
/* Name validation shared by the frontend and the helper. Nothing here touches the file
 * system: a valid name is only well-formed; existence is checked by the caller. */
#include "lcvm-validate.h"
#include "lcvm-layout.h"
#include "lcvm-error.h"
#include "lcvm-text.h"
#include <string.h>

gboolean
lcvm_vm_name_valid(const char *name, GError **error)
{
  gsize len = name ? strlen(name) : 0;
  gboolean ok = len >= 1 && len <= 63 && (g_ascii_islower(name[0]) || g_ascii_isdigit(name[0]));
  for (gsize i = 1; ok && i < len; i++)
    ok = g_ascii_islower(name[i]) || g_ascii_isdigit(name[i]) || name[i] == '_' || name[i] == '-';
  if (!ok) {
    g_autofree char *shown = lcvm_text_for_message(name ? name : "");
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "invalid VM name '%s': use 1-63 characters a-z, 0-9, '_' and '-', starting with "
                "a letter or digit",
                shown);
    return FALSE;
  }
  /* runtime_dir/vfio holds the devices' driver records beside the VMs' runtime dirs
   * (lcvm-layout.h): a VM of that name would share them and never be re-adopted. */
  if (g_str_equal(name, LCVM_RUNTIME_VFIO_DIR)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "VM name '%s' is reserved (the helper keeps device records under it): choose "
                "another name",
                name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
hex_run(const char *s, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isxdigit(s[i]))
      return FALSE;
  return TRUE;
}

/* DDDD:BB:DD.F with the device number 0-1f and the function 0-7, as the kernel names slots. */
static gboolean
full_slot_shape(const char *s)
{
  if (strlen(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.')
    return FALSE;
  if (!hex_run(s, 4) || !hex_run(s + 5, 2) || !hex_run(s + 8, 2))
    return FALSE;
  if (s[11] < '0' || s[11] > '7')
    return FALSE;
  return g_ascii_xdigit_value(s[8]) <= 1;
}

char *
lcvm_slot_normalize(const char *text, GError **error)
{
  g_autofree char *full = NULL;
  if (text != NULL && strlen(text) == 7)
    full = g_strconcat("0000:", text, NULL);
  else
    full = g_strdup(text ? text : "");
  if (!full_slot_shape(full)) {
    g_autofree char *shown = lcvm_text_for_message(text ? text : "");
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "invalid PCI slot '%s': expected BB:DD.F or DDDD:BB:DD.F, such as 19:00.0", shown);
    return NULL;
  }
  return g_ascii_strdown(full, -1);
}

gboolean
lcvm_slot_is_canonical(const char *slot)
{
  if (slot == NULL || !full_slot_shape(slot))
    return FALSE;
  for (const char *p = slot; *p; p++)
    if (g_ascii_isupper(*p))
      return FALSE;
  return TRUE;
}

static const char *const module_allow_list[] = {
  "vfio", "vfio_pci", "vfio_iommu_type1", "iommufd", "vhost_vsock", NULL,
};

const char *const *
lcvm_module_allow_list(void)
{
  return module_allow_list;
}

char *
lcvm_module_normalize(const char *name)
{
  char *n = g_strdup(name);
  g_strdelimit(n, "-", '_');
  return n;
}

gboolean
lcvm_module_allowed(const char *normalized)
{
  return g_strv_contains((const char *const *)module_allow_list, normalized);
}
