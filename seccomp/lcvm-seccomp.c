/* SPDX-License-Identifier: MIT */
/* The deny-lists themselves. Every rule is one line of a table below with the reason for its
 * action; reference/qemu-sandbox.md §1.2 lists what QEMU's own -sandbox misses (umount2, the
 * module and kexec_file calls, ptrace, bpf, io_uring, the new mount API, ...), §3.3–3.4 what
 * QEMU must keep (execve once, seccomp, prctl, clone for threads, sched_setaffinity, ioctl,
 * memfd_create, ...). KILL_PROCESS only where no library in QEMU's process has a reason to call:
 * a kill on a benign probe takes the whole VM down. Never denied here: anything in §3.3's
 * "must not be denied" list. */
#include "lcvm-seccomp.h"
#include "lcvm-error.h"
#include <errno.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CMPS 2

typedef struct {
  const char *syscall;
  guint32 action;
  guint n_cmps;
  struct scmp_arg_cmp cmps[MAX_CMPS];
} Rule;

/* clang-format off */
#define KILL(name)        { .syscall = (name), .action = SCMP_ACT_KILL_PROCESS }
#define DENY(name, err)   { .syscall = (name), .action = SCMP_ACT_ERRNO(err) }
#define ARG(n, cmp, a, b) { .arg = (n), .op = (cmp), .datum_a = (a), .datum_b = (b) }
/* clang-format on */
/* Flag tests mask the argument, so garbage in the upper half of the register cannot dodge them. */
#define ARG_HAS(n, flag) ARG(n, SCMP_CMP_MASKED_EQ, (flag), (flag))

static const Rule qemu_rules[] = {
  /* Reading or writing another process. QEMU never does; with them a compromised VMM could
   * reach any other process of its uid. */
  KILL("ptrace"),
  KILL("process_vm_readv"),
  KILL("process_vm_writev"),
  KILL("process_madvise"),
  KILL("kcmp"),
  KILL("pidfd_getfd"),
  /* Host takeover primitives; QEMU's list has reboot/swap/kexec_load but not these others. */
  KILL("kexec_load"),
  KILL("kexec_file_load"),
  KILL("init_module"),
  KILL("finit_module"),
  KILL("delete_module"),
  KILL("reboot"),
  KILL("swapon"),
  KILL("swapoff"),
  KILL("acct"),
  /* Mounting. QEMU's own "umount" rule is a pseudo-syscall on x86_64 that never matches, and it
   * knows nothing of the 5.2+ mount API. An unprivileged VMM never mounts. */
  KILL("mount"),
  KILL("umount2"),
  KILL("pivot_root"),
  KILL("chroot"),
  KILL("fsopen"),
  KILL("fsconfig"),
  KILL("fsmount"),
  KILL("fspick"),
  KILL("move_mount"),
  KILL("open_tree"),
  KILL("mount_setattr"),
  /* Raw port I/O and LDT games: VFIO goes through device regions, never port I/O. */
  KILL("iopl"),
  KILL("ioperm"),
  KILL("modify_ldt"),
  /* The spawn uses execve; nothing execs by fd. */
  KILL("execveat"),
  /* Obsolete calls (QEMU's obsolete set kills them too, but only after its init). */
  KILL("uselib"),
  KILL("ustat"),
  KILL("sysfs"),
  KILL("_sysctl"),
  KILL("lookup_dcookie"),
  /* New namespaces through clone. Threads (CLONE_VM|CLONE_THREAD|...) stay allowed: QEMU and
   * glibc need them. CLONE_NEWTIME is absent: in clone()'s flags that bit is the exit signal. */
  { "clone", SCMP_ACT_KILL_PROCESS, 1, { ARG_HAS(0, CLONE_NEWNS) } },
  { "clone", SCMP_ACT_KILL_PROCESS, 1, { ARG_HAS(0, CLONE_NEWCGROUP) } },
  { "clone", SCMP_ACT_KILL_PROCESS, 1, { ARG_HAS(0, CLONE_NEWUTS) } },
  { "clone", SCMP_ACT_KILL_PROCESS, 1, { ARG_HAS(0, CLONE_NEWIPC) } },
  { "clone", SCMP_ACT_KILL_PROCESS, 1, { ARG_HAS(0, CLONE_NEWUSER) } },
  { "clone", SCMP_ACT_KILL_PROCESS, 1, { ARG_HAS(0, CLONE_NEWPID) } },
  { "clone", SCMP_ACT_KILL_PROCESS, 1, { ARG_HAS(0, CLONE_NEWNET) } },
  /* clone3 passes its flags in memory seccomp cannot read. ENOSYS (not EPERM) is what makes
   * glibc fall back to clone(), where the flags above are checked — QEMU's -sandbox does the
   * same. EPERM here would make every pthread_create in QEMU fail. */
  DENY("clone3", ENOSYS),
  /* Namespace entry and creation: user/pid/net namespaces open kernel surface an unprivileged
   * process otherwise cannot reach. EPERM, as for an unprivileged caller without user ns. */
  DENY("unshare", EPERM),
  DENY("setns", EPERM),
  /* Kernel surface reachable without privilege that QEMU uses only optionally and probes:
   * bpf (virtio-net RSS falls back to software steering), userfaultfd (postcopy only),
   * perf_event_open (profiling). */
  DENY("bpf", EPERM),
  DENY("perf_event_open", EPERM),
  DENY("userfaultfd", EPERM),
  /* io_uring operations are invisible to seccomp. QEMU and liburing probe it and fall back to
   * epoll/thread-pool aio on ENOSYS. */
  DENY("io_uring_setup", ENOSYS),
  DENY("io_uring_enter", ENOSYS),
  DENY("io_uring_register", ENOSYS),
  /* Keyrings: shared kernel state; libraries may probe them (krb5, gnutls' keyring support). */
  DENY("keyctl", EPERM),
  DENY("add_key", EPERM),
  DENY("request_key", EPERM),
  /* Path escapes by file handle; libraries use name_to_handle_at to probe mount ids. */
  DENY("open_by_handle_at", EPERM),
  DENY("name_to_handle_at", EPERM),
  /* Host-wide state. adjtimex/clock_adjtime with modes 0 only read, but nothing in QEMU reads
   * the NTP state. */
  DENY("settimeofday", EPERM),
  DENY("clock_settime", EPERM),
  DENY("clock_adjtime", EPERM),
  DENY("adjtimex", EPERM),
  DENY("sethostname", EPERM),
  DENY("setdomainname", EPERM),
  DENY("syslog", EPERM),
  DENY("quotactl", EPERM),
  DENY("quotactl_fd", EPERM),
  /* The uid/group/capability drop is done before the filter is loaded; afterwards nothing
   * legitimate is left to do with these (QEMU's elevateprivileges set misses both). */
  DENY("setgroups", EPERM),
  DENY("capset", EPERM),
};

