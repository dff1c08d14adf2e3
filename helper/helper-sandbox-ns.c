/* SPDX-License-Identifier: MIT */
/* A confined child's own root (see the header). The construction is bubblewrap's: a tmpfs on
 * /tmp becomes the root with the old root below it at /oldroot, the new view is assembled at
 * /newroot from /oldroot sources, the old root is detached and /newroot pivoted into place.
 * Every step is one entry of a plan made before fork; the child runs them in order with raw
 * system calls and reports the index of the one that failed. Never follows a symlink an
 * operator could plant: host paths are resolved in the parent from root-owned locations or
 * come confined from the caller. */
#include "helper-sandbox-ns.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define BASE     "/tmp"
#define OLD_ROOT "/oldroot"
#define NEW_ROOT "/newroot"

typedef enum {
  STEP_UNSHARE,
  STEP_MAKE_PRIVATE,
  STEP_TMPFS,   /* dst, data = options */
  STEP_PROC,    /* dst */
  STEP_CHDIR,   /* dst */
  STEP_MKDIR,   /* dst, mode */
  STEP_FILE,    /* dst: an empty file to bind a file onto */
  STEP_PIVOT,   /* dst = new root, data = put_old */
  STEP_BIND,    /* src onto dst, then flags applied by a remount (0: none) */
  STEP_MKNOD,   /* dst, mode, rdev, owner */
  STEP_SYMLINK, /* data = link text, dst */
  STEP_UMOUNT,  /* dst, detached */
  STEP_REMOUNT, /* dst, flags */
  STEP_SCOPE,   /* Landlock scopes, where the kernel has them */
} StepKind;

typedef struct {
  StepKind kind;
  const char *src;
  const char *dst;
  const char *data;
  unsigned long flags;
  mode_t mode;
  dev_t rdev;
} Step;

struct _HelperSandbox {
  uid_t uid;
  gid_t gid;
  GArray *steps;       /* Step: the prologue and the view; the epilogue is static */
  GPtrArray *strings;  /* what the steps point into */
  GHashTable *created; /* directories below /newroot already in the plan */
  GPtrArray *bound;    /* host paths bound into the view (and /proc): nothing may go below */
  GPtrArray *mounted;  /* the view's own tmpfs mounts: nothing may hide one */
};

#define RO_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV)
/* STEP_MKNOD flag: the node belongs to the child's uid (the basic nodes stay root's, 0666). */
#define OWNED_BY_CHILD 1UL

/* Landlock ABI 6 (Linux 6.12) scopes, newer than the installed headers: the child may not
 * connect to abstract UNIX sockets bound outside its domain (the host's network namespace is
 * QEMU's, for slirp, and abstract sockets are per network namespace) nor signal processes
 * outside it. Older kernels: skipped. */
#define LANDLOCK_ABI_SCOPES        6
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SCOPE_SIGNAL               (1ULL << 1)

typedef struct {
  guint64 handled_access_fs;
  guint64 handled_access_net;
  guint64 scoped;
} ScopedRulesetAttr;

/* Leaves the old root behind and makes /newroot the root, read-only, then scopes it. */
/* clang-format off */
static const Step epilogue[] = {
  { STEP_UMOUNT, NULL, OLD_ROOT, NULL, 0, 0, 0 },
  { STEP_CHDIR, NULL, NEW_ROOT, NULL, 0, 0, 0 },
  { STEP_PIVOT, NULL, ".", ".", 0, 0, 0 },
  { STEP_UMOUNT, NULL, ".", NULL, 0, 0, 0 },
  { STEP_CHDIR, NULL, "/", NULL, 0, 0, 0 },
  { STEP_REMOUNT, NULL, "/", NULL, RO_FLAGS, 0, 0 },
  { STEP_SCOPE, NULL, NULL, NULL, 0, 0, 0 },
};
/* clang-format on */

/* Device nodes every program expects (mode as on any host). */
static const struct {
  const char *name;
  unsigned major, minor;
} basic_nodes[] = {
  { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 },
};

/* Top-level entries that lead into /usr (links on merged-/usr systems, dirs elsewhere). */
static const char *const usr_links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };

