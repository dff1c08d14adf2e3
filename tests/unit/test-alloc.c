/* SPDX-License-Identifier: MIT */
/* The reservation table: every VM gets its own uids (round-robin, so a released uid is the
 * last to come back), CID and host-API port (the lowest free ones), a device or forwarded port
 * is never held twice, a refused CID stays taken, and a release gives back exactly what the
 * VM held. */
#include "helper-alloc.h"
#include "lcvm-error.h"

static LcvmConfig *
config_with(const char *uids, const char *cids, const char *ports)
{
  g_autofree char *text =
      g_strdup_printf("[qemu]\nuid_range=%s\n[limits]\ncid_range=%s\nhostapi_port_range=%s\n"
                      "reserved_ports=40001\n",
                      uids, cids, ports);
  g_autoptr(GError) error = NULL;
  LcvmConfig *config = lcvm_config_load_data(text, &error);
  g_assert_no_error(error);
  return config;
}

static LcvmManifest *
manifest_with(const char *gpu, guint16 port)
{
  LcvmManifest *m = lcvm_manifest_new();
  if (gpu != NULL) {
    g_strfreev(m->gpus);
    m->gpus = g_strsplit(gpu, ",", -1);
  }
  if (port != 0)
    lcvm_manifest_add_port(m, LCVM_PROTOCOL_TCP, "0.0.0.0", port, 22);
  return m;
}

static gboolean
port_40002_busy(guint16 port)
{
  return port != 40002;
}

static void
test_each_vm_gets_its_own_numbers(void)
{
  g_autoptr(LcvmConfig) config = config_with("61000-61999", "1000-1999", "40000-40999");
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(config, port_40002_busy);
  g_autoptr(LcvmManifest) m = manifest_with(NULL, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperReservation) a = helper_alloc_reserve(alloc, "a", m, &error);
  g_assert_no_error(error);
  g_autoptr(HelperReservation) b = helper_alloc_reserve(alloc, "b", m, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(a->qemu_uid, ==, 61000);
  g_assert_cmpuint(a->bridge_uid, ==, 61001);
  g_assert_cmpuint(b->qemu_uid, ==, 61002);
  g_assert_cmpuint(b->bridge_uid, ==, 61003);
  g_assert_cmpuint(a->cid, ==, 1000);
  g_assert_cmpuint(b->cid, ==, 1001);
  /* 40001 is a reserved port, 40002 cannot be bound: neither is handed out. */
  g_assert_cmpuint(a->hostapi_port, ==, 40000);
  g_assert_cmpuint(b->hostapi_port, ==, 40003);
  g_autofree char *holder = helper_alloc_holder(alloc, "uid:61002");
  g_assert_cmpstr(holder, ==, "b");
}

static void
test_a_device_or_port_is_never_held_twice(void)
{
  g_autoptr(LcvmConfig) config = config_with("61000-61999", "1000-1999", "40000-40999");
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(config, NULL);
  g_autoptr(LcvmManifest) gpu = manifest_with("0000:19:00.0", 0);
  g_autoptr(LcvmManifest) port = manifest_with(NULL, 2200);
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperReservation) a = helper_alloc_reserve(alloc, "a", gpu, &error);
  g_autoptr(HelperReservation) b = helper_alloc_reserve(alloc, "b", port, &error);
  g_assert_no_error(error);
  g_autoptr(HelperReservation) c = helper_alloc_reserve(alloc, "c", gpu, &error);
  g_assert_null(c);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_BUSY);
  g_assert_nonnull(strstr(error->message, "held by VM a"));
  g_clear_error(&error);
  g_autoptr(HelperReservation) d = helper_alloc_reserve(alloc, "d", port, &error);
  g_assert_null(d);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_BUSY);
  g_assert_nonnull(strstr(error->message, "tcp:2200"));
  /* A refused start holds nothing. */
  g_autofree char *none = helper_alloc_holder(alloc, "uid:61004");
  g_assert_null(none);
}

static void
test_release_gives_back_everything_the_vm_held(void)
{
  g_autoptr(LcvmConfig) config = config_with("61000-61001", "1000-1000", "40000-40000");
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(config, NULL);
  g_autoptr(LcvmManifest) m = manifest_with("0000:19:00.0", 2200);
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperReservation) a = helper_alloc_reserve(alloc, "a", m, &error);
  g_assert_no_error(error);
  g_autoptr(LcvmManifest) plain = manifest_with(NULL, 0);
  g_autoptr(HelperReservation) full = helper_alloc_reserve(alloc, "b", plain, &error);
  g_assert_null(full);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_BUSY);
  g_assert_nonnull(strstr(error->message, "uid_range"));
  g_clear_error(&error);
  helper_alloc_release(alloc, "a");
  g_autoptr(HelperReservation) again = helper_alloc_reserve(alloc, "b", m, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(again->qemu_uid, ==, 61000);
}

