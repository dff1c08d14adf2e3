/* SPDX-License-Identifier: MIT */
/* The confined spawn. The child runs between fork and execve in a possibly multi-threaded
 * parent, so it never allocates, never takes a lock and calls nothing but system calls: the
 * argv/envp arrays, the BPF program, the group list and /dev/null are all prepared before fork.
 * The order of the child's steps is the point of this file (DESIGN §6); do not reorder. */
#include "helper-spawn.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define GIB             (G_GUINT64_CONSTANT(1) << 30)
#define SPAWN_MAX_FDS   64
#define CHILD_EXIT_CODE 127

typedef enum {
  STEP_SIGNALS,
  STEP_FDS,
  STEP_SETSID,
  STEP_RLIMIT_MEMLOCK,
  STEP_RLIMIT_CORE,
  STEP_RLIMIT_DATA,
  STEP_RLIMIT_FSIZE,
  STEP_SANDBOX,
  STEP_BOUNDING_SET,
  STEP_SETGROUPS,
  STEP_SETRESGID,
  STEP_SETRESUID,
  STEP_VERIFY_DROP,
  STEP_CHDIR,
  STEP_CAPABILITIES,
  STEP_NO_NEW_PRIVS,
  STEP_SECCOMP,
  STEP_EXECVE,
  N_STEPS
} SpawnStep;

static const char *const step_names[N_STEPS] = {
  [STEP_SIGNALS] = "reset signals",
  [STEP_FDS] = "pass fds",
  [STEP_SETSID] = "setsid",
  [STEP_RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK",
  [STEP_RLIMIT_CORE] = "RLIMIT_CORE",
  [STEP_RLIMIT_DATA] = "RLIMIT_DATA",
  [STEP_RLIMIT_FSIZE] = "RLIMIT_FSIZE",
  [STEP_SANDBOX] = "enter the sandbox",
  [STEP_BOUNDING_SET] = "drop capability bounding set",
  [STEP_SETGROUPS] = "setgroups",
  [STEP_SETRESGID] = "setresgid",
  [STEP_SETRESUID] = "setresuid",
  [STEP_VERIFY_DROP] = "verify uid drop",
  [STEP_CHDIR] = "chdir",
  [STEP_CAPABILITIES] = "clear capabilities",
  [STEP_NO_NEW_PRIVS] = "no_new_privs",
  [STEP_SECCOMP] = "load seccomp filter",
  [STEP_EXECVE] = "execve",
};

/* What the child reads; all of it owned by the parent and built before fork. */
typedef struct {
  const char *path;
  char *const *argv;
  char *const *envp;
  int src[SPAWN_MAX_FDS + 1]; /* + /dev/null */
  int dst[SPAWN_MAX_FDS + 1];
  int n_fds;
  int devnull; /* index into src/dst */
  const char *cwd;
  mode_t umask;
  uid_t uid;
  gid_t gid;
  const HelperSandbox *sandbox;
  guint64 memlock;
  guint64 data_limit;
  guint64 file_size_limit;
  struct sock_fprog prog;
  int report_fd;
} ChildPlan;

typedef struct {
  gint32 step;
  gint32 err;
  gint32 detail; /* STEP_SANDBOX: the index of the sandbox step that failed */
} ChildReport;

guint64
helper_spawn_memlock_for(guint64 ram_bytes, guint n_vfio_devices)
{
  return n_vfio_devices > 0 ? ram_bytes + GIB : 0;
}

/* ---- child side: system calls only ---------------------------------------------------- */

static G_GNUC_NORETURN void
child_fail_at(const ChildPlan *plan, SpawnStep step, int err, int detail)
{
  ChildReport report = { step, err, detail };
  while (write(plan->report_fd, &report, sizeof report) < 0 && errno == EINTR)
    ;
  _exit(CHILD_EXIT_CODE);
}

static G_GNUC_NORETURN void
child_fail(const ChildPlan *plan, SpawnStep step, int err)
{
  child_fail_at(plan, step, err, -1);
}

/* Handlers are reset by execve anyway, but ignored signals and the blocked mask are inherited:
 * a helper worker thread blocks signals, and a QEMU with SIGTERM blocked would ignore a stop. */
static int
child_reset_signals(void)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, NULL); /* glibc's internal signals answer EINVAL: fine */
  }
  sigset_t none;
  sigemptyset(&none);
  return sigprocmask(SIG_SETMASK, &none, NULL);
}