/* /etc, file by file: the dynamic loader's cache, the resolvers slirp forwards the guest's DNS
 * to, what getaddrinfo reads for a configured host name (the bridge's key provider), the time
 * zone. Absent ones are left out. */
static const char *const etc_files[] = { "ld.so.cache", "resolv.conf", "hosts", "nsswitch.conf",
                                         "localtime" };

static const char *
keep(HelperSandbox *sb, char *text)
{
  g_ptr_array_add(sb->strings, text);
  return text;
}

static void
add_step(HelperSandbox *sb, Step step)
{
  g_array_append_val(sb->steps, step);
}

static const char *
new_path(HelperSandbox *sb, const char *path)
{
  return keep(sb, g_strconcat(NEW_ROOT, path, NULL));
}

static const char *
old_path(HelperSandbox *sb, const char *path)
{
  return keep(sb, g_strconcat(OLD_ROOT, path, NULL));
}

/* mkdir -p of path (absolute, inside the new root), once per directory. */
static void
plan_mkdirs(HelperSandbox *sb, const char *path, mode_t mode)
{
  g_auto(GStrv) parts = g_strsplit(path, "/", -1);
  g_autoptr(GString) at = g_string_new("");
  for (guint i = 0; parts[i] != NULL; i++) {
    if (parts[i][0] == '\0')
      continue;
    g_string_append_printf(at, "/%s", parts[i]);
    if (g_hash_table_contains(sb->created, at->str))
      continue;
    g_hash_table_add(sb->created, g_strdup(at->str));
    add_step(sb, (Step){ STEP_MKDIR, NULL, new_path(sb, at->str), NULL, 0, mode, 0 });
  }
}

static void
plan_bind(HelperSandbox *sb, const char *host_path, const char *path, unsigned long flags)
{
  g_ptr_array_add(sb->bound, g_strdup(path));
  add_step(sb, (Step){ STEP_BIND, old_path(sb, host_path), new_path(sb, path), NULL, flags, 0, 0 });
}

static void
plan_tmpfs(HelperSandbox *sb, const char *path, const char *options, unsigned long flags)
{
  g_ptr_array_add(sb->mounted, g_strdup(path));
  plan_mkdirs(sb, path, 0755);
  add_step(sb, (Step){ STEP_TMPFS, NULL, new_path(sb, path), options, flags, 0, 0 });
}

static void
plan_prologue(HelperSandbox *sb)
{
  add_step(sb, (Step){ STEP_UNSHARE });
  add_step(sb, (Step){ STEP_MAKE_PRIVATE, NULL, "/" });
  add_step(sb, (Step){ STEP_TMPFS, NULL, BASE, "mode=0755,size=1m", MS_NOSUID | MS_NODEV });
  add_step(sb, (Step){ STEP_CHDIR, NULL, BASE });
  add_step(sb, (Step){ STEP_MKDIR, NULL, "newroot", NULL, 0, 0755 });
  add_step(sb, (Step){ STEP_MKDIR, NULL, "oldroot", NULL, 0, 0755 });
  add_step(sb, (Step){ STEP_PIVOT, NULL, BASE, "oldroot" });
  add_step(sb, (Step){ STEP_CHDIR, NULL, "/" });
  add_step(sb, (Step){ STEP_BIND, NEW_ROOT, NEW_ROOT });
}

static void
plan_usr(HelperSandbox *sb)
{
  plan_mkdirs(sb, "/usr", 0755);
  plan_bind(sb, "/usr", "/usr", RO_FLAGS);
  for (guint i = 0; i < G_N_ELEMENTS(usr_links); i++) {
    g_autofree char *host = g_strconcat("/", usr_links[i], NULL);
    struct stat st;
    if (lstat(host, &st) < 0)
      continue;
    if (S_ISLNK(st.st_mode)) {
      char *target = g_file_read_link(host, NULL);
      if (target != NULL)
        add_step(sb, (Step){ STEP_SYMLINK, NULL, new_path(sb, host), keep(sb, target) });
    } else if (S_ISDIR(st.st_mode)) {
      plan_mkdirs(sb, host, 0755);
      plan_bind(sb, host, host, RO_FLAGS);
    }
  }
}