/* The bridge is our own single-process server: it never forks and talks only to its loopback
 * socket, the key provider (TCP) and sock_diag (to check a peer's uid). */
static const Rule bridge_rules[] = {
  KILL("fork"),
  KILL("vfork"),
  { "clone", SCMP_ACT_KILL_PROCESS, 1, { ARG(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0) } },
};

/* Which sockets a profile may open: these families (every other one up to AF_NETLINK is denied
 * one by one, everything above AF_NETLINK — AF_PACKET, AF_VSOCK, AF_ALG, AF_BLUETOOTH, ... —
 * with one rule, so no autoloadable family is reachable) and, of AF_NETLINK, one protocol. */
typedef struct {
  int netlink_protocol;
} SocketPolicy;

static const int socket_families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };

/* QEMU: UNIX (QMP, fd passing), INET/INET6 (slirp and its host forwards), NETLINK_ROUTE
 * (getaddrinfo's AI_ADDRCONFIG). Not AF_VSOCK: vhost-vsock is driven through /dev/vhost-vsock
 * ioctls and the guest's vsock traffic never passes through QEMU's own sockets; only a
 * tdx-guest quote-generation-socket of type vsock would need it, and the argv builder emits
 * none (the guest reaches QGS over its own vsock). AF_VSOCK from QEMU's uid could reach any
 * other guest's CID, which seccomp cannot check (connect's address is in memory). */
static const SocketPolicy qemu_sockets = { NETLINK_ROUTE };
/* The bridge: its loopback server, the key provider, and sock_diag for the peer's uid. */
static const SocketPolicy bridge_sockets = { NETLINK_SOCK_DIAG };

gboolean
lcvm_seccomp_profile_from_name(const char *name, LcvmSeccompProfile *profile)
{
  if (g_strcmp0(name, "qemu") == 0)
    *profile = LCVM_SECCOMP_QEMU;
  else if (g_strcmp0(name, "bridge") == 0)
    *profile = LCVM_SECCOMP_BRIDGE;
  else
    return FALSE;
  return TRUE;
}

const char *
lcvm_seccomp_profile_name(LcvmSeccompProfile profile)
{
  return profile == LCVM_SECCOMP_BRIDGE ? "bridge" : "qemu";
}

