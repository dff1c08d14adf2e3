/* SPDX-License-Identifier: MIT */
/* The host's CVM data disks (see the header). */
#include "lcvm-inventory.h"
#include "lcvm-fd.h"
#include "lcvm-json-depth.h"
#include "lcvm-layout.h"
#include "lcvm-manifest.h"
#include "lcvm-mrenclave.h"
#include "lcvm-safe-io.h"
#include "lcvm-sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SWEEP_MAX_DEPTH 12
#define SMALL_FILE_MAX  (1024 * 1024)
#define COMPOSE_MAX     (16 * 1024 * 1024)

/* File systems that never hold a data disk (the guard's find skips the same). */
static const char *const pseudo_fs[] = {
  "proc",     "sysfs",   "devtmpfs",    "devpts", "tmpfs",     "cgroup",   "cgroup2",  "pstore",
  "bpf",      "tracefs", "debugfs",     "mqueue", "hugetlbfs", "fusectl",  "configfs", "securityfs",
  "efivarfs", "autofs",  "binfmt_misc", "nsfs",   "overlay",   "squashfs", NULL,
};

static void
disk_free(gpointer p)
{
  LcvmInventoryDisk *d = p;
  g_free(d->owner);
  g_free(d->name);
  g_free(d->dir);
  g_free(d->state);
  g_free(d->image);
  g_free(d->os_image_hash);
  g_free(d->compose_hash);
  g_free(d->mrenclave);
  g_free(d);
}

void
lcvm_inventory_free(LcvmInventory *inv)
{
  if (inv == NULL)
    return;
  g_ptr_array_unref(inv->disks);
  g_ptr_array_unref(inv->incomplete);
  g_ptr_array_unref(inv->notes);
  g_free(inv);
}