static void
plan_etc(HelperSandbox *sb)
{
  plan_mkdirs(sb, "/etc", 0755);
  for (guint i = 0; i < G_N_ELEMENTS(etc_files); i++) {
    g_autofree char *host = g_strconcat("/etc/", etc_files[i], NULL);
    /* The bind's source is looked up below /oldroot, where an absolute link would resolve
     * against the new root: resolve it here (root-owned /etc, not an operator's path). */
    g_autofree char *real = realpath(host, NULL);
    struct stat st;
    if (real == NULL || stat(real, &st) < 0 || !S_ISREG(st.st_mode))
      continue;
    add_step(sb, (Step){ STEP_FILE, NULL, new_path(sb, host) });
    plan_bind(sb, real, host, RO_FLAGS | MS_NOEXEC);
  }
}

static void
plan_dev(HelperSandbox *sb)
{
  plan_tmpfs(sb, "/dev", "mode=0755,size=64k", MS_NOSUID | MS_NOEXEC);
  for (guint i = 0; i < G_N_ELEMENTS(basic_nodes); i++) {
    g_autofree char *path = g_strconcat("/dev/", basic_nodes[i].name, NULL);
    add_step(sb, (Step){ STEP_MKNOD, NULL, new_path(sb, path), NULL, 0, S_IFCHR | 0666,
                         makedev(basic_nodes[i].major, basic_nodes[i].minor) });
  }
  add_step(sb, (Step){ STEP_SYMLINK, NULL, new_path(sb, "/dev/fd"), "/proc/self/fd" });
  add_step(sb, (Step){ STEP_SYMLINK, NULL, new_path(sb, "/dev/stdin"), "/proc/self/fd/0" });
  add_step(sb, (Step){ STEP_SYMLINK, NULL, new_path(sb, "/dev/stdout"), "/proc/self/fd/1" });
  add_step(sb, (Step){ STEP_SYMLINK, NULL, new_path(sb, "/dev/stderr"), "/proc/self/fd/2" });
  plan_tmpfs(sb, "/dev/shm", "mode=1777,size=64m", MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

HelperSandbox *
helper_sandbox_new(uid_t uid, gid_t gid)
{
  HelperSandbox *sb = g_new0(HelperSandbox, 1);
  sb->uid = uid;
  sb->gid = gid;
  sb->steps = g_array_new(FALSE, TRUE, sizeof(Step));
  sb->strings = g_ptr_array_new_with_free_func(g_free);
  sb->created = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  sb->bound = g_ptr_array_new_with_free_func(g_free);
  sb->mounted = g_ptr_array_new_with_free_func(g_free);
  plan_prologue(sb);
  plan_usr(sb);
  plan_etc(sb);
  plan_mkdirs(sb, "/sys", 0755);
  /* The sysfs mount alone (no MS_REC): cgroup, debugfs, tracefs, ... stay out. */
  plan_bind(sb, "/sys", "/sys", RO_FLAGS | MS_NOEXEC);
  plan_mkdirs(sb, "/proc", 0755);
  add_step(sb, (Step){ STEP_PROC, NULL, new_path(sb, "/proc") });
  g_ptr_array_add(sb->bound, g_strdup("/proc"));
  plan_dev(sb);
  plan_tmpfs(sb, "/tmp", "mode=1777,size=64m", MS_NOSUID | MS_NODEV);
  plan_mkdirs(sb, "/run", 0755);
  return sb;
}

void
helper_sandbox_free(HelperSandbox *sandbox)
{
  if (sandbox == NULL)
    return;
  g_array_unref(sandbox->steps);
  g_ptr_array_unref(sandbox->strings);
  g_hash_table_unref(sandbox->created);
  g_ptr_array_unref(sandbox->bound);
  g_ptr_array_unref(sandbox->mounted);
  g_free(sandbox);
}

static gboolean
plain_absolute(const char *path)
{
  if (path == NULL || path[0] != '/' || strstr(path, "//") != NULL)
    return FALSE;
  g_auto(GStrv) parts = g_strsplit(path + 1, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    if (g_str_equal(parts[i], ".") || g_str_equal(parts[i], ".."))
      return FALSE;
  return TRUE;
}

/* Whether host_node can appear as /dev/NAME: a plain name, a node that exists, a device when
 * one is asked for, never a directory. *st receives its stat. */
static gboolean
node_ok(const char *host_node, const char *name, gboolean device, struct stat *st, GError **error)
{
  g_autofree char *path = g_strconcat("/dev/", name, NULL);
  const char *why = !plain_absolute(path)     ? "not a plain name below /dev"
                    : stat(host_node, st) < 0 ? g_strerror(errno)
                    : S_ISDIR(st->st_mode)    ? "a directory"
                                              : NULL;
  if (why == NULL && device && !S_ISCHR(st->st_mode) && !S_ISBLK(st->st_mode))
    why = "not a character or block device";
  if (why != NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s cannot be given to QEMU as /dev/%s: %s; check dev_root in lium-cvm.conf",
                host_node, name, why);
    return FALSE;
  }
  return TRUE;
}

/* The mount point's directories and the node's path inside the new root. */
static const char *
plan_node_path(HelperSandbox *sb, const char *name)
{
  g_autofree char *path = g_strconcat("/dev/", name, NULL);
  g_autofree char *dir = g_path_get_dirname(path);
  plan_mkdirs(sb, dir, 0755);
  return new_path(sb, path);
}

gboolean
helper_sandbox_add_device(HelperSandbox *sb, const char *host_node, const char *name,
                          GError **error)
{
  struct stat st;
  if (!node_ok(host_node, name, TRUE, &st, error))
    return FALSE;
  add_step(sb, (Step){ STEP_MKNOD, NULL, plan_node_path(sb, name), NULL, OWNED_BY_CHILD,
                       (st.st_mode & S_IFMT) | 0600, st.st_rdev });
  return TRUE;
}

gboolean
helper_sandbox_bind_node(HelperSandbox *sb, const char *host_node, const char *name, GError **error)
{
  struct stat st;
  if (!node_ok(host_node, name, FALSE, &st, error))
    return FALSE;
  const char *target = plan_node_path(sb, name);
  add_step(sb, (Step){ STEP_FILE, NULL, target });
  /* Not MS_NODEV: it is a device node. */
  add_step(sb,
           (Step){ STEP_BIND, old_path(sb, host_node), target, NULL, MS_NOSUID | MS_NOEXEC, 0, 0 });
  return TRUE;
}

/* Whether a and b are the same path or one lies below the other. */
static gboolean
nested(const char *a, const char *b)
{
  gsize la = strlen(a), lb = strlen(b), n = MIN(la, lb);
  return strncmp(a, b, n) == 0 && (la == lb || (la > lb ? a[n] : b[n]) == '/');
}

/* What path would overlap in the view: a bound directory (or /proc) it equals, lies below or
 * contains — its mount point would be made in the host's directory — or one of the view's own
 * tmpfs mounts it would hide. NULL when none. */
static const char *
overlapped(const HelperSandbox *sb, const char *path)
{
  for (guint i = 0; i < sb->bound->len; i++)
    if (nested(path, sb->bound->pdata[i]))
      return sb->bound->pdata[i];
  for (guint i = 0; i < sb->mounted->len; i++)
    if (g_str_equal(path, sb->mounted->pdata[i]))
      return sb->mounted->pdata[i];
  return NULL;
}

gboolean
helper_sandbox_add_dir(HelperSandbox *sb, const char *path, gboolean writable, GError **error)
{
  if (!plain_absolute(path) || g_str_equal(path, "/")) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "cannot show %s to a confined child: not a plain absolute directory path", path);
    return FALSE;
  }
  const char *other = overlapped(sb, path);
  if (other != NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "cannot show %s to a confined child: it overlaps %s, which it already sees", path,
                other);
    return FALSE;
  }
  plan_mkdirs(sb, path, 0755);
  plan_bind(sb, path, path, writable ? MS_NOSUID | MS_NODEV | MS_NOEXEC : RO_FLAGS);
  return TRUE;
}

