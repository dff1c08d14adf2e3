/* SPDX-License-Identifier: MIT */
/* The OS image store (see the header). Every file is opened below the image directory with
 * openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so a metadata.json or sha256sum.txt naming
 * "../x", "/etc/x" or a symlink is refused instead of followed. */
#include "lcvm-image.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include "lcvm-json.h"
#include "lcvm-json-depth.h"
#include "lcvm-layout.h"
#include "lcvm-safe-io.h"
#include "lcvm-sha256.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define METADATA_MAX_SIZE  (1024 * 1024)
#define SHA256SUM_MAX_SIZE (1024 * 1024)
#define IMAGE_NAME_MAX     64

/* Keys whose values name artefact files that must exist inside the image directory. */
static const char *const extra_artefact_keys[] = { "bios-sev", "hda" };

gboolean
lcvm_image_name_is_valid(const char *name)
{
  gsize len = name ? strlen(name) : 0;
  if (len == 0 || len > IMAGE_NAME_MAX || name[0] == '.' || strstr(name, "..") != NULL)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
      return FALSE;
  return TRUE;
}

void
lcvm_image_free(LcvmImage *image)
{
  if (image == NULL)
    return;
  g_free(image->name);
  g_free(image->dir);
  g_free(image->version);
  g_free(image->digest);
  g_free(image->kernel);
  g_free(image->initrd);
  g_free(image->bios);
  g_free(image->rootfs);
  g_free(image->cmdline);
  g_clear_pointer(&image->metadata_extra, g_hash_table_unref);
  g_free(image);
}

static gboolean image_error(GError **error, const LcvmImage *image, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static gboolean
image_error(GError **error, const LcvmImage *image, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
              "image %s (%s): %s; run 'lium-cvm download %s' to fetch it again", image->name,
              image->dir, msg, image->name);
  return FALSE;
}

/* An artefact: a regular file below the image directory, opened without following a symlink
 * anywhere below it and without blocking on a FIFO planted there; -1 with error otherwise. */
static int
open_artefact_at(int dirfd, const LcvmImage *image, const char *key, const char *rel,
                 GError **error)
{
  g_autoptr(GError) local = NULL;
  lcvm_autofd int fd = lcvm_open_beneath(dirfd, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK, &local);
  if (fd < 0) {
    image_error(error, image, "metadata.json \"%s\" names %s: %s", key, rel, local->message);
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, 0) < 0) {
    image_error(error, image, "metadata.json \"%s\" names %s, which is not a regular file", key,
                rel);
    return -1;
  }
  return lcvm_steal_fd(&fd);
}

static gboolean
check_artefact(int dirfd, const LcvmImage *image, const char *key, const char *rel, GError **error)
{
  lcvm_autofd int fd = open_artefact_at(dirfd, image, key, rel, error);
  if (fd < 0)
    return FALSE;
  return TRUE;
}

/* The file metadata.json names for an artefact key, NULL when it names none. */
static const char *
artefact_path(const LcvmImage *image, const char *key)
{
  if (g_str_equal(key, "kernel"))
    return image->kernel;
  if (g_str_equal(key, "initrd"))
    return image->initrd;
  if (g_str_equal(key, "bios"))
    return image->bios;
  if (g_str_equal(key, "rootfs"))
    return image->rootfs;
  return g_hash_table_lookup(image->metadata_extra, key);
}

int
lcvm_image_open_artefact(const LcvmImage *image, const char *key, GError **error)
{
  const char *rel = artefact_path(image, key);
  if (rel == NULL) {
    image_error(error, image, "metadata.json names no \"%s\"", key);
    return -1;
  }
  g_autoptr(GError) local = NULL;
  lcvm_autofd int dirfd = lcvm_open_dir_at(AT_FDCWD, image->dir, &local);
  if (dirfd < 0) {
    image_error(error, image, "%s", local->message);
    return -1;
  }
  return open_artefact_at(dirfd, image, key, rel, error);
}

static char *
member_string(JsonObject *obj, const char *key)
{
  JsonNode *node = json_object_get_member(obj, key);
  if (node == NULL || JSON_NODE_HOLDS_NULL(node))
    return NULL;
  if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING)
    return g_strdup(json_node_get_string(node));
  return json_to_string(node, FALSE);
}

