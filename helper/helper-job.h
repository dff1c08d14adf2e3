/* SPDX-License-Identifier: MIT */
/* Jobs: long operations (device binding, GPU mode changes, VM stop) run in a worker thread
 * and are visible on the bus as /io/lium/Cvm1/jobs/N while they run and for a while after,
 * so no call waits past the D-Bus timeout and a client that subscribes late still reads
 * the outcome from the Done/Ok/Result properties. */
#pragma once
#include "helper-daemon.h"

typedef struct _HelperJob HelperJob;

/* Runs in a worker thread. Report steps with helper_job_step(); return FALSE with error set
 * on failure. */
typedef gboolean (*HelperJobFunc)(HelperJob *job, gpointer data, GError **error);

/* Main thread, once the job ended (its end already audited and shown on the bus). */
typedef void (*HelperJobEnded)(gpointer ended_data, gboolean ok);

/* Exports a job for the call inv that will run func(data), or NULL with error set. Only the
 * dispatcher starts jobs (helper-dispatch.c): it replies with helper_job_path, audits
 * "started: PATH", then helper_job_run runs func in a worker thread, the daemon held busy.
 * The job's end is audited with the call's caller, method and arguments; then
 * ended(ended_data) runs. */
HelperJob *helper_job_new(HelperDaemon *d, GDBusMethodInvocation *inv, const char *operation,
                          HelperJobFunc func, gpointer data, HelperJobEnded ended,
                          gpointer ended_data, GError **error);
const char *helper_job_path(HelperJob *job);
void helper_job_run(HelperJob *job);

/* Thread-safe. message is also kept as the job's latest Message. */
void helper_job_step(HelperJob *job, double progress, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
HelperDaemon *helper_job_daemon(HelperJob *job);
/* Thread-safe. One audit record for a step that changes the host (result "step: PATH: text"),
 * with the caller, method and arguments of the call that started the job. */
void helper_job_audit_step(HelperJob *job, const char *text);
