/* SPDX-License-Identifier: MIT */
/* The GPU mode cache (state_dir/gpu-modes.json): what the helper writes is what lsgpu and
 * check read back; a missing file is an empty cache; values outside the known sets are dropped,
 * never shown. */
#include "lcvm-gpu-modes.h"

#include <glib/gstdio.h>

typedef struct {
  char *dir;
} Fixture;

static void
setup(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("lcvm-gpu-modes-XXXXXX", NULL);
}

static void
teardown(Fixture *f, gconstpointer data)
{
  g_autofree char *file = g_build_filename(f->dir, LCVM_GPU_MODES_FILE, NULL);
  g_unlink(file);
  g_rmdir(f->dir);
  g_free(f->dir);
}

static void
put(GHashTable *modes, const char *slot, const char *kind, const char *cc, const char *ppcie)
{
  LcvmGpuMode *m = lcvm_gpu_mode_new(slot, kind);
  m->cc = g_strdup(cc);
  m->ppcie = g_strdup(ppcie);
  m->queried_at = 1764240000;
  g_hash_table_replace(modes, g_strdup(slot), m);
}

static void
test_missing_file_is_an_empty_cache(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_load(f->dir, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_hash_table_size(modes), ==, 0);
}

static void
test_saved_modes_load_back(Fixture *f, gconstpointer data)
{
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_new();
  put(modes, "0000:19:00.0", "gpu", "on", "off");
  put(modes, "0000:05:00.0", "nvswitch", "unsupported", "on");
  LcvmGpuMode *broken = lcvm_gpu_mode_new("0000:3b:00.0", "gpu");
  broken->broken = TRUE;
  broken->queried_at = 1764240001;
  g_hash_table_replace(modes, g_strdup(broken->slot), broken);
  g_autoptr(GError) error = NULL;
  g_assert_true(lcvm_gpu_modes_save(f->dir, modes, &error));
  g_assert_no_error(error);

  g_autoptr(GHashTable) back = lcvm_gpu_modes_load(f->dir, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_hash_table_size(back), ==, 3);
  const LcvmGpuMode *gpu = g_hash_table_lookup(back, "0000:19:00.0");
  g_assert_cmpstr(gpu->kind, ==, "gpu");
  g_assert_cmpstr(gpu->cc, ==, "on");
  g_assert_cmpstr(gpu->ppcie, ==, "off");
  g_assert_cmpint(gpu->queried_at, ==, 1764240000);
  const LcvmGpuMode *b = g_hash_table_lookup(back, "0000:3b:00.0");
  g_assert_true(b->broken);
  g_assert_null(b->cc);
}

static void
test_unknown_values_are_dropped(Fixture *f, gconstpointer data)
{
  g_autofree char *file = g_build_filename(f->dir, LCVM_GPU_MODES_FILE, NULL);
  const char *text = "{\"version\": 1, \"devices\": {"
                     "\"0000:19:00.0\": {\"kind\": \"gpu\", \"cc\": \"maybe\", \"ppcie\": \"off\","
                     " \"queried_at\": 5},"
                     "\"19:00.0\": {\"kind\": \"gpu\", \"cc\": \"on\", \"ppcie\": \"off\","
                     " \"queried_at\": 5},"
                     "\"0000:3b:00.0\": {\"kind\": \"gpu\", \"cc\": \"on\", \"ppcie\": \"off\","
                     " \"queried_at\": 5}}}";
  g_assert_true(g_file_set_contents(file, text, -1, NULL));
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_load(f->dir, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_hash_table_size(modes), ==, 1);
  g_assert_nonnull(g_hash_table_lookup(modes, "0000:3b:00.0"));
}

static void
test_a_board_is_in_ppcie_mode_only_when_every_device_is(Fixture *f, gconstpointer data)
{
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_new();
  put(modes, "0000:05:00.0", "nvswitch", "unsupported", "on");
  put(modes, "0000:19:00.0", "gpu", "off", "on");
  const char *const board[] = { "0000:05:00.0", "0000:19:00.0", NULL };
  const char *const larger[] = { "0000:05:00.0", "0000:19:00.0", "0000:3b:00.0", NULL };
  g_assert_true(lcvm_gpu_modes_board_ppcie(modes, board));
  g_assert_false(lcvm_gpu_modes_board_ppcie(modes, larger)); /* 3b never queried */
  put(modes, "0000:3b:00.0", "gpu", "off", "off");
  g_assert_false(lcvm_gpu_modes_board_ppcie(modes, larger));
}

static void
test_age_is_short_text(Fixture *f, gconstpointer data)
{
  LcvmGpuMode m = { .queried_at = 1000 };
  g_autofree char *now = lcvm_gpu_mode_age(&m, 1030);
  g_autofree char *minutes = lcvm_gpu_mode_age(&m, 1000 + 5 * 60);
  g_autofree char *hours = lcvm_gpu_mode_age(&m, 1000 + 3 * 3600);
  g_autofree char *days = lcvm_gpu_mode_age(&m, 1000 + 2 * 86400);
  g_assert_cmpstr(now, ==, "now");
  g_assert_cmpstr(minutes, ==, "5m");
  g_assert_cmpstr(hours, ==, "3h");
  g_assert_cmpstr(days, ==, "2d");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/gpu-modes/" name, Fixture, NULL, setup, fn, teardown)
  ADD("missing-file-is-an-empty-cache", test_missing_file_is_an_empty_cache);
  ADD("saved-modes-load-back", test_saved_modes_load_back);
  ADD("unknown-values-are-dropped", test_unknown_values_are_dropped);
  ADD("a-board-is-in-ppcie-mode-only-when-every-device-is",
      test_a_board_is_in_ppcie_mode_only_when_every_device_is);
  ADD("age-is-short-text", test_age_is_short_text);
  return g_test_run();
}
