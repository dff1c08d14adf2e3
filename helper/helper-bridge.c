/* SPDX-License-Identifier: MIT */
/* The host-API bridge's spawn and end (see the header). Everything the bridge gets is opened
 * here by the helper, without following a symlink, and passed as an fd; the bridge binary
 * must be root-owned along its whole path, like every program the helper runs. */
#include "helper-bridge.h"
#include "lcvm-fd.h"
#include "helper-instance.h"
#include "helper-process.h"
#include "helper-sandbox-ns.h"
#include "helper-spawn.h"
#include "lcvm-error.h"
#include "lcvm-layout.h"
#include "lcvm-names.h"
#include "lcvm-safe-io.h"
#include "lcvm-trust.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#define SHARED_MODE    02770
#define EVENTS_MODE    0600
#define LISTEN_BACKLOG 16
#define TERM_WAIT_MS   1000
#define KILL_WAIT_MS   5000
#define FD_LISTEN      3
#define FD_SHARED      4
#define FD_EVENTS      5

/* The bridge holds at most 8 connections of 128 KiB bodies: about 20 MiB of data at its busiest.
 * RLIMIT_DATA (heap, thread stacks, private mappings — what a guest could make it fill) stops a
 * guest that found a way to make it keep memory; RLIMIT_AS would also count glibc's 64 MiB arena
 * reservations and the libraries. Not under AddressSanitizer, whose shadow is terabytes of data. */
#if defined(__SANITIZE_ADDRESS__)
#define BRIDGE_DATA_LIMIT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BRIDGE_DATA_LIMIT 0
#endif
#endif
#ifndef BRIDGE_DATA_LIMIT
#define BRIDGE_DATA_LIMIT (256u << 20)
#endif

void
helper_bridge_clear(HelperBridge *bridge)
{
  g_clear_pointer(&bridge->argv, g_strfreev);
  lcvm_close_fdp(&bridge->pidfd);
  bridge->pid = 0;
}

static int
errno_fail(GError **error, const char *name, const char *what)
{
  int err = errno;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "VM %s: host-API bridge: %s: %s", name, what,
              g_strerror(err));
  return -1;
}

/* 127.0.0.1:port, bound by root so the bridge never needs to bind anything itself. The
 * port was reserved from hostapi_port_range; SO_REUSEADDR lets a restarted bridge take it
 * over while the guest's old connections linger in TIME_WAIT. */
static int
listen_loopback(const char *name, guint16 port, GError **error)
{
  lcvm_autofd int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errno_fail(error, name, "socket");
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
    g_autofree char *what = g_strdup_printf("cannot listen on 127.0.0.1:%u", port);
    return errno_fail(error, name, what);
  }
  return lcvm_steal_fd(&fd);
}

static int
open_shared(const LcvmConfig *config, const char *name, GError **error)
{
  g_autofree char *rel = lcvm_layout_instance_rel(name, LCVM_INSTANCE_SHARED_DIR, error);
  if (rel == NULL)
    return -1;
  lcvm_autofd int state_fd = lcvm_open_dir_at(AT_FDCWD, config->state_dir, error);
  if (state_fd < 0)
    return -1;
  return lcvm_open_beneath(state_fd, rel, O_RDONLY | O_DIRECTORY, error);
}

/* The event file: root-owned in the root-only runtime_dir/NAME; the bridge only ever gets
 * this O_APPEND fd of it. */
static int
open_events(const LcvmConfig *config, const char *name, GError **error)
{
  lcvm_autofd int dir = helper_runtime_dir_open(config, name, FALSE, error);
  if (dir < 0)
    return -1;
  lcvm_autofd int fd =
      openat(dir, LCVM_RUNTIME_EVENTS,
             O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, EVENTS_MODE);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0)
    return errno_fail(error, name, "cannot open its event file");
  return lcvm_steal_fd(&fd);
}

static GStrv
bridge_argv(const char *program, const LcvmConfig *config, const HelperReservation *res)
{
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, g_strdup(program));
  g_ptr_array_add(argv, g_strdup_printf("--listen-fd=%d", FD_LISTEN));
  g_ptr_array_add(argv, g_strdup_printf("--key-provider=%s", config->key_provider_address));
  g_ptr_array_add(argv, g_strdup_printf("--peer-uid=%u", (guint)res->qemu_uid));
  g_ptr_array_add(argv, g_strdup_printf("--shared-fd=%d", FD_SHARED));
  g_ptr_array_add(argv, g_strdup_printf("--events-fd=%d", FD_EVENTS));
  g_ptr_array_add(argv, NULL);
  return (GStrv)g_ptr_array_free(argv, FALSE);
}

/* Its own root, as QEMU's (helper-sandbox-ns.h): it needs nothing but its program, since its
 * socket, share and events come as fds. A program outside /usr (a build tree) is shown. */
static HelperSandbox *
bridge_view(const char *program, uid_t uid, GError **error)
{
  g_autoptr(HelperSandbox) view = helper_sandbox_new(uid, uid);
  g_autofree char *dir = g_path_get_dirname(program);
  if (!g_str_has_prefix(dir, "/usr/") && !helper_sandbox_add_dir(view, dir, FALSE, error))
    return NULL;
  return g_steal_pointer(&view);
}

/* Where the bridge's stderr goes: a journal stream of its own (identifier
 * lium-cvm-hostapi@NAME) when the journal runs, else the helper's own stderr. Either outlives
 * the helper, so a re-adopted bridge still logs. (A helper stderr that is a file longer than
 * the bridge's RLIMIT_FSIZE takes no more of its lines: EFBIG, SIGXFSZ is ignored.) */