static gboolean
member_bool(JsonObject *obj, const char *key)
{
  JsonNode *node = json_object_get_member(obj, key);
  return node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
         json_node_get_value_type(node) == G_TYPE_BOOLEAN && json_node_get_boolean(node);
}

static guint64
cmdline_rootfs_size(const char *cmdline)
{
  if (cmdline == NULL)
    return 0;
  g_auto(GStrv) words = g_strsplit_set(cmdline, " \t\n", -1);
  for (guint i = 0; words[i] != NULL; i++)
    if (g_str_has_prefix(words[i], "dstack.rootfs_size="))
      return g_ascii_strtoull(words[i] + strlen("dstack.rootfs_size="), NULL, 10);
  return 0;
}

/* dstack's rule when metadata has no version: the x.y.z after the last '-' of the name. */
static char *
version_from_name(const char *name)
{
  const char *dash = strrchr(name, '-');
  const char *v = dash ? dash + 1 : name;
  g_auto(GStrv) parts = g_strsplit(v, ".", -1);
  if (g_strv_length(parts) != 3)
    return g_strdup("");
  for (guint i = 0; parts[i] != NULL; i++)
    if (parts[i][0] == '\0' || strspn(parts[i], "0123456789") != strlen(parts[i]))
      return g_strdup("");
  return g_strdup(v);
}

static gboolean
parse_metadata(LcvmImage *image, const char *text, gsize len, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(GError) local = NULL;
  if (!lcvm_json_load_bounded(parser, text, (gssize)len, &local))
    return image_error(error, image, "metadata.json is not JSON: %s", local->message);
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
    return image_error(error, image, "metadata.json is not a JSON object");
  JsonObject *obj = json_node_get_object(root);
  image->kernel = member_string(obj, "kernel");
  image->initrd = member_string(obj, "initrd");
  image->bios = member_string(obj, "bios");
  image->rootfs = member_string(obj, "rootfs");
  image->cmdline = member_string(obj, "cmdline");
  image->version = member_string(obj, "version");
  image->shared_ro = member_bool(obj, "shared_ro");
  image->is_dev = member_bool(obj, "is_dev");
  image->rootfs_size = cmdline_rootfs_size(image->cmdline);
  if (image->version == NULL || image->version[0] == '\0') {
    g_free(image->version);
    image->version = version_from_name(image->name);
  }
  static const char *const known[] = { "kernel",  "initrd",    "bios",   "rootfs", "cmdline",
                                       "version", "shared_ro", "is_dev", NULL };
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *l = members; l != NULL; l = l->next)
    if (!g_strv_contains(known, l->data))
      g_hash_table_insert(image->metadata_extra, g_strdup(l->data), member_string(obj, l->data));
  if (image->kernel == NULL || image->initrd == NULL)
    return image_error(error, image, "metadata.json lacks the required \"kernel\" or \"initrd\"");
  return TRUE;
}

static gboolean
check_artefacts(int dirfd, const LcvmImage *image, GError **error)
{
  struct {
    const char *key;
    const char *value;
  } files[] = {
    { "kernel", image->kernel },
    { "initrd", image->initrd },
    { "bios", image->bios },
    { "rootfs", image->rootfs },
    { "bios-sev", g_hash_table_lookup(image->metadata_extra, extra_artefact_keys[0]) },
    { "hda", g_hash_table_lookup(image->metadata_extra, extra_artefact_keys[1]) },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(files); i++)
    if (files[i].value != NULL &&
        !check_artefact(dirfd, image, files[i].key, files[i].value, error))
      return FALSE;
  return TRUE;
}

static gboolean
load_digest(int dirfd, LcvmImage *image, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) local = NULL;
  if (!lcvm_read_file_at(dirfd, LCVM_IMAGE_DIGEST_FILE, 4096, &text, NULL, &local)) {
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
      return TRUE;
    return image_error(error, image, "%s", local->message);
  }
  g_strstrip(text);
  if (!lcvm_sha256_is_hex(text))
    return image_error(error, image, "digest.txt does not hold a sha256 (64 hex digits)");
  image->digest = g_ascii_strdown(text, -1);
  return TRUE;
}

