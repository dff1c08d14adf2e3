/* SPDX-License-Identifier: MIT */
/* lcvm-spawn-run: the e2e tests' handle on helper_spawn(). Spawns one program confined, prints
 *   spawned pid=N spawn_us=N        (spawn_us: helper_spawn() until the child has exec'd)
 * then, until the child exits, forwards TERM / KILL lines read on stdin as signals through the
 * pidfd, and finally prints
 *   exited code=N   or   signaled sig=N
 * once the pidfd reports the exit. A failed spawn prints helper_spawn's error on stderr and
 * exits 1. Before spawning it blocks SIGTERM and ignores SIGPIPE, as a helper worker thread
 * might, so the tests see that the child starts with neither. With --sandbox the child gets its
 * own mount and IPC namespaces (helper-sandbox-ns.h), plus the --show-dir (read-only),
 * --show-rw-dir and --show-dev NAME=HOSTNODE entries. */
#include "helper-spawn.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  int uid;
  int gid;
  gboolean sandbox;
  char **show_dirs;
  char **show_rw_dirs;
  char **show_devs;
  char *profile;
  gint64 memlock;
  gint64 data_limit;
  gint64 file_size_limit;
  char **fds;
  char **env;
  char *umask;
  char *cwd;
} Args;

static gboolean
parse_fds(char **specs, GArray *out, GError **error)
{
  for (char **s = specs; s != NULL && *s != NULL; s++) {
    int child_fd, parent_fd;
    char end;
    if (sscanf(*s, "%d=%d%c", &child_fd, &parent_fd, &end) != 2) {
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--fd wants CHILD=PARENT: %s",
                  *s);
      return FALSE;
    }
    HelperSpawnFd fd = { .parent_fd = parent_fd, .child_fd = child_fd };
    g_array_append_val(out, fd);
  }
  return TRUE;
}

static HelperSandbox *
build_sandbox(const Args *a, GError **error)
{
  g_autoptr(HelperSandbox) sb = helper_sandbox_new((uid_t)a->uid, (gid_t)a->gid);
  for (char **d = a->show_dirs; d != NULL && *d != NULL; d++)
    if (!helper_sandbox_add_dir(sb, *d, FALSE, error))
      return NULL;
  for (char **d = a->show_rw_dirs; d != NULL && *d != NULL; d++)
    if (!helper_sandbox_add_dir(sb, *d, TRUE, error))
      return NULL;
  for (char **d = a->show_devs; d != NULL && *d != NULL; d++) {
    g_auto(GStrv) kv = g_strsplit(*d, "=", 2);
    if (kv[1] == NULL || !helper_sandbox_add_device(sb, kv[1], kv[0], error))
      return NULL;
  }
  return g_steal_pointer(&sb);
}

static void
block_like_a_worker_thread(void)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static void
forward_command(int pidfd, const char *line)
{
  int sig = g_str_has_prefix(line, "TERM") ? SIGTERM : g_str_has_prefix(line, "KILL") ? SIGKILL : 0;
  if (sig != 0 && pidfd_send_signal(pidfd, sig, NULL, 0) < 0)
    fprintf(stderr, "pidfd_send_signal: %s\n", g_strerror(errno));
}