/* ---- child side: system calls only ---------------------------------------------------- */

static int
run_bind(const Step *s)
{
  if (mount(s->src, s->dst, NULL, MS_BIND, NULL) < 0)
    return -1;
  if (s->flags == 0)
    return 0;
  return mount(NULL, s->dst, NULL, MS_BIND | MS_REMOUNT | s->flags, NULL);
}

static int
run_mknod(const Step *s, uid_t uid, gid_t gid)
{
  if (mknod(s->dst, s->mode, s->rdev) < 0)
    return -1;
  if ((s->flags & OWNED_BY_CHILD) && chown(s->dst, uid, gid) < 0)
    return -1;
  return 0;
}

/* Allowed before no_new_privs because the child still has CAP_SYS_ADMIN; it outlives the uid
 * drop and execve. */
static int
run_scope(void)
{
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < LANDLOCK_ABI_SCOPES)
    return 0;
  ScopedRulesetAttr attr = { 0, 0, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL };
  lcvm_autofd int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (fd < 0)
    return -1;
  return (int)syscall(SYS_landlock_restrict_self, fd, 0);
}

static int
run_step(const Step *s, uid_t uid, gid_t gid)
{
  switch (s->kind) {
  case STEP_UNSHARE:
    return unshare(CLONE_NEWNS | CLONE_NEWIPC);
  case STEP_MAKE_PRIVATE:
    return mount(NULL, s->dst, NULL, MS_REC | MS_PRIVATE, NULL);
  case STEP_TMPFS:
    return mount("tmpfs", s->dst, "tmpfs", s->flags, s->data);
  case STEP_PROC:
    return mount("proc", s->dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2");
  case STEP_CHDIR:
    return chdir(s->dst);
  case STEP_MKDIR:
    return mkdir(s->dst, s->mode) < 0 && errno != EEXIST ? -1 : 0;
  case STEP_FILE: {
    int fd = open(s->dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
    return fd < 0 ? -1 : close(fd);
  }
  case STEP_PIVOT:
    return (int)syscall(SYS_pivot_root, s->dst, s->data);
  case STEP_BIND:
    return run_bind(s);
  case STEP_MKNOD:
    return run_mknod(s, uid, gid);
  case STEP_SYMLINK:
    return symlink(s->data, s->dst);
  case STEP_UMOUNT:
    return umount2(s->dst, MNT_DETACH);
  case STEP_REMOUNT:
    return mount(NULL, s->dst, NULL, MS_BIND | MS_REMOUNT | s->flags, NULL);
  case STEP_SCOPE:
    return run_scope();
  }
  errno = EINVAL;
  return -1;
}

static const Step *
step_at(const HelperSandbox *sb, int i)
{
  if (i < 0)
    return NULL;
  if ((guint)i < sb->steps->len)
    return &g_array_index(sb->steps, Step, i);
  i -= (int)sb->steps->len;
  return i < (int)G_N_ELEMENTS(epilogue) ? &epilogue[i] : NULL;
}

int
helper_sandbox_enter(const HelperSandbox *sb, int *failed_step)
{
  mode_t saved = umask(0);
  for (int i = 0;; i++) {
    const Step *s = step_at(sb, i);
    if (s == NULL)
      break;
    if (run_step(s, sb->uid, sb->gid) < 0) {
      *failed_step = i;
      return -1;
    }
  }
  umask(saved);
  return 0;
}

char *
helper_sandbox_describe(const HelperSandbox *sb, int i)
{
  static const char *const verbs[] = {
    [STEP_UNSHARE] = "unshare the mount and IPC namespaces",
    [STEP_MAKE_PRIVATE] = "make mounts private below",
    [STEP_TMPFS] = "mount a tmpfs on",
    [STEP_PROC] = "mount a procfs on",
    [STEP_CHDIR] = "enter",
    [STEP_MKDIR] = "create the directory",
    [STEP_FILE] = "create the mount point",
    [STEP_PIVOT] = "pivot the root to",
    [STEP_BIND] = "bind-mount onto",
    [STEP_MKNOD] = "create the device node",
    [STEP_SYMLINK] = "create the link",
    [STEP_UMOUNT] = "detach",
    [STEP_REMOUNT] = "remount read-only",
    [STEP_SCOPE] = "scope abstract UNIX sockets and signals (Landlock)",
  };
  const Step *s = step_at(sb, i);
  if (s == NULL)
    return NULL;
  if (s->kind == STEP_UNSHARE || s->kind == STEP_SCOPE)
    return g_strdup(verbs[s->kind]);
  if (s->kind == STEP_BIND)
    return g_strdup_printf("%s %s from %s", verbs[s->kind], s->dst, s->src);
  return g_strdup_printf("%s %s", verbs[s->kind], s->dst);
}