LcvmImage *
lcvm_image_load_dir(const char *dir, const char *name, GError **error)
{
  g_autoptr(LcvmImage) image = g_new0(LcvmImage, 1);
  image->name = g_strdup(name);
  image->dir = g_strdup(dir);
  image->metadata_extra = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GError) local = NULL;
  lcvm_autofd int dirfd = lcvm_open_dir_at(AT_FDCWD, dir, &local);
  if (dirfd < 0) {
    g_set_error(error, G_IO_ERROR, local->code,
                "image %s is not in the image store (%s): %s; run "
                "'lium-cvm download %s'",
                name, dir, local->message, name);
    return NULL;
  }
  g_autofree char *text = NULL;
  gsize len = 0;
  gboolean ok =
      lcvm_read_file_at(dirfd, LCVM_IMAGE_METADATA_FILE, METADATA_MAX_SIZE, &text, &len, &local);
  if (!ok)
    image_error(error, image, "%s", local->message);
  ok = ok && parse_metadata(image, text, len, error) && check_artefacts(dirfd, image, error) &&
       load_digest(dirfd, image, error);
  return ok ? g_steal_pointer(&image) : NULL;
}

LcvmImage *
lcvm_image_load(const LcvmConfig *config, const char *name, GError **error)
{
  g_autofree char *dir = lcvm_layout_image_dir(config, name, error);
  if (dir == NULL)
    return NULL;
  return lcvm_image_load_dir(dir, name, error);
}

/* One "HEX  NAME" (or "HEX *NAME") line of sha256sum.txt. */
static gboolean
check_sum_line(int dirfd, const LcvmImage *image, const char *line, GError **error)
{
  const char *sep = strchr(line, ' ');
  if (sep == NULL || sep - line != LCVM_SHA256_HEX_LEN)
    return image_error(error, image, "sha256sum.txt has a malformed line: '%s'", line);
  g_autofree char *want = g_ascii_strdown(line, LCVM_SHA256_HEX_LEN);
  const char *file = sep + 1;
  if (*file == ' ' || *file == '*')
    file++;
  if (!lcvm_sha256_is_hex(want) || *file == '\0')
    return image_error(error, image, "sha256sum.txt has a malformed line: '%s'", line);
  g_autoptr(GError) local = NULL;
  lcvm_autofd int fd = lcvm_open_beneath(dirfd, file, O_RDONLY | O_NONBLOCK, &local);
  if (fd < 0)
    return image_error(error, image, "sha256sum.txt lists %s: %s", file, local->message);
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return image_error(error, image, "sha256sum.txt lists %s, which is not a regular file", file);
  g_autofree char *got = lcvm_sha256_fd(fd, file, &local);
  if (got == NULL)
    return image_error(error, image, "%s", local->message);
  if (!g_str_equal(got, want))
    return image_error(error, image,
                       "%s does not match sha256sum.txt (sha256 %s, expected %s): the file was "
                       "modified or damaged",
                       file, got, want);
  return TRUE;
}

static gboolean
verify_sums(int dirfd, const LcvmImage *image, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  if (!lcvm_read_file_at(dirfd, LCVM_IMAGE_SHA256SUM_FILE, SHA256SUM_MAX_SIZE, &text, &len, &local))
    return image_error(error, image, "%s", local->message);
  if (image->digest == NULL)
    return image_error(error, image, "digest.txt is missing");
  g_autofree char *digest = lcvm_sha256_data(text, len);
  if (!g_str_equal(digest, image->digest))
    return image_error(error, image, "digest.txt (%s) is not the sha256 of sha256sum.txt (%s)",
                       image->digest, digest);
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  guint checked = 0;
  for (guint i = 0; lines[i] != NULL; i++) {
    char *line = g_strchomp(lines[i]);
    if (*line == '\0')
      continue;
    if (!check_sum_line(dirfd, image, line, error))
      return FALSE;
    checked++;
  }
  if (checked == 0)
    return image_error(error, image, "sha256sum.txt lists no files");
  return TRUE;
}

gboolean
lcvm_image_verify(const LcvmImage *image, GError **error)
{
  lcvm_autofd int dirfd = lcvm_open_dir_at(AT_FDCWD, image->dir, error);
  if (dirfd < 0)
    return FALSE;
  gboolean ok = check_artefacts(dirfd, image, error) && verify_sums(dirfd, image, error);
  return ok;
}

