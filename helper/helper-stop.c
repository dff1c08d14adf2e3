/* SPDX-License-Identifier: MIT */
/* The stop ladder and the naming of QEMU's exit (see helper-stop.h). Signals go to QEMU
 * itself through its pidfd, never to a pid that may have been recycled. */
#include "helper-stop.h"
#include "helper-guest-agent.h"
#include "helper-qmp.h"
#include "helper-process.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define AGENT_TIMEOUT_MS 10000 /* connect, request and status line; Lium's connect timeout */
#define QMP_TIMEOUT_MS   15000
#define TERM_WAIT_MS     10000
#define KILL_WAIT_MS     30000
#define VSOCK_DEVICE     "vhost-vsock-pci,"
#define GUEST_CID        "guest-cid="

/* The CID of a -device vhost-vsock-pci,...guest-cid=N[,...] argument; 0 for anything else. */
static guint
vsock_cid_of(const char *arg)
{
  const char *at = g_str_has_prefix(arg, VSOCK_DEVICE) ? strstr(arg, GUEST_CID) : NULL;
  if (at == NULL)
    return 0;
  g_autofree char *digits = g_strndup(at + strlen(GUEST_CID), strcspn(at + strlen(GUEST_CID), ","));
  guint64 cid = 0;
  if (!g_ascii_string_to_unsigned(digits, 10, 3, G_MAXUINT32, &cid, NULL))
    return 0;
  return (guint)cid;
}

guint
helper_stop_agent_cid(const LcvmConfig *config, const char *const *argv, guint reserved_cid)
{
  for (guint i = 0; argv != NULL && argv[i] != NULL; i++)
    if (vsock_cid_of(argv[i]) != 0)
      return vsock_cid_of(argv[i]);
  gboolean seam = config->guest_agent_socket_dir != NULL && config->guest_agent_socket_dir[0];
  return seam ? reserved_cid : 0;
}

static void step(const HelperStopRequest *req, double progress, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static void
step(const HelperStopRequest *req, double progress, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_message("VM %s: stop: %s", req->name, text);
  helper_act_step(req->step_fn, req->step_data, progress, FALSE, "%s", text);
}

static void
set_step(const HelperStopRequest *req, HelperStopStep step)
{
  g_atomic_int_set(req->step, step);
}

static gboolean
guest_agent(const HelperStopRequest *req)
{
  g_autoptr(GError) error = NULL;
  if (req->agent_cid == 0) {
    step(req, 0.05, "VM %s has no vsock device, so no guest agent to ask", req->name);
    return FALSE;
  }
  step(req, 0.05, "asking the guest agent to shut down (vsock CID %u, port %d)", req->agent_cid,
       HELPER_GUEST_AGENT_PORT);
  set_step(req, HELPER_STOP_AGENT);
  if (!helper_guest_agent_shutdown(req->config, req->agent_cid, AGENT_TIMEOUT_MS, &error)) {
    step(req, 0.1, "%s", error->message);
    return FALSE;
  }
  step(req, 0.1, "the guest agent accepted; waiting up to %u s for the guest to power off",
       req->timeout_s);
  if (helper_process_wait(req->pidfd, req->timeout_s * 1000))
    return TRUE;
  step(req, 0.3, "the guest did not power off within %u s", req->timeout_s);
  return FALSE;
}

static gboolean
power_button(const HelperStopRequest *req)
{
  g_autoptr(GError) error = NULL;
  step(req, 0.35, "pressing the power button (QMP system_powerdown); waiting up to %u s",
       req->timeout_s);
  set_step(req, HELPER_STOP_POWERDOWN);
  g_autoptr(HelperQmp) qmp = helper_qmp_connect(req->qmp_path, QMP_TIMEOUT_MS, &error);
  g_autoptr(JsonNode) ret = qmp ? helper_qmp_execute(qmp, "system_powerdown", &error) : NULL;
  if (ret == NULL) {
    step(req, 0.5, "%s; terminating QEMU instead", error->message);
    return FALSE;
  }
  return helper_process_wait(req->pidfd, req->timeout_s * 1000);
}

static gboolean
send_signal(const HelperStopRequest *req, HelperStopStep rung, int sig, guint wait_ms)
{
  const char *name = sig == SIGTERM ? "SIGTERM" : "SIGKILL";
  step(req, rung == HELPER_STOP_TERM ? 0.6 : 0.8, "sending %s to QEMU (pid %d)", name,
       (int)req->pid);
  set_step(req, rung);
  int err = helper_process_signal(req->pidfd, sig);
  if (err != 0)
    g_warning("VM %s: %s: %s", req->name, name, g_strerror(err));
  return helper_process_wait(req->pidfd, wait_ms);
}

gboolean
helper_stop_ladder(const HelperStopRequest *req)
{
  gboolean gone = !req->force && (guest_agent(req) || power_button(req));
  gone = gone || send_signal(req, HELPER_STOP_TERM, SIGTERM, TERM_WAIT_MS);
  return gone || send_signal(req, HELPER_STOP_KILL, SIGKILL, KILL_WAIT_MS);
}

const char *
helper_stop_step_name(HelperStopStep step)
{
  static const char *const names[] = { "", "guest-agent", "power-button", "sigterm", "sigkill" };
  return names[step];
}

/* ExitStatus of an exit the step explains. */
static const char *
step_how(HelperStopStep step)
{
  static const char *const hows[] = { "powered off by the guest", "shut down by the guest agent",
                                      "powered off", "terminated", "killed" };
  return hows[step];
}

char *
helper_stop_exit_how(HelperStopStep step, gboolean known, const siginfo_t *info,
                     gboolean guest_announced, gboolean *unexpected)
{
  gboolean clean = known && info->si_code == CLD_EXITED && info->si_status == 0;
  gboolean sent = known && info->si_code != CLD_EXITED &&
                  ((step == HELPER_STOP_TERM && info->si_status == SIGTERM) ||
                   (step == HELPER_STOP_KILL && info->si_status == SIGKILL));
  *unexpected = FALSE;
  if (clean || sent || (!known && step != HELPER_STOP_NONE))
    return g_strdup(step == HELPER_STOP_NONE && guest_announced ? "shut down by the guest"
                                                                : step_how(step));
  if (!known && guest_announced)
    return g_strdup("shut down by the guest");
  *unexpected = TRUE;
  if (!known)
    return g_strdup("exit status unknown (QEMU was re-adopted after a helper restart)");
  if (info->si_code == CLD_EXITED)
    return g_strdup_printf("exit status %d", info->si_status);
  return g_strdup_printf("killed by signal %d", info->si_status);
}
