/* SPDX-License-Identifier: MIT */
/* Image archive extraction (common/lcvm-extract.c): the input is the archive (any format and
 * compression libarchive reads), extracted into an empty directory. Afterwards nothing may
 * exist outside it, and no link inside it may resolve outside it. */
#include "fuzz.h"
#include "lcvm-extract.h"
#include "lcvm-safe-io.h"
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <unistd.h>

static char *base; /* holds "x/" (the extraction) and nothing else */

typedef struct {
  const uint8_t *data;
  size_t size;
} Source;

static gssize
read_source(gpointer user_data, void *buf, gsize len, GError **error)
{
  Source *s = user_data;
  gsize n = MIN(len, s->size);
  memcpy(buf, s->data, n);
  s->data += n;
  s->size -= n;
  return (gssize)n;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_fatal_criticals();
  base = g_dir_make_tmp("lcvm-fuzz-extract-XXXXXX", NULL);
  return 0;
}

/* Every symlink under dir must resolve (realpath) inside root, or not at all. */
static void
check_links(const char *root, const char *dir)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  const char *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
      g_autofree char *real = realpath(path, NULL);
      g_assert(real == NULL || g_str_has_prefix(real, root));
    } else if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
      check_links(root, path);
    }
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  int basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert(basefd >= 0);
  g_assert(mkdirat(basefd, "x", 0755) == 0);
  int dirfd = openat(basefd, "x", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  Source s = { data, size };
  g_autofree char *top = NULL;
  g_autoptr(GError) error = NULL;
  if (!lcvm_extract_image(dirfd, read_source, &s, &top, &error))
    g_assert(g_utf8_validate(error->message, -1, NULL));
  g_autofree char *root = g_build_filename(base, "x", NULL);
  g_autofree char *real_root = realpath(root, NULL);
  check_links(real_root, root);
  close(dirfd);
  g_assert(lcvm_remove_tree_at(basefd, "x", NULL));
  g_autoptr(GDir) d = g_dir_open(base, 0, NULL);
  g_assert(g_dir_read_name(d) == NULL); /* nothing was written beside it */
  close(basefd);
  return 0;
}
