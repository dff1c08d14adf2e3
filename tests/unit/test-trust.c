/* SPDX-License-Identifier: MIT */
/* The helper trusts a binary or config only when root alone can change it and every
 * directory above it. Needs root to create files owned by root and by others; skipped
 * otherwise. */
#include "lcvm-error.h"
#include "lcvm-trust.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define NOBODY 65534

typedef struct {
  char *root; /* root-owned 0755 under the sticky /tmp */
  char *bin;  /* root/bin, 0755 */
  char *qemu; /* root/bin/qemu, 0755 */
} Fixture;

static void
setup(Fixture *f, gconstpointer data)
{
  if (geteuid() != 0) {
    g_test_skip("needs root to create files owned by root and by others");
    return;
  }
  f->root = g_dir_make_tmp("lcvm-trust-XXXXXX", NULL);
  g_assert_cmpint(g_chmod(f->root, 0755), ==, 0);
  f->bin = g_build_filename(f->root, "bin", NULL);
  g_assert_cmpint(g_mkdir(f->bin, 0755), ==, 0);
  f->qemu = g_build_filename(f->bin, "qemu", NULL);
  g_assert_true(g_file_set_contents(f->qemu, "#!/bin/false\n", -1, NULL));
  g_assert_cmpint(g_chmod(f->qemu, 0755), ==, 0);
}

static void
teardown(Fixture *f, gconstpointer data)
{
  if (f->root) {
    const char *argv[] = { "rm", "-rf", f->root, NULL };
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                 NULL);
  }
  g_free(f->root);
  g_free(f->bin);
  g_free(f->qemu);
}

static void
assert_refused(const char *path, const char *fragment)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *real = lcvm_trusted_path(path, &error);
  g_assert_null(real);
  g_assert_nonnull(error);
  if (!strstr(error->message, fragment))
    g_error("'%s' lacks '%s'", error->message, fragment);
}

static void
test_root_owned_tree_is_trusted(Fixture *f, gconstpointer data)
{
  if (!f->root)
    return;
  g_autoptr(GError) error = NULL;
  g_autofree char *real = lcvm_trusted_path(f->qemu, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(real, ==, f->qemu);
}

static void
test_binary_owned_by_an_operator_is_refused(Fixture *f, gconstpointer data)
{
  if (!f->root)
    return;
  g_assert_cmpint(chown(f->qemu, NOBODY, 0), ==, 0);
  assert_refused(f->qemu, "is owned by uid 65534, not root");
}

static void
test_group_writable_directory_is_refused(Fixture *f, gconstpointer data)
{
  if (!f->root)
    return;
  g_assert_cmpint(g_chmod(f->bin, 02775), ==, 0);
  g_autofree char *expected = g_strdup_printf("%s is writable by others than root", f->bin);
  assert_refused(f->qemu, expected);
}

static void
test_directory_owned_by_an_operator_is_refused(Fixture *f, gconstpointer data)
{
  if (!f->root)
    return;
  g_assert_cmpint(chown(f->bin, NOBODY, 0), ==, 0);
  g_autofree char *expected = g_strdup_printf("%s is owned by uid 65534", f->bin);
  assert_refused(f->qemu, expected);
}

static void
test_world_writable_binary_is_refused(Fixture *f, gconstpointer data)
{
  if (!f->root)
    return;
  g_assert_cmpint(g_chmod(f->qemu, 0757), ==, 0);
  assert_refused(f->qemu, "mode 0757");
}

/* A symlink is judged by its target and the directories that lead there. */
static void
test_symlink_into_an_operator_directory_is_refused(Fixture *f, gconstpointer data)
{
  if (!f->root)
    return;
  g_autofree char *home = g_build_filename(f->root, "home", NULL);
  g_autofree char *real_qemu = g_build_filename(home, "qemu", NULL);
  g_autofree char *link = g_build_filename(f->bin, "qemu-link", NULL);
  g_assert_cmpint(g_mkdir(home, 0755), ==, 0);
  g_assert_true(g_file_set_contents(real_qemu, "", -1, NULL));
  g_assert_cmpint(chown(home, NOBODY, NOBODY), ==, 0);
  g_assert_cmpint(symlink(real_qemu, link), ==, 0);
  assert_refused(link, "is owned by uid 65534");
}

static void
test_missing_file_is_not_found(Fixture *f, gconstpointer data)
{
  if (!f->root)
    return;
  g_autofree char *missing = g_build_filename(f->bin, "nope", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_null(lcvm_trusted_path(missing, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/trust/" name, Fixture, NULL, setup, fn, teardown)
  ADD("root-owned-tree-is-trusted", test_root_owned_tree_is_trusted);
  ADD("binary-owned-by-an-operator-is-refused", test_binary_owned_by_an_operator_is_refused);
  ADD("group-writable-directory-is-refused", test_group_writable_directory_is_refused);
  ADD("directory-owned-by-an-operator-is-refused", test_directory_owned_by_an_operator_is_refused);
  ADD("world-writable-binary-is-refused", test_world_writable_binary_is_refused);
  ADD("symlink-into-an-operator-directory-is-refused",
      test_symlink_into_an_operator_directory_is_refused);
  ADD("missing-file-is-not-found", test_missing_file_is_not_found);
  return g_test_run();
}