static gboolean
child_is_target(const ChildPlan *plan, int fd)
{
  for (int i = 0; i < plan->n_fds; i++) {
    if (plan->dst[i] == fd)
      return TRUE;
  }
  return FALSE;
}

/* Every source is first copied above the highest target, so no dup2 into a target can clobber
 * a source still to be moved; then the copies land on their numbers (dup2 clears CLOEXEC) and
 * everything else except the report pipe is closed. */
static int
child_pass_fds(ChildPlan *plan)
{
  int max_dst = 2;
  for (int i = 0; i < plan->n_fds; i++)
    max_dst = MAX(max_dst, plan->dst[i]);
  int moved[SPAWN_MAX_FDS + 1];
  for (int i = 0; i < plan->n_fds; i++) {
    moved[i] = fcntl(plan->src[i], F_DUPFD_CLOEXEC, max_dst + 1);
    if (moved[i] < 0)
      return -1;
  }
  int report = fcntl(plan->report_fd, F_DUPFD_CLOEXEC, max_dst + 1);
  if (report < 0)
    return -1;
  plan->report_fd = report;
  for (int i = 0; i < plan->n_fds; i++) {
    if (i != plan->devnull && dup2(moved[i], plan->dst[i]) < 0)
      return -1;
  }
  for (int fd = 0; fd <= max_dst; fd++) {
    if (child_is_target(plan, fd))
      continue;
    if (fd > 2)
      close(fd);
    else if (dup2(moved[plan->devnull], fd) < 0)
      return -1;
  }
  if (report > max_dst + 1 && close_range(max_dst + 1, report - 1, 0) < 0)
    return -1;
  return close_range(report + 1, ~0U, 0);
}

static int
child_drop_bounding_set(void)
{
  /* Needs CAP_SETPCAP, so before the uid change. PR_CAPBSET_READ answers EINVAL past the
   * kernel's last capability, which makes the loop independent of the headers' CAP_LAST_CAP. */
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
      return -1;
  }
  return 0;
}

static int
child_clear_capabilities(void)
{
  /* setresuid to non-zero ids already emptied permitted/effective (no KEEP_CAPS); this empties
   * inheritable too, which takes ambient with it. */
  struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };
  return (int)syscall(SYS_capset, &header, data);
}

static G_GNUC_NORETURN void
child_run(ChildPlan *plan)
{
  if (child_reset_signals() < 0)
    child_fail(plan, STEP_SIGNALS, errno);
  if (child_pass_fds(plan) < 0)
    child_fail(plan, STEP_FDS, errno);
  umask(plan->umask);
  if (setsid() < 0)
    child_fail(plan, STEP_SETSID, errno);
  if (plan->memlock > 0) {
    struct rlimit lim = { plan->memlock, plan->memlock };
    if (setrlimit(RLIMIT_MEMLOCK, &lim) < 0)
      child_fail(plan, STEP_RLIMIT_MEMLOCK, errno);
  }
  /* Cores of a VMM contain guest memory. */
  struct rlimit no_core = { 0, 0 };
  if (setrlimit(RLIMIT_CORE, &no_core) < 0)
    child_fail(plan, STEP_RLIMIT_CORE, errno);
  /* soft = hard, set while still root: the unprivileged child can never raise them. */
  if (plan->data_limit > 0) {
    struct rlimit lim = { plan->data_limit, plan->data_limit };
    if (setrlimit(RLIMIT_DATA, &lim) < 0)
      child_fail(plan, STEP_RLIMIT_DATA, errno);
  }
  if (plan->file_size_limit > 0) {
    struct rlimit lim = { plan->file_size_limit, plan->file_size_limit };
    if (setrlimit(RLIMIT_FSIZE, &lim) < 0)
      child_fail(plan, STEP_RLIMIT_FSIZE, errno);
  }
  /* Needs CAP_SYS_ADMIN, so before the bounding set and the uid go; the fds are already in
   * place (they outlive the old root), the cwd is entered only later, in the new one. */
  int failed = -1;
  if (plan->sandbox != NULL && helper_sandbox_enter(plan->sandbox, &failed) < 0)
    child_fail_at(plan, STEP_SANDBOX, errno, failed);
  if (child_drop_bounding_set() < 0)
    child_fail(plan, STEP_BOUNDING_SET, errno);
  /* Raw calls: they change this (only) thread's credentials, with no libc bookkeeping. */
  if (syscall(SYS_setgroups, 0, NULL) < 0)
    child_fail(plan, STEP_SETGROUPS, errno);
  if (syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid) < 0)
    child_fail(plan, STEP_SETRESGID, errno);
  if (syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid) < 0)
    child_fail(plan, STEP_SETRESUID, errno);
  if (syscall(SYS_setuid, 0) == 0 || errno != EPERM)
    child_fail(plan, STEP_VERIFY_DROP, 0);
  if (chdir(plan->cwd) < 0)
    child_fail(plan, STEP_CHDIR, errno);
  if (child_clear_capabilities() < 0)
    child_fail(plan, STEP_CAPABILITIES, errno);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    child_fail(plan, STEP_NO_NEW_PRIVS, errno);
  /* Last before execve, so none of the steps above runs under the filter. Kills reach the
   * audit log (type=1326) by default; no SECCOMP_FILTER_FLAG_LOG, which would also log every
   * ERRNO answer — one record per thread QEMU creates (glibc tries clone3 first). */
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &plan->prog) < 0)
    child_fail(plan, STEP_SECCOMP, errno);
  execve(plan->path, plan->argv, plan->envp);
  child_fail(plan, STEP_EXECVE, errno);
}

