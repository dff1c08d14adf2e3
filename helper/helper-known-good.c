/* SPDX-License-Identifier: MIT */
/* The helper's known-good gate of a VM start (see the header). */
#include "helper-known-good.h"
#include "lcvm-error.h"
#include "lcvm-known-good.h"

/* The reasons validators will reject what the VM would boot (char*), empty when none. */
static GPtrArray *
rejections(const LcvmConfig *config, const HelperDefinition *def)
{
  GPtrArray *reasons = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmKnownGood) kg = lcvm_known_good_load(config, &error);
  if (kg == NULL) {
    g_ptr_array_add(reasons,
                    g_strdup_printf("%s; what validators accept is unknown", error->message));
    return reasons;
  }
  char *reason = NULL;
  if (!lcvm_known_good_image_ok(kg, def->manifest->image, def->manifest->os_image_hash, &reason))
    g_ptr_array_add(reasons, reason);
  reason = NULL;
  if (lcvm_known_good_qemu(kg, &def->qemu_version, &reason) == LCVM_KNOWN_GOOD_REJECTED)
    g_ptr_array_add(reasons, reason);
  else
    g_free(reason);
  return reasons;
}

gboolean
helper_known_good_check(const LcvmConfig *config, const char *name, const HelperDefinition *def,
                        GError **error)
{
  g_autoptr(GPtrArray) reasons = rejections(config, def);
  if (reasons->len == 0)
    return TRUE;
  g_ptr_array_add(reasons, NULL);
  g_autofree char *all = g_strjoinv("; ", (char **)reasons->pdata);
  if (!config->attestation_enforce) {
    g_warning("VM %s starts although %s", name, all);
    return TRUE;
  }
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "refusing to start VM %s because [attestation] enforce=true: %s (set enforce=false "
              "in the helper's lium-cvm.conf to start it anyway)",
              name, all);
  return FALSE;
}
