/* SPDX-License-Identifier: MIT */
/* How a privileged act (vfio binding, a GPU mode change or reset, the key provider's start,
 * stop and build, ...) reports its progress: through a step callback, so the same act runs
 * under a Job on the bus (helper_act_job_step) and straight from a unit test (NULL, or a
 * callback that records). An act never sees a HelperJob, a call or the daemon. */
#pragma once
#include <glib.h>

/* progress: 0..1, or -1 when unknown. audit: the step changes the host, so it is also an audit
 * record (under a Job: helper_job_audit_step). */
typedef void (*HelperActStep)(gpointer data, double progress, gboolean audit, const char *message);

/* Formats and reports one step; fn may be NULL (nothing reported). */
void helper_act_step(HelperActStep fn, gpointer data, double progress, gboolean audit,
                     const char *fmt, ...) G_GNUC_PRINTF(5, 6);

/* The step callback of every act run by a Job: data is the HelperJob. */
void helper_act_job_step(gpointer job, double progress, gboolean audit, const char *message);

/* Appends to the message of an act's failure what it did about it ("; %s is bound to vfio-pci
 * again"); nothing when error is NULL or unset. */
void helper_act_append_error(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
