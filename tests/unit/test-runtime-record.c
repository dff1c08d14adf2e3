/* SPDX-License-Identifier: MIT */
/* Runtime records: a record reads back exactly as written, the runtime directories are listed
 * by name, and removing one takes its record with it. */
#include "helper-runtime-record.h"
#include "lcvm-error.h"

#include <glib/gstdio.h>
#include <unistd.h>

static void
test_a_record_reads_back_as_written(void)
{
  if (geteuid() != 0) {
    g_test_skip("runtime_dir must be root-owned: needs root");
    return;
  }
  g_autofree char *dir = g_dir_make_tmp("lcvm-supervise-XXXXXX", NULL);
  g_autofree char *runtime = g_build_filename(dir, "run", NULL);
  g_autofree char *text = g_strdup_printf("[paths]\nruntime_dir=%s\n", runtime);
  g_autoptr(LcvmConfig) config = lcvm_config_load_data(text, NULL);
  const char *argv[] = { "/usr/bin/qemu-system-x86_64", "-append", "a;b c=\"d\"", NULL };
  const char *devices[] = { "0000:19:00.0", NULL };
  const char *ports[] = { "tcp:2200", NULL };
  const char *none[] = { NULL };
  HelperReservation res = { 61000, 61001, 1000, 40000, (GStrv)devices, (GStrv)ports };
  HelperRecord r = { "vm-1",       4242,        123456, 1764230037, (GStrv)argv, &res,
                     (GStrv)ports, (GStrv)none, "c0",   "d1",       "7.2.19" };
  const char *bridge_argv[] = { "/usr/libexec/lium-cvm-hostapi", "--peer-uid=61000", NULL };
  r.bridge_pid = 4243;
  r.bridge_start_time = 123457;
  r.bridge_argv = (GStrv)bridge_argv;
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_record_write(config, &r, &error));
  g_autoptr(HelperRecord) back = helper_record_load(config, "vm-1", &error);
  g_assert_no_error(error);
  g_assert_cmpint(back->pid, ==, 4242);
  g_assert_cmpuint(back->start_time, ==, 123456);
  g_assert_true(g_strv_equal((const char *const *)back->argv, argv));
  g_assert_cmpuint(back->reservation->bridge_uid, ==, 61001);
  g_assert_cmpuint(back->reservation->hostapi_port, ==, 40000);
  g_assert_true(g_strv_equal((const char *const *)back->reservation->devices, devices));
  g_assert_cmpuint(g_strv_length(back->dev_nodes), ==, 0);
  g_assert_cmpstr(back->qemu_version, ==, "7.2.19");
  g_assert_cmpint(back->bridge_pid, ==, 4243);
  g_assert_cmpuint(back->bridge_start_time, ==, 123457);
  g_assert_true(g_strv_equal((const char *const *)back->bridge_argv, bridge_argv));
  g_auto(GStrv) names = helper_runtime_names(config);
  g_assert_cmpstr(names[0], ==, "vm-1");
  g_assert_true(helper_runtime_remove(config, "vm-1", &error));
  g_assert_null(helper_record_load(config, "vm-1", &error));
  g_rmdir(runtime);
  g_rmdir(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/runtime-record/a_record_reads_back_as_written",
                  test_a_record_reads_back_as_written);
  return g_test_run();
}