/* ---- parent side ------------------------------------------------------------------------ */

static gboolean
check_options(const HelperSpawnOptions *o, GError **error)
{
  if (o->argv == NULL || o->argv[0] == NULL || !g_path_is_absolute(o->argv[0])) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "spawn needs an absolute program path (no PATH lookup, no shell)");
    return FALSE;
  }
  if (o->uid == 0 || o->gid == 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "refusing to spawn %s as uid %u gid %u: a confined child never runs as root",
                o->argv[0], (guint)o->uid, (guint)o->gid);
    return FALSE;
  }
  if (o->n_fds > SPAWN_MAX_FDS) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "spawn passes at most %d fds (asked for %zu)", SPAWN_MAX_FDS, o->n_fds);
    return FALSE;
  }
  for (gsize i = 0; i < o->n_fds; i++) {
    gboolean dup_target = FALSE;
    for (gsize j = 0; j < i; j++)
      dup_target |= o->fds[j].child_fd == o->fds[i].child_fd;
    if (o->fds[i].parent_fd < 0 || o->fds[i].child_fd < 0 || dup_target) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                  "fd mapping %d→%d is invalid (negative or a child fd named twice)",
                  o->fds[i].parent_fd, o->fds[i].child_fd);
      return FALSE;
    }
  }
  return TRUE;
}

static void
plan_fds(ChildPlan *plan, const HelperSpawnOptions *o, int devnull)
{
  plan->n_fds = 0;
  for (gsize i = 0; i < o->n_fds; i++) {
    plan->src[plan->n_fds] = o->fds[i].parent_fd;
    plan->dst[plan->n_fds++] = o->fds[i].child_fd;
  }
  /* /dev/null rides along as a source without a target of its own. */
  plan->devnull = plan->n_fds;
  plan->src[plan->n_fds] = devnull;
  plan->dst[plan->n_fds++] = -1;
}

static gboolean
read_report(int fd, const ChildPlan *plan, pid_t pid, int pidfd, GError **error)
{
  ChildReport report;
  ssize_t n;
  do
    n = read(fd, &report, sizeof report);
  while (n < 0 && errno == EINTR);
  if (n == 0)
    return TRUE; /* the pipe closed on execve */
  /* The child exits right after reporting; reap it so no zombie is left behind. */
  waitid(P_PIDFD, (id_t)pidfd, &(siginfo_t){ 0 }, WEXITED);
  if (n != (ssize_t)sizeof report || report.step < 0 || report.step >= N_STEPS) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "spawn of pid %d failed: unreadable report from the child (%zd bytes)", (int)pid,
                n);
    return FALSE;
  }
  g_autofree char *sandbox_step =
      report.step == STEP_SANDBOX ? helper_sandbox_describe(plan->sandbox, report.detail) : NULL;
  g_autofree char *detail = sandbox_step ? g_strdup_printf(" (%s)", sandbox_step) : g_strdup("");
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "spawn failed at step %s%s: %s",
              step_names[report.step], detail,
              report.err != 0 ? g_strerror(report.err) : "the child could still become root");
  return FALSE;
}