static gboolean
has_disk(int dirfd)
{
  struct stat st;
  return fstatat(dirfd, LCVM_INSTANCE_DATA_DISK, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISREG(st.st_mode);
}

static gboolean
exists_at(int dirfd, const char *name)
{
  struct stat st;
  return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static char *
sha256_of(int dirfd, const char *name)
{
  g_autofree char *bytes = NULL;
  gsize len = 0;
  if (!lcvm_read_file_at(dirfd, name, COMPOSE_MAX, &bytes, &len, NULL))
    return NULL;
  return lcvm_sha256_data(bytes, len);
}

static char *
mrenclave_of(int dirfd)
{
  return lcvm_mrenclave_read_at(dirfd, LCVM_INSTANCE_MRENCLAVE_FILE);
}

/* ---- lium-cvm's own ---- */

typedef struct {
  LcvmInventory *inv;
  GHashTable *seen; /* "dev:ino" of every VM directory and walked directory */
  guint unreadable; /* directories the sweep could not read */
} Scan;

static char *
dir_key(int dirfd)
{
  struct stat st;
  if (fstat(dirfd, &st) != 0)
    return NULL;
  return g_strdup_printf("%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
}

/* TRUE the first time a directory is seen. */
static gboolean
first_visit(Scan *s, int dirfd)
{
  char *key = dir_key(dirfd);
  return key != NULL && g_hash_table_add(s->seen, key);
}

static void
add_own_disk(Scan *s, const LcvmConfig *config, int instances, int vms, const char *name)
{
  lcvm_autofd int dir = lcvm_open_dir_at(instances, name, NULL);
  if (dir < 0 || !has_disk(dir) || !first_visit(s, dir)) {
    return;
  }
  LcvmInventoryDisk *d = g_new0(LcvmInventoryDisk, 1);
  d->owner = g_strdup("lium-cvm");
  d->name = g_strdup(name);
  g_autofree char *instances_path = lcvm_layout_instances_dir(config);
  d->dir = g_build_filename(instances_path, name, NULL); /* as listed: any entry name */
  d->mrenclave = mrenclave_of(dir);
  g_autoptr(LcvmManifest) m = vms >= 0 ? lcvm_manifest_load_vm(vms, name, NULL, NULL) : NULL;
  d->state = g_strdup(m ? "defined" : "orphan");
  if (m != NULL) {
    d->image = g_strdup(m->image);
    d->os_image_hash = g_strdup(m->os_image_hash);
    d->compose_hash = g_strdup(m->compose_hash);
  }
  g_ptr_array_add(s->inv->disks, d);
}

/* The entries of dirfd not starting with '.', sorted; NULL (errno set) when unreadable. */
static GPtrArray *
dir_names(int dirfd)
{
  lcvm_autofd int dup = dirfd >= 0 ? fcntl(dirfd, F_DUPFD_CLOEXEC, 0) : -1;
  DIR *dir = dup >= 0 ? fdopendir(dup) : NULL;
  if (dir == NULL) {
    if (dirfd < 0)
      errno = ENOENT;
    return NULL;
  }
  lcvm_steal_fd(&dup); /* closedir closes it */
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  for (struct dirent *e = readdir(dir); e != NULL; e = readdir(dir))
    if (e->d_name[0] != '.')
      g_ptr_array_add(names, g_strdup(e->d_name));
  closedir(dir);
  g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
  return names;
}

/* instances/ is root's (0711): an operator cannot list it, only reach a known name in it. */
static void
scan_own(Scan *s, const LcvmConfig *config)
{
  lcvm_autofd int state = lcvm_open_dir_at(AT_FDCWD, config->state_dir, NULL);
  lcvm_autofd int instances = state >= 0 ? lcvm_open_dir_at(state, LCVM_STATE_INSTANCES, NULL) : -1;
  gboolean listable = instances >= 0 || errno != EACCES;
  if (!listable) /* search permission only: reach the names we know */
    instances = openat(state, LCVM_STATE_INSTANCES, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  lcvm_autofd int vms = state >= 0 ? lcvm_open_dir_at(state, LCVM_STATE_VMS, NULL) : -1;
  g_autoptr(GPtrArray) names = listable ? dir_names(instances) : NULL;
  if (!listable && instances >= 0) {
    g_ptr_array_add(s->inv->notes,
                    g_strdup_printf("%s/" LCVM_STATE_INSTANCES
                                    " is not listable by you: only VMs with a "
                                    "definition were looked at (run as root to see orphans)",
                                    config->state_dir));
    names = dir_names(vms);
  }
  for (guint i = 0; names != NULL && i < names->len; i++)
    add_own_disk(s, config, instances, vms, names->pdata[i]);
}

/* ---- Lium checkouts: run/vms/NAME as dstack.py lays it out (lium.md §1.4) ---- */

static JsonObject *
json_file_object(int dirfd, const char *name, JsonParser *parser)
{
  g_autofree char *bytes = NULL;
  gsize len = 0;
  if (!lcvm_read_file_at(dirfd, name, SMALL_FILE_MAX, &bytes, &len, NULL) ||
      !lcvm_json_load_bounded(parser, bytes, (gssize)len, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root(parser);
  return root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
}

static char *
string_member(JsonObject *o, const char *name)
{
  return o != NULL ? g_strdup(lcvm_json_string_member(o, name)) : NULL;
}

/* shared/.sys-config.json → vm_config (a JSON string) → os_image_hash. */
static char *
lium_os_image_hash(int shared)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autofree char *vm_config =
      string_member(json_file_object(shared, ".sys-config.json", parser), "vm_config");
  g_autoptr(JsonParser) inner = json_parser_new_immutable();
  if (vm_config == NULL || !lcvm_json_load_bounded(inner, vm_config, -1, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root(inner);
  return root && JSON_NODE_HOLDS_OBJECT(root)
             ? string_member(json_node_get_object(root), "os_image_hash")
             : NULL;
}

static void
add_lium_disk(Scan *s, int dirfd, const char *path)
{
  if (!first_visit(s, dirfd))
    return;
  LcvmInventoryDisk *d = g_new0(LcvmInventoryDisk, 1);
  d->owner = g_strdup("lium-cvm.sh");
  d->name = g_path_get_basename(path);
  d->dir = g_strdup(path);
  gboolean manifest = exists_at(dirfd, LCVM_MANIFEST_FILE);
  d->state = g_strdup(exists_at(dirfd, "runtime.json") ? "running"
                      : manifest                       ? "stopped"
                                                       : "orphan");
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  d->image = string_member(json_file_object(dirfd, LCVM_MANIFEST_FILE, parser), "image");
  lcvm_autofd int shared = lcvm_open_dir_at(dirfd, "shared", NULL);
  if (shared >= 0) {
    d->compose_hash = sha256_of(shared, LCVM_APP_COMPOSE_FILE);
    d->os_image_hash = lium_os_image_hash(shared);
  }
  g_ptr_array_add(s->inv->disks, d);
}

/* A registered VM root (a checkout's run/vms): every VM directory in it with a disk. */
static void
scan_registered_root(Scan *s, const char *root)
{
  lcvm_autofd int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_autoptr(GPtrArray) names = fd >= 0 ? dir_names(fd) : NULL;
  if (names == NULL) {
    int err = errno;
    g_ptr_array_add(s->inv->incomplete,
                    g_strdup_printf("the registered VM root %s is %s", root,
                                    err == ENOENT ? "missing" : g_strerror(err)));
    return;
  }
  for (guint i = 0; i < names->len; i++) {
    lcvm_autofd int vm = lcvm_open_dir_at(fd, names->pdata[i], NULL);
    if (vm >= 0 && has_disk(vm)) {
      g_autofree char *path = g_build_filename(root, names->pdata[i], NULL);
      add_lium_disk(s, vm, path);
    }
  }
}

static void
scan_registry(Scan *s, const char *registry)
{
  if (registry[0] == '\0')
    return;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  if (!g_file_get_contents(registry, &text, NULL, &error)) {
    if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      g_ptr_array_add(s->inv->incomplete,
                      g_strdup_printf("Lium's VM registry: %s", error->message));
    return;
  }
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *root = g_strstrip(lines[i]);
    if (root[0] == '/')
      scan_registered_root(s, root);
  }
}

/* A directory the sweep could not enter (errno): a disk may hide there. */
static void
unreadable(Scan *s, const char *path)
{
  int err = errno;
  if (err == ENOENT)
    return; /* gone while we looked */
  if (++s->unreadable <= 5)
    g_ptr_array_add(s->inv->incomplete,
                    g_strdup_printf("cannot search %s: %s", path, g_strerror(err)));
}

/* find -xdev: below dirfd (path) on its own file system, VM directories are those with a disk. */
static void
walk(Scan *s, int dirfd, const char *path, dev_t dev, guint depth)
{
  g_autoptr(GPtrArray) names = dir_names(dirfd);
  if (names == NULL) {
    unreadable(s, path);
    return;
  }
  for (guint i = 0; i < names->len; i++) {
    const char *name = names->pdata[i];
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_dev != dev)
      continue;
    g_autofree char *subpath = g_build_filename(path, name, NULL);
    lcvm_autofd int sub = lcvm_open_dir_at(dirfd, name, NULL);
    if (sub < 0) {
      unreadable(s, subpath);
      continue;
    }
    if (has_disk(sub))
      add_lium_disk(s, sub, subpath);
    else if (depth < SWEEP_MAX_DEPTH && first_visit(s, sub))
      walk(s, sub, subpath, dev, depth + 1);
  }
}

static void
sweep(Scan *s, const char *root)
{
  lcvm_autofd int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (errno != ENOENT)
      g_ptr_array_add(s->inv->incomplete,
                      g_strdup_printf("cannot search %s: %s", root, g_strerror(errno)));
    return;
  }
  if (has_disk(fd))
    add_lium_disk(s, fd, root);
  else if (first_visit(s, fd))
    walk(s, fd, root, st.st_dev, 0);
}

/* Octal escapes of /proc/self/mounts ("\040" for a space). */
static char *
unescape_mount(const char *field)
{
  GString *out = g_string_new(NULL);
  for (const char *p = field; *p; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
        p[3] <= '7') {
      g_string_append_c(out, (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0')));
      p += 3;
    } else {
      g_string_append_c(out, *p);
    }
  }
  return g_string_free(out, FALSE);
}

/* The sweep roots and every real file system mounted below one of them. */
static GPtrArray *
sweep_roots(const LcvmConfig *config)
{
  GPtrArray *roots = g_ptr_array_new_with_free_func(g_free);
  g_auto(GStrv) words = g_strsplit_set(config->sweep_roots, " \t,", -1);
  for (guint i = 0; words[i] != NULL; i++)
    if (words[i][0] == '/')
      g_ptr_array_add(roots, g_strdup(words[i]));
  guint configured = roots->len;
  g_autofree char *mounts_path = g_build_filename(config->proc_root, "self", "mounts", NULL);
  g_autofree char *mounts = NULL;
  if (!g_file_get_contents(mounts_path, &mounts, NULL, NULL))
    return roots;
  g_auto(GStrv) lines = g_strsplit(mounts, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_auto(GStrv) f = g_strsplit(lines[i], " ", 4);
    if (g_strv_length(f) < 3 || g_strv_contains(pseudo_fs, f[2]))
      continue;
    g_autofree char *point = unescape_mount(f[1]);
    for (guint r = 0; r < configured; r++) {
      g_autofree char *prefix = g_strconcat(roots->pdata[r], "/", NULL);
      if (g_str_has_prefix(point, prefix)) {
        g_ptr_array_add(roots, g_steal_pointer(&point));
        break;
      }
    }
  }
  return roots;
}

LcvmInventory *
lcvm_inventory_scan(const LcvmConfig *config)
{
  LcvmInventory *inv = g_new0(LcvmInventory, 1);
  inv->disks = g_ptr_array_new_with_free_func(disk_free);
  inv->incomplete = g_ptr_array_new_with_free_func(g_free);
  inv->notes = g_ptr_array_new_with_free_func(g_free);
  Scan s = { .inv = inv, .seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL) };
  scan_own(&s, config);
  scan_registry(&s, config->lium_registry);
  g_autoptr(GPtrArray) roots = sweep_roots(config);
  for (guint i = 0; i < roots->len; i++)
    sweep(&s, roots->pdata[i]);
  if (s.unreadable > 5)
    g_ptr_array_add(inv->incomplete, g_strdup_printf("… and %u more directories that could not "
                                                     "be searched",
                                                     s.unreadable - 5));
  g_hash_table_unref(s.seen);
  return inv;
}

int
lcvm_inventory_status(const LcvmInventory *inv)
{
  if (inv->incomplete->len > 0)
    return LCVM_INVENTORY_INCOMPLETE;
  return inv->disks->len > 0 ? LCVM_INVENTORY_DISKS : LCVM_INVENTORY_NONE;
}

static void
set_optional(JsonObject *o, const char *name, const char *value)
{
  if (value != NULL)
    json_object_set_string_member(o, name, value);
  else
    json_object_set_null_member(o, name);
}

static JsonArray *
string_array(GPtrArray *strings)
{
  JsonArray *a = json_array_new();
  for (guint i = 0; i < strings->len; i++)
    json_array_add_string_element(a, strings->pdata[i]);
  return a;
}

JsonNode *
lcvm_inventory_to_json(const LcvmInventory *inv)
{
  JsonObject *root = json_object_new();
  JsonArray *disks = json_array_new();
  for (guint i = 0; i < inv->disks->len; i++) {
    const LcvmInventoryDisk *d = inv->disks->pdata[i];
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "owner", d->owner);
    json_object_set_string_member(o, "name", d->name);
    json_object_set_string_member(o, "dir", d->dir);
    g_autofree char *disk = g_build_filename(d->dir, LCVM_INSTANCE_DATA_DISK, NULL);
    json_object_set_string_member(o, "disk", disk);
    json_object_set_string_member(o, "state", d->state);
    set_optional(o, "image", d->image);
    set_optional(o, "os_image_hash", d->os_image_hash);
    set_optional(o, "compose_hash", d->compose_hash);
    set_optional(o, "key_provider_mrenclave", d->mrenclave);
    json_array_add_object_element(disks, o);
  }
  json_object_set_array_member(root, "disks", disks);
  json_object_set_array_member(root, "incomplete", string_array(inv->incomplete));
  json_object_set_array_member(root, "notes", string_array(inv->notes));
  json_object_set_int_member(root, "exit_status", lcvm_inventory_status(inv));
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);
  json_node_take_object(node, root);
  return node;
}