static int
supervise(const HelperSpawnChild *child)
{
  struct pollfd pfd[2] = { { child->pidfd, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
  int n = 2;
  char line[64];
  for (;;) {
    if (poll(pfd, n, -1) < 0 && errno != EINTR)
      return 1;
    if (pfd[0].revents & POLLIN)
      break;
    if (n == 2 && pfd[1].revents) {
      ssize_t len = read(STDIN_FILENO, line, sizeof line - 1);
      if (len <= 0) {
        n = 1; /* stdin closed: just wait for the exit */
        continue;
      }
      line[len] = '\0';
      forward_command(child->pidfd, line);
    }
  }
  siginfo_t info = { 0 };
  if (waitid(P_PIDFD, (id_t)child->pidfd, &info, WEXITED) < 0)
    return 1;
  if (info.si_code == CLD_EXITED)
    printf("exited code=%d\n", info.si_status);
  else
    printf("signaled sig=%d\n", info.si_status);
  return 0;
}

int
main(int argc, char **argv)
{
  Args a = { .uid = -1, .gid = -1, .umask = NULL };
  GOptionEntry entries[] = {
    { "uid", 0, 0, G_OPTION_ARG_INT, &a.uid, "uid to run as", "UID" },
    { "gid", 0, 0, G_OPTION_ARG_INT, &a.gid, "gid to run as", "GID" },
    { "sandbox", 0, 0, G_OPTION_ARG_NONE, &a.sandbox, "own mount and IPC namespaces", NULL },
    { "show-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &a.show_dirs, "read-only in the sandbox",
      "DIR" },
    { "show-rw-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &a.show_rw_dirs, "writable in the sandbox",
      "DIR" },
    { "show-dev", 0, 0, G_OPTION_ARG_STRING_ARRAY, &a.show_devs, "device node in the sandbox",
      "NAME=NODE" },
    { "profile", 0, 0, G_OPTION_ARG_STRING, &a.profile, "seccomp profile", "qemu|bridge" },
    { "memlock", 0, 0, G_OPTION_ARG_INT64, &a.memlock, "RLIMIT_MEMLOCK (0: inherit)", "BYTES" },
    { "data-limit", 0, 0, G_OPTION_ARG_INT64, &a.data_limit, "RLIMIT_DATA (0: inherit)", "BYTES" },
    { "file-size-limit", 0, 0, G_OPTION_ARG_INT64, &a.file_size_limit, "RLIMIT_FSIZE (0: inherit)",
      "BYTES" },
    { "fd", 0, 0, G_OPTION_ARG_STRING_ARRAY, &a.fds, "pass an fd", "CHILD=PARENT" },
    { "env", 0, 0, G_OPTION_ARG_STRING_ARRAY, &a.env, "environment entry", "K=V" },
    { "umask", 0, 0, G_OPTION_ARG_STRING, &a.umask, "umask (octal)", "MASK" },
    { "cwd", 0, 0, G_OPTION_ARG_FILENAME, &a.cwd, "working directory", "DIR" },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("-- PROGRAM [ARG...]");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(HelperSpawnFd));
  LcvmSeccompProfile profile = LCVM_SECCOMP_QEMU;
  if (!g_option_context_parse(ctx, &argc, &argv, &error) || !parse_fds(a.fds, fds, &error)) {
    fprintf(stderr, "%s\n", error->message);
    return 2;
  }
  /* GLib keeps a "--" that is followed by dash arguments (QEMU's options). */
  int first = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1;
  if (argc <= first || a.uid < 0 || a.gid < 0 ||
      (a.profile && !lcvm_seccomp_profile_from_name(a.profile, &profile))) {
    fprintf(stderr, "usage: lcvm-spawn-run --uid U --gid G [options] -- PROGRAM [ARG...]\n");
    return 2;
  }
  g_autoptr(HelperSandbox) sandbox = NULL;
  if (a.sandbox && !(sandbox = build_sandbox(&a, &error))) {
    fprintf(stderr, "%s\n", error->message);
    return 2;
  }
  HelperSpawnOptions opts = {
    .argv = (const char *const *)argv + first,
    .envp = (const char *const *)a.env,
    .fds = (const HelperSpawnFd *)(void *)fds->data,
    .n_fds = fds->len,
    .cwd = a.cwd,
    .umask = a.umask ? (mode_t)strtoul(a.umask, NULL, 8) : 0,
    .uid = (uid_t)a.uid,
    .gid = (gid_t)a.gid,
    .sandbox = sandbox,
    .memlock = (guint64)a.memlock,
    .data_limit = (guint64)a.data_limit,
    .file_size_limit = (guint64)a.file_size_limit,
    .profile = profile,
  };
  block_like_a_worker_thread();
  HelperSpawnChild child;
  gint64 start = g_get_monotonic_time();
  if (!helper_spawn(&opts, &child, &error)) {
    fprintf(stderr, "%s\n", error->message);
    return 1;
  }
  printf("spawned pid=%d spawn_us=%" G_GINT64_FORMAT "\n", (int)child.pid,
         g_get_monotonic_time() - start);
  fflush(stdout);
  int r = supervise(&child);
  close(child.pidfd);
  return r;
}