static gboolean
fork_child(ChildPlan *plan, int report_read, HelperSpawnChild *child, GError **error)
{
  pid_t pid = fork();
  if (pid == 0)
    child_run(plan);
  int saved = errno;
  lcvm_close_fdp(&plan->report_fd);
  if (pid < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "fork failed: %s", g_strerror(saved));
    return FALSE;
  }
  /* Race-free: the child cannot be reaped (and its pid reused) before we wait for it. */
  lcvm_autofd int pidfd = pidfd_open(pid, 0);
  saved = errno;
  if (pidfd < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "pidfd_open failed: %s (Linux 5.3 or newer is required)", g_strerror(saved));
    return FALSE;
  }
  if (!read_report(report_read, plan, pid, pidfd, error))
    return FALSE;
  child->pid = pid;
  child->pidfd = lcvm_steal_fd(&pidfd);
  return TRUE;
}

gboolean
helper_spawn(const HelperSpawnOptions *options, HelperSpawnChild *child, GError **error)
{
  if (!check_options(options, error))
    return FALSE;
  g_autoptr(GBytes) bpf = lcvm_seccomp_export_bpf(options->profile, error);
  if (bpf == NULL)
    return FALSE;
  static const char *const empty_env[] = { NULL };
  gsize bpf_len = 0;
  ChildPlan plan = {
    .path = options->argv[0],
    .argv = (char *const *)options->argv,
    .envp = (char *const *)(options->envp ? options->envp : empty_env),
    .cwd = options->cwd ? options->cwd : "/",
    .umask = options->umask ? options->umask : 0077,
    .uid = options->uid,
    .gid = options->gid,
    .sandbox = options->sandbox,
    .memlock = options->memlock,
    .data_limit = options->data_limit,
    .file_size_limit = options->file_size_limit,
  };
  plan.prog.filter = (struct sock_filter *)g_bytes_get_data(bpf, &bpf_len);
  plan.prog.len = (unsigned short)(bpf_len / sizeof(struct sock_filter));

  lcvm_autofd int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  int report[2] = { -1, -1 };
  if (devnull < 0 || pipe2(report, O_CLOEXEC) < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "preparing the spawn failed: %s",
                g_strerror(errno));
    return FALSE;
  }
  lcvm_autofd int report_read = report[0];
  plan_fds(&plan, options, devnull);
  plan.report_fd = report[1];
  return fork_child(&plan, report_read, child, error);
}

gboolean
helper_spawn_capture(const HelperSpawnOptions *options, const HelperCaptureOptions *capture,
                     HelperCaptured *result, GError **error)
{
  g_auto(HelperCapturePipes) pipes = { { -1, -1 }, { -1, -1 } };
  if (!helper_capture_pipes_open(&pipes, TRUE, error))
    return FALSE;
  g_autofree HelperSpawnFd *fds = g_new(HelperSpawnFd, options->n_fds + 2);
  for (gsize i = 0; i < options->n_fds; i++)
    fds[i] = options->fds[i];
  fds[options->n_fds] = (HelperSpawnFd){ pipes.out[1], STDOUT_FILENO };
  fds[options->n_fds + 1] = (HelperSpawnFd){ pipes.err[1], STDERR_FILENO };
  HelperSpawnOptions with_pipes = *options;
  with_pipes.fds = fds;
  with_pipes.n_fds = options->n_fds + 2;
  HelperSpawnChild child = { -1, -1 };
  if (!helper_spawn(&with_pipes, &child, error))
    return FALSE;
  lcvm_autofd int pidfd = child.pidfd;
  helper_capture(child.pid, pidfd, &pipes, capture, result);
  return TRUE;
}
