/* SPDX-License-Identifier: MIT */
/* Extraction refusal rules (lcvm-extract) on archives built in memory with libarchive, plus
 * the image name rule and release URLs (lcvm-image, lcvm-image-install). */
#include "lcvm-extract.h"
#include "lcvm-image-install.h"
#include "lcvm-image.h"
#include "lcvm-safe-io.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  char *dir;
  int dirfd;
  struct archive *w;
  GByteArray *bytes;
} Fixture;

static la_ssize_t
write_cb(struct archive *a, void *data, const void *buf, size_t len)
{
  g_byte_array_append(data, buf, (guint)len);
  return (la_ssize_t)len;
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp("test-extract-XXXXXX", NULL);
  f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY);
  f->bytes = g_byte_array_new();
  f->w = archive_write_new();
  archive_write_set_format_pax_restricted(f->w);
  archive_write_add_filter_gzip(f->w);
  archive_write_open(f->w, f->bytes, NULL, write_cb, NULL);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  archive_write_free(f->w);
  g_byte_array_unref(f->bytes);
  g_autofree char *parent = g_path_get_dirname(f->dir);
  g_autofree char *base = g_path_get_basename(f->dir);
  int pfd = open(parent, O_RDONLY | O_DIRECTORY);
  lcvm_remove_tree_at(pfd, base, NULL);
  close(pfd);
  close(f->dirfd);
  g_free(f->dir);
}

static void
add(Fixture *f, const char *path, mode_t type, const char *data, const char *link)
{
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, path);
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
  if (type == AE_IFLNK)
    archive_entry_set_symlink(e, link);
  else if (link != NULL)
    archive_entry_set_hardlink(e, link);
  archive_entry_set_size(e, data ? (la_int64_t)strlen(data) : 0);
  archive_write_header(f->w, e);
  if (data != NULL)
    archive_write_data(f->w, data, strlen(data));
  archive_entry_free(e);
}

static void
add_image(Fixture *f)
{
  add(f, "dstack-0.5.11/", AE_IFDIR, NULL, NULL);
  add(f, "dstack-0.5.11/bzImage", AE_IFREG, "kernel", NULL);
}

typedef struct {
  GByteArray *bytes;
  gsize pos;
} Reader;

static gssize
read_mem(gpointer data, void *buf, gsize len, GError **error)
{
  Reader *r = data;
  gsize n = MIN(len, r->bytes->len - r->pos);
  memcpy(buf, r->bytes->data + r->pos, n);
  r->pos += n;
  return (gssize)n;
}

static gboolean
extract(Fixture *f, char **top, GError **error)
{
  archive_write_close(f->w);
  Reader r = { f->bytes, 0 };
  return lcvm_extract_image(f->dirfd, read_mem, &r, top, error);
}

static void
assert_refused(Fixture *f, LcvmExtractError code, const char *message)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *top = NULL;
  g_assert_false(extract(f, &top, &error));
  g_assert_error(error, LCVM_EXTRACT_ERROR, (gint)code);
  g_assert_nonnull(strstr(error->message, message));
  g_assert_null(top);
}

static void
test_good_image_is_extracted_with_store_modes(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.11/sub/deep/file", AE_IFREG, "x", NULL);
  add(f, "./dstack-0.5.11/link", AE_IFLNK, NULL, "sub/./deep/file");
  add(f, "dstack-0.5.11/hard", AE_IFREG, NULL, "dstack-0.5.11/bzImage");
  g_autoptr(GError) error = NULL;
  g_autofree char *top = NULL;
  g_assert_true(extract(f, &top, &error));
  g_assert_no_error(error);
  g_assert_cmpstr(top, ==, "dstack-0.5.11");
  struct stat st;
  g_assert_cmpint(fstatat(f->dirfd, "dstack-0.5.11/bzImage", &st, 0), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0644);
  g_assert_cmpint(st.st_nlink, ==, 2);
  g_assert_cmpint(fstatat(f->dirfd, "dstack-0.5.11/sub/deep", &st, 0), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 02775);
}

static void
test_dotdot_is_refused(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.11/sub/../../evil", AE_IFREG, "x", NULL);
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "contains '..'");
  g_assert_cmpint(faccessat(f->dirfd, "evil", F_OK, 0), !=, 0);
}

static void
test_absolute_path_is_refused(Fixture *f, gconstpointer data)
{
  add(f, "/dstack-0.5.11/x", AE_IFREG, "x", NULL);
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "absolute path");
}

static void
test_symlink_leaving_the_top_directory_is_refused(Fixture *f, gconstpointer data)
{
  /* Stays below the extraction dir, but leaves the image directory: still refused. */
  add_image(f);
  add(f, "dstack-0.5.11/a/link", AE_IFLNK, NULL, "../../x");
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "symlink pointing outside");
}

static void
test_symlink_dipping_out_and_back_is_refused(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.11/link", AE_IFLNK, NULL, "../dstack-0.5.11/bzImage");
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "symlink pointing outside");
}

/* Found by fuzzing: each target stays inside when read as text, but "sub/up -> .." makes the
 * second link climb two levels for real, out of the store to /etc/passwd. */
static void
test_symlink_through_a_planted_up_link_is_refused(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.11/sub/up", AE_IFLNK, NULL, "..");
  add(f, "dstack-0.5.11/passwd", AE_IFLNK, NULL, "sub/up/sub/up/sub/up/../../etc/passwd");
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "symlink pointing outside");
}

static void
test_symlink_going_up_and_down_inside_is_refused(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.11/sub/file", AE_IFREG, "x", NULL);
  add(f, "dstack-0.5.11/sub/link", AE_IFLNK, NULL, "../sub/file");
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "up ('..')");
}

