/* SPDX-License-Identifier: MIT */
/* File primitives that never follow a symlink in the last component and never leave a
 * half-written file: create with O_CREAT|O_EXCL|O_NOFOLLOW under a temporary name, fsync,
 * renameat into place. */
#pragma once
#include <glib.h>
#include <sys/types.h>

/* Opens a directory (O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC) relative to dirfd (AT_FDCWD ok). */
int lcvm_open_dir_at(int dirfd, const char *path, GError **error);

/* Writes name inside dir atomically with the given mode. */
gboolean lcvm_write_file_atomic(const char *dir, const char *name, const void *data, gsize len,
                                mode_t mode, GError **error);
gboolean lcvm_write_file_atomic_at(int dirfd, const char *name, const void *data, gsize len,
                                   mode_t mode, GError **error);

/* Reads a regular file relative to dirfd without following a symlink, refusing files larger
 * than max bytes. The result is NUL-terminated. */
gboolean lcvm_read_file_at(int dirfd, const char *name, gsize max, char **contents, gsize *len,
                           GError **error);
/* lcvm_read_file_at for a file someone less trusted could have put there, whose bytes root then
 * hands on: also refuses a file with more than one name (G_IO_ERROR_PERMISSION_DENIED), which
 * may be a hard link to a file its writer could not read (fs.protected_hardlinks=0). */
gboolean lcvm_read_untrusted_file_at(int dirfd, const char *name, gsize max, char **contents,
                                     gsize *len, GError **error);

/* Opens path (relative, may have several components) below dirfd with openat2
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS: no component may be a symlink or leave dirfd. */
int lcvm_open_beneath(int dirfd, const char *path, int flags, GError **error);

/* Removes name (a file or a whole directory tree) relative to dirfd without following any
 * symlink. A missing name is not an error. */
gboolean lcvm_remove_tree_at(int dirfd, const char *name, GError **error);