static int
open_log_stream(const char *name)
{
  if (access("/run/systemd/journal/socket", W_OK) == 0) {
    g_autofree char *identifier = g_strdup_printf("lium-cvm-hostapi@%s", name);
    int fd = sd_journal_stream_fd(identifier, LOG_WARNING, 0);
    if (fd >= 0)
      return fd;
    g_warning("VM %s: no journal stream for its bridge (%s); it logs to the helper's stderr", name,
              g_strerror(-fd));
  }
  return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
}

static gboolean
spawn_with(const char *name, const HelperReservation *res, GStrv argv, const int fds[4],
           HelperBridge *out, GError **error)
{
  static const char *const envp[] = { "LC_ALL=C", NULL };
  g_autoptr(HelperSandbox) view = bridge_view(argv[0], res->bridge_uid, error);
  if (view == NULL) {
    g_prefix_error(error, "VM %s: host-API bridge: ", name);
    return FALSE;
  }
  const HelperSpawnFd pass[] = {
    { fds[0], FD_LISTEN },
    { fds[1], FD_SHARED },
    { fds[2], FD_EVENTS },
    { fds[3], STDERR_FILENO },
  };
  HelperSpawnOptions options = {
    .argv = (const char *const *)argv,
    .envp = envp,
    .fds = pass,
    .n_fds = G_N_ELEMENTS(pass),
    .uid = res->bridge_uid,
    .gid = res->bridge_uid,
    .sandbox = view,
    .profile = LCVM_SECCOMP_BRIDGE,
    .data_limit = BRIDGE_DATA_LIMIT,
    /* Its biggest file is the event file: a compromised bridge cannot fill /run. */
    .file_size_limit = LCVM_EVENTS_FILE_MAX,
  };
  HelperSpawnChild child = { 0 };
  if (!helper_spawn(&options, &child, error)) {
    g_prefix_error(error, "VM %s: host-API bridge: ", name);
    return FALSE;
  }
  out->pid = child.pid;
  out->pidfd = child.pidfd;
  out->argv = g_strdupv(argv);
  if (helper_process_start_time(child.pid, &out->start_time, error))
    return TRUE;
  g_prefix_error(error, "VM %s: host-API bridge: ", name);
  g_free(helper_bridge_stop(out->pidfd));
  helper_bridge_clear(out);
  return FALSE;
}

gboolean
helper_bridge_spawn(const LcvmConfig *config, const char *name, const HelperReservation *res,
                    HelperBridge *out, GError **error)
{
  *out = (HelperBridge){ .pidfd = -1 };
  g_autofree char *program = lcvm_trusted_path(config->hostapi, error);
  if (program == NULL) {
    g_prefix_error(error, "VM %s: the host-API bridge ([tools] hostapi): ", name);
    return FALSE;
  }
  int fds[4] = { -1, -1, -1, -1 };
  fds[0] = listen_loopback(name, res->hostapi_port, error);
  fds[1] = fds[0] < 0 ? -1 : open_shared(config, name, error);
  fds[2] = fds[1] < 0 ? -1 : open_events(config, name, error);
  fds[3] = fds[2] < 0 ? -1 : open_log_stream(name);
  if (fds[2] >= 0 && fds[3] < 0)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "VM %s: host-API bridge: no stderr for it: %s", name, g_strerror(errno));
  gboolean ok = FALSE;
  if (fds[3] >= 0) {
    g_auto(GStrv) argv = bridge_argv(program, config, res);
    ok = spawn_with(name, res, argv, fds, out, error);
  }
  for (guint i = 0; i < G_N_ELEMENTS(fds); i++)
    lcvm_close_fdp(&fds[i]);
  return ok;
}

gboolean
helper_bridge_share(int instance_fd, const char *name, const HelperReservation *res, GError **error)
{
  lcvm_autofd int fd = openat(instance_fd, LCVM_INSTANCE_SHARED_DIR,
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  /* chown first: it clears the setgid bit that the chmod then sets. */
  gboolean ok =
      fd >= 0 && fchown(fd, res->qemu_uid, res->bridge_uid) == 0 && fchmod(fd, SHARED_MODE) == 0;
  if (!ok)
    errno_fail(error, name, "cannot open shared/ to it");
  return ok;
}

int
helper_bridge_adopt(const HelperRecord *record, GError **error)
{
  if (record->bridge_pid <= 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "no bridge was recorded");
    return -1;
  }
  return helper_process_adopt_pid(record->bridge_pid, record->bridge_start_time,
                                  (const char *const *)record->bridge_argv, "host-API bridge",
                                  error);
}

char *
helper_bridge_exit_how(int pidfd)
{
  siginfo_t info;
  if (!helper_process_reap(pidfd, &info))
    return g_strdup("ended (not the helper's child: status unknown)");
  if (info.si_code == CLD_EXITED)
    return g_strdup_printf("exited with status %d", info.si_status);
  return g_strdup_printf("was killed by signal %d", info.si_status);
}

char *
helper_bridge_stop(int pidfd)
{
  int err = helper_process_signal(pidfd, SIGTERM);
  if (err != 0)
    g_warning("host-API bridge: SIGTERM: %s", g_strerror(err));
  if (!helper_process_wait(pidfd, TERM_WAIT_MS)) {
    helper_process_signal(pidfd, SIGKILL);
    if (!helper_process_wait(pidfd, KILL_WAIT_MS))
      return g_strdup("still running after SIGKILL");
  }
  return helper_bridge_exit_how(pidfd);
}