static void
test_a_cid_the_kernel_refused_stays_taken(void)
{
  g_autoptr(LcvmConfig) config = config_with("61000-61999", "1000-1001", "40000-40999");
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(config, NULL);
  g_autoptr(LcvmManifest) m = manifest_with(NULL, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperReservation) a = helper_alloc_reserve(alloc, "a", m, &error);
  g_assert_true(helper_alloc_next_cid(alloc, "a", a, &error));
  g_assert_cmpuint(a->cid, ==, 1001);
  helper_alloc_release(alloc, "a");
  g_autoptr(HelperReservation) b = helper_alloc_reserve(alloc, "b", m, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(b->cid, ==, 1001);
  g_assert_false(helper_alloc_next_cid(alloc, "b", b, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_BUSY);
}

static void
test_claim_takes_exactly_the_recorded_reservation(void)
{
  g_autoptr(LcvmConfig) config = config_with("61000-61999", "1000-1999", "40000-40999");
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(config, NULL);
  const char *devices[] = { "0000:19:00.0", NULL };
  const char *ports[] = { "tcp:2200", NULL };
  HelperReservation r = { 61010, 61011, 1005, 40007, (GStrv)devices, (GStrv)ports };
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_alloc_claim(alloc, "a", &r, &error));
  g_autofree char *cid = helper_alloc_holder(alloc, "cid:1005");
  g_autofree char *gpu = helper_alloc_holder(alloc, "device:0000:19:00.0");
  g_assert_cmpstr(cid, ==, "a");
  g_assert_cmpstr(gpu, ==, "a");
  g_assert_false(helper_alloc_claim(alloc, "b", &r, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_BUSY);
}

static void
test_a_released_uid_is_not_handed_out_next(void)
{
  g_autoptr(LcvmConfig) config = config_with("61000-61005", "1000-1999", "40000-40999");
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(config, NULL);
  g_autoptr(LcvmManifest) m = manifest_with(NULL, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperReservation) a = helper_alloc_reserve(alloc, "a", m, &error);
  g_assert_cmpuint(a->qemu_uid, ==, 61000);
  helper_alloc_release(alloc, "a");
  /* Lowest-free would give 61000 again at once. */
  g_autoptr(HelperReservation) b = helper_alloc_reserve(alloc, "b", m, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(b->qemu_uid, ==, 61002);
  g_assert_cmpuint(b->bridge_uid, ==, 61003);
  g_assert_cmpuint(helper_alloc_uid_cursor(alloc), ==, 61004);
}

static void
test_the_uid_round_wraps_and_skips_held_uids(void)
{
  g_autoptr(LcvmConfig) config = config_with("61000-61004", "1000-1999", "40000-40999");
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(config, NULL);
  g_autoptr(LcvmManifest) m = manifest_with(NULL, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperReservation) a = helper_alloc_reserve(alloc, "a", m, &error); /* 61000-1 */
  helper_alloc_set_uid_cursor(alloc, 61004);
  g_autoptr(HelperReservation) b = helper_alloc_reserve(alloc, "b", m, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(b->qemu_uid, ==, 61004);
  g_assert_cmpuint(b->bridge_uid, ==, 61002); /* wrapped past the held 61000 and 61001 */
  g_assert_cmpuint(helper_alloc_uid_cursor(alloc), ==, 61003);
  /* One uid left: no pair, and the refusal moves nothing. */
  g_autoptr(HelperReservation) c = helper_alloc_reserve(alloc, "c", m, &error);
  g_assert_null(c);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_BUSY);
  g_assert_cmpuint(helper_alloc_uid_cursor(alloc), ==, 61003);
  /* A cursor from another uid_range starts the round at the first uid. */
  helper_alloc_set_uid_cursor(alloc, 70000);
  g_assert_cmpuint(helper_alloc_uid_cursor(alloc), ==, 61000);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/alloc/each_vm_gets_its_own_numbers", test_each_vm_gets_its_own_numbers);
  g_test_add_func("/alloc/a_device_or_port_is_never_held_twice",
                  test_a_device_or_port_is_never_held_twice);
  g_test_add_func("/alloc/release_gives_back_everything_the_vm_held",
                  test_release_gives_back_everything_the_vm_held);
  g_test_add_func("/alloc/a_cid_the_kernel_refused_stays_taken",
                  test_a_cid_the_kernel_refused_stays_taken);
  g_test_add_func("/alloc/claim_takes_exactly_the_recorded_reservation",
                  test_claim_takes_exactly_the_recorded_reservation);
  g_test_add_func("/alloc/a_released_uid_is_not_handed_out_next",
                  test_a_released_uid_is_not_handed_out_next);
  g_test_add_func("/alloc/the_uid_round_wraps_and_skips_held_uids",
                  test_the_uid_round_wraps_and_skips_held_uids);
  return g_test_run();
}
