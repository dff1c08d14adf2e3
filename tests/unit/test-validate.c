/* SPDX-License-Identifier: MIT */
/* Names that cross the D-Bus boundary: VM names, PCI slots, module names. */
#include "lcvm-error.h"
#include "lcvm-validate.h"
#include <string.h>

static void
test_vm_names(void)
{
  const char *good[] = { "a", "my-executor", "vm_1", "0abc", "vfio2", "my-vfio", NULL };
  const char *bad[] = { "", "-a", "_a", "A", "my vm", "../x", "a/b", "é", "a.b", NULL };
  for (guint i = 0; good[i]; i++)
    g_assert_true(lcvm_vm_name_valid(good[i], NULL));
  for (guint i = 0; bad[i]; i++) {
    g_autoptr(GError) error = NULL;
    g_assert_false(lcvm_vm_name_valid(bad[i], &error));
    g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  }
  g_autofree char *max = g_strnfill(63, 'a');
  g_autofree char *over = g_strnfill(64, 'a');
  g_assert_true(lcvm_vm_name_valid(max, NULL));
  g_assert_false(lcvm_vm_name_valid(over, NULL));

  /* runtime_dir/vfio holds device records beside the VMs' runtime dirs. */
  g_autoptr(GError) reserved = NULL;
  g_assert_false(lcvm_vm_name_valid("vfio", &reserved));
  g_assert_error(reserved, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(reserved->message, "reserved"));
}

static void
test_slots_normalise_to_full_lower_case(void)
{
  g_autofree char *a = lcvm_slot_normalize("19:00.0", NULL);
  g_autofree char *b = lcvm_slot_normalize("0000:3B:00.0", NULL);
  g_autofree char *c = lcvm_slot_normalize("0001:1a:1f.7", NULL);
  g_assert_cmpstr(a, ==, "0000:19:00.0");
  g_assert_cmpstr(b, ==, "0000:3b:00.0");
  g_assert_cmpstr(c, ==, "0001:1a:1f.7");
  const char *bad[] = { "",           "19:00",   "19:00.8",      "19:20.0",      "0000:19:00.0.1",
                        "../19:00.0", "zz:00.0", "0000-19:00.0", "0000:19:00:0", NULL };
  for (guint i = 0; bad[i]; i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *s = lcvm_slot_normalize(bad[i], &error);
    g_assert_null(s);
    g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  }
  g_assert_true(lcvm_slot_is_canonical("0000:19:00.0"));
  g_assert_false(lcvm_slot_is_canonical("0000:3B:00.0"));
  g_assert_false(lcvm_slot_is_canonical("19:00.0"));
}

static void
test_module_allow_list(void)
{
  const char *allowed[] = {
    "vfio", "vfio_pci", "vfio_iommu_type1", "iommufd", "vhost_vsock", NULL
  };
  for (guint i = 0; allowed[i]; i++)
    g_assert_true(lcvm_module_allowed(allowed[i]));
  g_autofree char *dashed = lcvm_module_normalize("vfio-pci");
  g_assert_cmpstr(dashed, ==, "vfio_pci");
  g_assert_true(lcvm_module_allowed(dashed));
  const char *refused[] = { "nvidia", "../vfio", "", "vfio_pci ", "VFIO", "kvm_intel", NULL };
  for (guint i = 0; refused[i]; i++)
    g_assert_false(lcvm_module_allowed(refused[i]));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/validate/vm_names", test_vm_names);
  g_test_add_func("/validate/slots_normalise_to_full_lower_case",
                  test_slots_normalise_to_full_lower_case);
  g_test_add_func("/validate/module_allow_list", test_module_allow_list);
  return g_test_run();
}
