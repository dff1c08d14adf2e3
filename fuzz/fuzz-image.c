/* SPDX-License-Identifier: MIT */
/* An image directory as the store reads it (common/lcvm-image.c): metadata.json, sha256sum.txt
 * and digest.txt (the input split at its first two NUL bytes), loaded and verified against the
 * artefacts of a minimal image (bzImage, initramfs.cpio.gz, ovmf.fd). */
#include "fuzz.h"
#include "lcvm-image.h"
#include "lcvm-safe-io.h"
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#define NAME "dstack-0.5.11"

static char *dir;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_fatal_criticals();
  g_autofree char *tmp = g_dir_make_tmp("lcvm-fuzz-image-XXXXXX", NULL);
  dir = g_build_filename(tmp, NAME, NULL);
  g_mkdir(dir, 0755);
  static const char *const artefacts[] = { "bzImage", "initramfs.cpio.gz", "ovmf.fd" };
  for (guint i = 0; i < G_N_ELEMENTS(artefacts); i++) {
    g_autofree char *path = g_build_filename(dir, artefacts[i], NULL);
    g_file_set_contents(path, artefacts[i], -1, NULL);
  }
  return 0;
}

static void
put(const char *name, const char *text)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_file_set_contents(path, text, -1, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *parts[3];
  fuzz_split(data, size, 3, parts);
  put("metadata.json", parts[0]);
  put("sha256sum.txt", parts[1]);
  put("digest.txt", parts[2]);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmImage) image = lcvm_image_load_dir(dir, NAME, &error);
  if (image == NULL) {
    g_assert(g_utf8_validate(error->message, -1, NULL));
  } else if (!lcvm_image_verify(image, &error)) {
    g_assert(g_utf8_validate(error->message, -1, NULL));
  }
  for (guint i = 0; i < 3; i++)
    g_free(parts[i]);
  return 0;
}