static gint
compare_images(gconstpointer a, gconstpointer b)
{
  const LcvmImage *ia = *(const LcvmImage *const *)a;
  const LcvmImage *ib = *(const LcvmImage *const *)b;
  return strcmp(ia->name, ib->name);
}

GPtrArray *
lcvm_image_list(const LcvmConfig *config, GError **error)
{
  g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func((GDestroyNotify)lcvm_image_free);
  g_autofree char *store = lcvm_layout_images_dir(config);
  g_autoptr(GError) local = NULL;
  g_autoptr(GDir) dir = g_dir_open(store, 0, &local);
  if (dir == NULL) {
    if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      return g_steal_pointer(&images);
    g_propagate_prefixed_error(error, g_steal_pointer(&local), "cannot list the image store: ");
    return NULL;
  }
  for (const char *name = g_dir_read_name(dir); name != NULL; name = g_dir_read_name(dir)) {
    if (!lcvm_image_name_is_valid(name))
      continue;
    LcvmImage *image = lcvm_image_load(config, name, NULL);
    if (image != NULL)
      g_ptr_array_add(images, image);
  }
  g_ptr_array_sort(images, compare_images);
  return g_steal_pointer(&images);
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The stamp's content: the digest, then "name size mtime inode" for every top-level entry. */
static char *
image_signature(const LcvmImage *image, guint64 *total_size)
{
  lcvm_autofd int dirfd = lcvm_open_dir_at(AT_FDCWD, image->dir, NULL);
  if (dirfd < 0)
    return NULL;
  DIR *dir = fdopendir(dirfd);
  if (dir == NULL)
    return NULL;
  int entries_fd = lcvm_steal_fd(&dirfd); /* closedir closes it */
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
  guint64 total = 0;
  for (struct dirent *d = readdir(dir); d != NULL; d = readdir(dir)) {
    struct stat st;
    if (d->d_name[0] == '.' || fstatat(entries_fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      continue;
    total += (guint64)st.st_size;
    g_ptr_array_add(lines,
                    g_strdup_printf("%s %" G_GUINT64_FORMAT " %" G_GINT64_FORMAT
                                    ".%09ld %" G_GUINT64_FORMAT "\n",
                                    d->d_name, (guint64)st.st_size, (gint64)st.st_mtim.tv_sec,
                                    st.st_mtim.tv_nsec, (guint64)st.st_ino));
  }
  closedir(dir);
  g_ptr_array_sort(lines, compare_strings);
  GString *sig = g_string_new(image->digest ? image->digest : "-");
  g_string_append_c(sig, '\n');
  for (guint i = 0; i < lines->len; i++)
    g_string_append(sig, lines->pdata[i]);
  if (total_size != NULL)
    *total_size = total;
  return g_string_free(sig, FALSE);
}

gboolean
lcvm_image_mark_verified(const LcvmImage *image, GError **error)
{
  g_autofree char *sig = image_signature(image, NULL);
  if (sig == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot read the image directory %s",
                image->dir);
    return FALSE;
  }
  g_autofree char *store = g_path_get_dirname(image->dir);
  g_autofree char *stamp = lcvm_layout_image_stamp(image->name);
  return lcvm_write_file_atomic(store, stamp, sig, strlen(sig), 0664, error);
}

LcvmImageState
lcvm_image_state(const LcvmImage *image)
{
  g_autofree char *store = g_path_get_dirname(image->dir);
  g_autofree char *stamp = lcvm_layout_image_stamp(image->name);
  g_autofree char *recorded = NULL;
  lcvm_autofd int dirfd = lcvm_open_dir_at(AT_FDCWD, store, NULL);
  if (dirfd < 0)
    return LCVM_IMAGE_UNVERIFIED;
  gboolean have = lcvm_read_file_at(dirfd, stamp, 1024 * 1024, &recorded, NULL, NULL);
  if (!have)
    return LCVM_IMAGE_UNVERIFIED;
  g_autofree char *sig = image_signature(image, NULL);
  return g_strcmp0(sig, recorded) == 0 ? LCVM_IMAGE_VERIFIED : LCVM_IMAGE_MODIFIED;
}

const char *
lcvm_image_state_name(LcvmImageState state)
{
  switch (state) {
  case LCVM_IMAGE_VERIFIED:
    return "verified";
  case LCVM_IMAGE_MODIFIED:
    return "modified";
  case LCVM_IMAGE_UNVERIFIED:
    return "unverified";
  }
  return "unverified";
}

guint64
lcvm_image_size(const LcvmImage *image)
{
  guint64 total = 0;
  g_autofree char *sig = image_signature(image, &total);
  return total;
}

static char *
manifest_image(const char *vms, const char *vm)
{
  g_autofree char *vmdir = g_build_filename(vms, vm, NULL);
  lcvm_autofd int dirfd = lcvm_open_dir_at(AT_FDCWD, vmdir, NULL);
  if (dirfd < 0)
    return NULL;
  g_autofree char *text = NULL;
  gsize len = 0;
  gboolean ok = lcvm_read_file_at(dirfd, LCVM_MANIFEST_FILE, 16 * 1024 * 1024, &text, &len, NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!ok || !lcvm_json_load_bounded(parser, text, (gssize)len, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
    return NULL;
  return member_string(json_node_get_object(root), "image");
}

GStrv
lcvm_image_users(const LcvmConfig *config, const char *name)
{
  g_autoptr(GStrvBuilder) users = g_strv_builder_new();
  g_autofree char *vms = lcvm_layout_vms_dir(config);
  g_autoptr(GDir) dir = g_dir_open(vms, 0, NULL);
  for (const char *vm = dir ? g_dir_read_name(dir) : NULL; vm != NULL; vm = g_dir_read_name(dir)) {
    g_autofree char *image = manifest_image(vms, vm);
    if (g_strcmp0(image, name) == 0)
      g_strv_builder_add(users, vm);
  }
  return g_strv_builder_end(users);
}

gboolean
lcvm_image_remove(const LcvmConfig *config, const char *name, GError **error)
{
  if (!lcvm_image_name_is_valid(name)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "'%s' is not an image name", name);
    return FALSE;
  }
  g_autofree char *store = lcvm_layout_images_dir(config);
  lcvm_autofd int dirfd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (dirfd < 0 || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                "image %s is not in the image store %s (see 'lium-cvm images')", name, store);
    return FALSE;
  }
  /* The download lock: never remove an image while it is being (re)installed. */
  g_autofree char *lock = lcvm_layout_image_lock(name);
  lcvm_autofd int lockfd = openat(dirfd, lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0664);
  if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
    if (errno != EWOULDBLOCK)
      return lcvm_set_errno(error, errno, "cannot remove image %s", name);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                "cannot remove image %s: a download of it is running; try again when it ends",
                name);
    return FALSE;
  }
  /* Rename first so a half-removed tree is never mistaken for the image. */
  g_autofree char *doomed = g_strdup_printf(".%s.removing-%08x", name, g_random_int());
  g_autofree char *stamp = lcvm_layout_image_stamp(name);
  gboolean ok = TRUE;
  if (renameat(dirfd, name, dirfd, doomed) < 0) {
    lcvm_set_errno(error, errno, "cannot remove %s/%s", store, name);
    ok = FALSE;
  }
  ok = ok && lcvm_remove_tree_at(dirfd, stamp, error) && lcvm_remove_tree_at(dirfd, doomed, error);
  return ok;
}

void
lcvm_image_add_json_members(JsonBuilder *b, const LcvmImage *image)
{
  json_builder_set_member_name(b, "name");
  json_builder_add_string_value(b, image->name);
  json_builder_set_member_name(b, "dir");
  json_builder_add_string_value(b, image->dir);
  json_builder_set_member_name(b, "version");
  json_builder_add_string_value(b, image->version);
  lcvm_json_add_string_or_null(b, "digest", image->digest);
  json_builder_set_member_name(b, "is_dev");
  json_builder_add_boolean_value(b, image->is_dev);
  json_builder_set_member_name(b, "size");
  json_builder_add_int_value(b, (gint64)lcvm_image_size(image));
  json_builder_set_member_name(b, "state");
  json_builder_add_string_value(b, lcvm_image_state_name(lcvm_image_state(image)));
}