static gboolean
add_rule(scmp_filter_ctx ctx, const Rule *rule, GError **error)
{
  int nr = seccomp_syscall_resolve_name(rule->syscall);
  /* Negative: unknown to this libseccomp (-1) or a pseudo-syscall absent on this arch (e.g.
   * umount on x86_64) — a rule on it would never match. */
  if (nr < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "libseccomp %u.%u.%u does not know the native syscall '%s'; install "
                "libseccomp 2.5.4 or newer and rebuild lium-cvm",
                seccomp_version()->major, seccomp_version()->minor, seccomp_version()->micro,
                rule->syscall);
    return FALSE;
  }
  int r = seccomp_rule_add_exact_array(ctx, rule->action, nr, rule->n_cmps, rule->cmps);
  if (r < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "adding the seccomp rule for '%s' failed: %s (a bug in the rule table)",
                rule->syscall, g_strerror(-r));
    return FALSE;
  }
  return TRUE;
}

static gboolean
add_rules(scmp_filter_ctx ctx, const Rule *rules, gsize n, GError **error)
{
  for (gsize i = 0; i < n; i++) {
    if (!add_rule(ctx, &rules[i], error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
family_allowed(int family)
{
  for (gsize i = 0; i < G_N_ELEMENTS(socket_families); i++) {
    if (socket_families[i] == family)
      return TRUE;
  }
  return FALSE;
}

static gboolean
add_socket_rules(scmp_filter_ctx ctx, const SocketPolicy *policy, GError **error)
{
  for (int family = 0; family <= AF_NETLINK; family++) {
    if (family_allowed(family))
      continue;
    Rule r = { "socket",
               SCMP_ACT_ERRNO(EAFNOSUPPORT),
               1,
               { ARG(0, SCMP_CMP_MASKED_EQ, 0xffffffffu, (scmp_datum_t)family) } };
    if (!add_rule(ctx, &r, error))
      return FALSE;
  }
  /* A 64-bit "greater than": a value with garbage in the upper half is denied too, which only
   * ever refuses a call the kernel would have read as a small family. */
  Rule above = {
    "socket", SCMP_ACT_ERRNO(EAFNOSUPPORT), 1, { ARG(0, SCMP_CMP_GT, AF_NETLINK, 0) }
  };
  Rule netlink = { "socket",
                   SCMP_ACT_ERRNO(EPROTONOSUPPORT),
                   2,
                   { ARG(0, SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_NETLINK),
                     ARG(2, SCMP_CMP_NE, (scmp_datum_t)policy->netlink_protocol, 0) } };
  return add_rule(ctx, &above, error) && add_rule(ctx, &netlink, error);
}

scmp_filter_ctx
lcvm_seccomp_build(LcvmSeccompProfile profile, GError **error)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "libseccomp could not create a filter (out of memory?)");
    return NULL;
  }
  /* Native arch only; an i386 (int 0x80) or x32 syscall kills the whole process, not just the
   * calling thread (libseccomp's default) — a QEMU with a dead vCPU thread is worse than none. */
  gboolean ok = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) == 0 &&
                add_rules(ctx, qemu_rules, G_N_ELEMENTS(qemu_rules), error);
  if (ok && profile == LCVM_SECCOMP_BRIDGE)
    ok = add_rules(ctx, bridge_rules, G_N_ELEMENTS(bridge_rules), error) &&
         add_socket_rules(ctx, &bridge_sockets, error);
  else if (ok)
    ok = add_socket_rules(ctx, &qemu_sockets, error);
  if (!ok) {
    if (error != NULL && *error == NULL)
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "libseccomp refused a filter attribute");
    seccomp_release(ctx);
    return NULL;
  }
  return ctx;
}

GBytes *
lcvm_seccomp_export_bpf(LcvmSeccompProfile profile, GError **error)
{
  scmp_filter_ctx ctx = lcvm_seccomp_build(profile, error);
  if (ctx == NULL)
    return NULL;
  int fd = memfd_create("lcvm-seccomp-bpf", MFD_CLOEXEC);
  int r = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
  seccomp_release(ctx);
  struct stat st;
  if (r == 0 && fstat(fd, &st) < 0)
    r = -errno;
  if (r < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "exporting the %s seccomp filter failed: %s",
                lcvm_seccomp_profile_name(profile), g_strerror(-r));
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  gsize len = (gsize)st.st_size;
  g_autofree guint8 *buf = g_malloc(len);
  ssize_t n = pread(fd, buf, len, 0);
  close(fd);
  if (n != (ssize_t)len || len == 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "reading back the %s seccomp filter failed (%zd of %zu bytes)",
                lcvm_seccomp_profile_name(profile), n, len);
    return NULL;
  }
  return g_bytes_new_take(g_steal_pointer(&buf), len);
}
