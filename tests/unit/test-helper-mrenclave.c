/* SPDX-License-Identifier: MIT */
/* The helper's MRENCLAVE records and the start-time refusal: a VM whose data disk was made with
 * another key provider enclave than the one running now must not start (its guest could not
 * open the disk). Runs on a temporary state directory. */
#include "helper-mrenclave.h"
#include "lcvm-error.h"

#include <glib/gstdio.h>
#include <string.h>

#define OLD "8a5c0c8a3b61d3f0b5d3e1a9f5c7e2b4d6a8c0e2f4a6b8d0c2e4f6a8b0d2e4f6"
#define NEW "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct {
  char *root;
  LcvmConfig *config;
} Fixture;

static void
put(const char *path, const char *text)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static char *
at(const Fixture *fx, const char *rel)
{
  return g_build_filename(fx->root, "state", rel, NULL);
}

static void
setup(Fixture *fx, gconstpointer data)
{
  fx->root = g_dir_make_tmp("lcvm-mrenclave-XXXXXX", NULL);
  g_autofree char *text = g_strdup_printf("[paths]\nstate_dir=%s/state\n", fx->root);
  fx->config = lcvm_config_load_data(text, NULL);
  g_autofree char *state = at(fx, "");
  g_assert_cmpint(g_mkdir_with_parents(state, 0755), ==, 0);
}

static void
teardown(Fixture *fx, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", fx->root);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(fx->root);
  lcvm_config_free(fx->config);
}

static void
make_disk(Fixture *fx, const char *recorded)
{
  g_autofree char *disk = at(fx, "instances/vm1/hda.img");
  put(disk, "qcow2");
  if (recorded != NULL) {
    g_autofree char *record = at(fx, "instances/vm1/key-provider.mrenclave");
    g_autofree char *line = g_strdup_printf("%s\n", recorded);
    put(record, line);
  }
}

static void
running(Fixture *fx, const char *mrenclave)
{
  g_autofree char *logs = g_strdup_printf("dstack-key-provider  |     mr_enclave: %s\n", mrenclave);
  g_autofree char *seen = helper_mrenclave_observe(fx->config, logs);
  g_assert_cmpstr(seen, ==, mrenclave);
}

static void
test_a_disk_made_with_another_enclave_is_refused(Fixture *fx, gconstpointer data)
{
  make_disk(fx, OLD);
  running(fx, NEW);
  gboolean had_disk = FALSE;
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_mrenclave_check(fx->config, "vm1", &had_disk, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, OLD));
  g_assert_nonnull(strstr(error->message, NEW));
  g_assert_nonnull(strstr(error->message, "Failed to open encrypted data disk"));
  g_assert_nonnull(strstr(error->message, "lium-cvm rm vm1"));
}

static void
test_the_same_enclave_starts(Fixture *fx, gconstpointer data)
{
  make_disk(fx, OLD);
  running(fx, OLD);
  gboolean had_disk = FALSE;
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_mrenclave_check(fx->config, "vm1", &had_disk, &error));
  g_assert_no_error(error);
  g_assert_true(had_disk);
}

static void
test_first_start_records_the_current_enclave_for_the_new_disk(Fixture *fx, gconstpointer data)
{
  running(fx, NEW);
  gboolean had_disk = TRUE;
  g_assert_true(helper_mrenclave_check(fx->config, "vm1", &had_disk, NULL));
  g_assert_false(had_disk);
  make_disk(fx, NULL); /* what helper_instance_prepare does */
  helper_mrenclave_record_disk(fx->config, "vm1", had_disk);
  g_autofree char *record = at(fx, "instances/vm1/key-provider.mrenclave");
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(record, &text, NULL, NULL));
  g_assert_cmpstr(text, ==, NEW "\n");
}

static void
test_an_older_disk_is_never_recorded_after_the_fact(Fixture *fx, gconstpointer data)
{
  make_disk(fx, NULL);
  running(fx, NEW);
  gboolean had_disk = FALSE;
  g_assert_true(helper_mrenclave_check(fx->config, "vm1", &had_disk, NULL));
  g_assert_true(had_disk);
  helper_mrenclave_record_disk(fx->config, "vm1", had_disk);
  g_autofree char *record = at(fx, "instances/vm1/key-provider.mrenclave");
  g_assert_false(g_file_test(record, G_FILE_TEST_EXISTS));
}

static void
test_unknown_current_enclave_neither_refuses_nor_records(Fixture *fx, gconstpointer data)
{
  make_disk(fx, OLD);
  gboolean had_disk = FALSE;
  g_assert_true(helper_mrenclave_check(fx->config, "vm1", &had_disk, NULL));
  g_assert_null(helper_mrenclave_observe(fx->config, "no label in these logs\n"));
}

static void
test_a_damaged_record_is_ignored_not_trusted(Fixture *fx, gconstpointer data)
{
  make_disk(fx, "not-a-measurement");
  running(fx, NEW);
  gboolean had_disk = FALSE;
  g_assert_true(helper_mrenclave_check(fx->config, "vm1", &had_disk, NULL));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add("/helper-mrenclave/" path, Fixture, NULL, setup, fn, teardown)
  ADD("a-disk-made-with-another-enclave-is-refused",
      test_a_disk_made_with_another_enclave_is_refused);
  ADD("the-same-enclave-starts", test_the_same_enclave_starts);
  ADD("first-start-records-the-current-enclave-for-the-new-disk",
      test_first_start_records_the_current_enclave_for_the_new_disk);
  ADD("an-older-disk-is-never-recorded-after-the-fact",
      test_an_older_disk_is_never_recorded_after_the_fact);
  ADD("unknown-current-enclave-neither-refuses-nor-records",
      test_unknown_current_enclave_neither_refuses_nor_records);
  ADD("a-damaged-record-is-ignored-not-trusted", test_a_damaged_record_is_ignored_not_trusted);
#undef ADD
  return g_test_run();
}