static void
test_write_through_symlink_is_refused(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.11/d", AE_IFLNK, NULL, ".");
  add(f, "dstack-0.5.11/d/f", AE_IFREG, "x", NULL);
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "passes through a symlink");
}

static void
test_hardlink_to_a_later_or_outside_file_is_refused(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.11/h", AE_IFREG, NULL, "/etc/passwd");
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "hardlink to something other");
}

static void
test_device_node_is_refused(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.11/null", AE_IFCHR, NULL, NULL);
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "character device");
}

static void
test_fifo_is_refused(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.11/fifo", AE_IFIFO, NULL, NULL);
  assert_refused(f, LCVM_EXTRACT_ERROR_UNSAFE, "FIFO");
}

static void
test_second_top_directory_is_refused(Fixture *f, gconstpointer data)
{
  add_image(f);
  add(f, "dstack-0.5.12/bzImage", AE_IFREG, "x", NULL);
  assert_refused(f, LCVM_EXTRACT_ERROR_LAYOUT, "second top-level");
}

static void
test_top_directory_must_be_dstack(Fixture *f, gconstpointer data)
{
  add(f, "image/bzImage", AE_IFREG, "x", NULL);
  assert_refused(f, LCVM_EXTRACT_ERROR_LAYOUT, "top-level dstack-*");
}

static void
test_empty_archive_is_refused(Fixture *f, gconstpointer data)
{
  assert_refused(f, LCVM_EXTRACT_ERROR_LAYOUT, "empty");
}

static void
test_garbage_is_not_an_archive(void)
{
  static const char junk[] = "<html>not found</html>";
  GByteArray bytes = { (guint8 *)junk, sizeof junk };
  Reader r = { &bytes, 0 };
  g_autofree char *dir = g_dir_make_tmp("test-extract-XXXXXX", NULL);
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  g_autoptr(GError) error = NULL;
  g_autofree char *top = NULL;
  g_assert_false(lcvm_extract_image(fd, read_mem, &r, &top, &error));
  g_assert_error(error, LCVM_EXTRACT_ERROR, LCVM_EXTRACT_ERROR_FORMAT);
  close(fd);
  g_rmdir(dir);
}

static void
test_image_names(void)
{
  g_assert_true(lcvm_image_name_is_valid("dstack-nvidia-0.5.11"));
  g_assert_true(lcvm_image_name_is_valid("dstack_dev-1.0.0"));
  g_assert_false(lcvm_image_name_is_valid(""));
  g_assert_false(lcvm_image_name_is_valid(".dstack"));
  g_assert_false(lcvm_image_name_is_valid("a..b"));
  g_assert_false(lcvm_image_name_is_valid("a/b"));
  g_assert_false(lcvm_image_name_is_valid("a b"));
  g_autofree char *long_name = g_strnfill(65, 'a');
  g_assert_false(lcvm_image_name_is_valid(long_name));
}

static void
test_release_urls_follow_the_version(void)
{
  g_autoptr(LcvmConfig) config = lcvm_config_new_default();
  g_autofree char *old = lcvm_image_default_url(config, "dstack-nvidia-0.5.11");
  g_assert_cmpstr(old, ==,
                  "https://github.com/Dstack-TEE/meta-dstack/releases/download/v0.5.11/"
                  "dstack-nvidia-0.5.11.tar.gz");
  g_autofree char *mono = lcvm_image_default_url(config, "dstack-0.6.0");
  g_assert_cmpstr(mono, ==,
                  "https://github.com/Dstack-TEE/dstack/releases/download/guest-os-v0.6.0/"
                  "dstack-0.6.0.tar.gz");
  g_assert_null(lcvm_image_default_url(config, "dstack-latest"));
  g_free(config->image_url);
  config->image_url = g_strdup("http://mirror/%s/%s.tgz");
  g_autofree char *pattern = lcvm_image_default_url(config, "dstack-0.5.8");
  g_assert_cmpstr(pattern, ==, "http://mirror/dstack-0.5.8/dstack-0.5.8.tgz");
}

#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  ADD("/extract/good-image-is-extracted-with-store-modes",
      test_good_image_is_extracted_with_store_modes);
  ADD("/extract/dotdot-is-refused", test_dotdot_is_refused);
  ADD("/extract/absolute-path-is-refused", test_absolute_path_is_refused);
  ADD("/extract/symlink-leaving-the-top-directory-is-refused",
      test_symlink_leaving_the_top_directory_is_refused);
  ADD("/extract/symlink-dipping-out-and-back-is-refused",
      test_symlink_dipping_out_and_back_is_refused);
  ADD("/extract/write-through-symlink-is-refused", test_write_through_symlink_is_refused);
  ADD("/extract/symlink-through-a-planted-up-link-is-refused",
      test_symlink_through_a_planted_up_link_is_refused);
  ADD("/extract/symlink-going-up-and-down-inside-is-refused",
      test_symlink_going_up_and_down_inside_is_refused);
  ADD("/extract/hardlink-outside-is-refused", test_hardlink_to_a_later_or_outside_file_is_refused);
  ADD("/extract/device-node-is-refused", test_device_node_is_refused);
  ADD("/extract/fifo-is-refused", test_fifo_is_refused);
  ADD("/extract/second-top-directory-is-refused", test_second_top_directory_is_refused);
  ADD("/extract/top-directory-must-be-dstack", test_top_directory_must_be_dstack);
  ADD("/extract/empty-archive-is-refused", test_empty_archive_is_refused);
  g_test_add_func("/extract/garbage-is-not-an-archive", test_garbage_is_not_an_archive);
  g_test_add_func("/image/names", test_image_names);
  g_test_add_func("/image/release-urls-follow-the-version", test_release_urls_follow_the_version);
  return g_test_run();
}
