/* SPDX-License-Identifier: MIT */
/* The uid cursor's file (see the header). Written atomically, never through a symlink. */
#include "helper-uid-cursor.h"
#include "lcvm-fd.h"
#include "lcvm-layout.h"
#include "lcvm-safe-io.h"

#include <fcntl.h>
#include <unistd.h>

#define CURSOR_MAX 32

void
helper_uid_cursor_load(const LcvmConfig *config, HelperAlloc *alloc)
{
  lcvm_autofd int dir = lcvm_open_dir_at(AT_FDCWD, config->state_dir, NULL);
  g_autofree char *text = NULL;
  gboolean ok =
      dir >= 0 && lcvm_read_file_at(dir, LCVM_UID_CURSOR_FILE, CURSOR_MAX, &text, NULL, NULL);
  guint64 uid = 0;
  if (ok && g_ascii_string_to_unsigned(g_strstrip(text), 10, 0, G_MAXUINT32, &uid, NULL))
    helper_alloc_set_uid_cursor(alloc, uid);
}

void
helper_uid_cursor_save(const LcvmConfig *config, HelperAlloc *alloc)
{
  g_autofree char *text =
      g_strdup_printf("%" G_GUINT64_FORMAT "\n", helper_alloc_uid_cursor(alloc));
  g_autoptr(GError) error = NULL;
  if (!lcvm_write_file_atomic(config->state_dir, LCVM_UID_CURSOR_FILE, text, strlen(text), 0644,
                              &error))
    g_warning("cannot keep the uid cursor: %s", error->message);
}
