/* SPDX-License-Identifier: MIT */
/* Stopping a VM's QEMU, and naming how it ended (reference/field-2026.md §3, §5.2).
 *
 * The ladder (StopVm), each rung only when the one before did not end QEMU:
 *   1. the guest agent's Shutdown (helper-guest-agent), then up to timeout_s for QEMU to exit —
 *      dstack guests have no input layer, so this is the rung that normally works;
 *   2. the ACPI power button (QMP system_powerdown), then up to timeout_s;
 *   3. SIGTERM of QEMU itself, 10 s;   4. SIGKILL of QEMU itself, 30 s.
 * force skips 1 and 2. The step the ladder is on is published (atomically) before each rung,
 * so the exit handler in the main thread names the step that ended it.
 *
 * How an exit is named: during a stop, by its step; without one, a clean exit is the guest
 * powering off (or rebooting: QEMU runs with -action reboot=shutdown, a TD cannot reset), and
 * so is any exit the guest announced with shutdown.progress; everything else — a signal, a
 * non-zero status (a guest panic exits 1 under -action panic=exit-failure), a re-adopted QEMU
 * whose status cannot be known — is unexpected, and never restarted. */
#pragma once
#include <glib.h>
#include <signal.h>
#include <sys/types.h>

#include "helper-act.h"
#include "lcvm-config.h"

typedef enum {
  HELPER_STOP_NONE, /* no stop requested */
  HELPER_STOP_AGENT,
  HELPER_STOP_POWERDOWN,
  HELPER_STOP_TERM,
  HELPER_STOP_KILL,
} HelperStopStep;

typedef struct {
  const LcvmConfig *config;
  const char *name;
  pid_t pid;
  int pidfd;
  const char *qmp_path;
  guint agent_cid; /* the guest agent's vsock CID; 0: none to ask (no vsock device) */
  guint timeout_s; /* what each graceful rung waits for QEMU to exit */
  gboolean force;
  gint *step;            /* atomic HelperStopStep, shared with the exit handler */
  HelperActStep step_fn; /* each rung's progress (never an audit record); NULL: none */
  gpointer step_data;
} HelperStopRequest;

/* The vsock CID of the guest agent of the QEMU started with argv (its vhost-vsock-pci
 * guest-cid); with the [testing] socket seam, reserved_cid when argv has none. 0: none. */
guint helper_stop_agent_cid(const LcvmConfig *config, const char *const *argv, guint reserved_cid);

/* Runs the ladder (worker thread); TRUE once QEMU is gone. Needs no bus: StopVm's Job passes
 * helper_act_job_step, a test its own recorder. */
gboolean helper_stop_ladder(const HelperStopRequest *req);

/* The stable name of the step that ended a stop, for the Vm's StopStep and `stop --json`:
 * "guest-agent", "power-button", "sigterm", "sigkill"; "" for NONE. */
const char *helper_stop_step_name(HelperStopStep step);

/* How QEMU ended (the Vm's ExitStatus). step: where a stop was when it exited; known/info its
 * wait status (FALSE: a re-adopted QEMU, not the helper's child); guest_announced: the guest
 * sent shutdown.progress. *unexpected: a crash to report (helper-crash). */
char *helper_stop_exit_how(HelperStopStep step, gboolean known, const siginfo_t *info,
                           gboolean guest_announced, gboolean *unexpected);
