/* SPDX-License-Identifier: MIT */
/* Reporting an act's steps (see the header). */
#include "helper-act.h"
#include "helper-job.h"

void
helper_act_step(HelperActStep fn, gpointer data, double progress, gboolean audit, const char *fmt,
                ...)
{
  if (fn == NULL)
    return;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *message = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  fn(data, progress, audit, message);
}

void
helper_act_job_step(gpointer job, double progress, gboolean audit, const char *message)
{
  helper_job_step(job, progress, "%s", message);
  if (audit)
    helper_job_audit_step(job, message);
}

void
helper_act_append_error(GError **error, const char *fmt, ...)
{
  if (error == NULL || *error == NULL)
    return;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *more = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  char *message = g_strconcat((*error)->message, more, NULL);
  g_free((*error)->message);
  (*error)->message = message;
}
