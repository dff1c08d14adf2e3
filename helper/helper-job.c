/* SPDX-License-Identifier: MIT */
/* Job objects. The work function never touches the daemon's main-thread state directly:
 * steps reach the exported object through g_main_context_invoke. */
#include "helper-job.h"
#include "helper-audit.h"
#include "helper-authorizer.h"
#include "lcvm-dbus-generated.h"
#include "lcvm-error.h"
#include "lcvm-names.h"

/* How long a finished job stays on the bus for late readers. */
#define JOB_LINGER_SECONDS 60

struct _HelperJob {
  HelperDaemon *daemon;
  LcvmDbusJob *skeleton;
  char *path;
  char *operation;
  HelperJobFunc func;
  gpointer data;
  HelperJobEnded ended;
  gpointer ended_data;
  HelperCaller caller; /* copy: the invocation is gone once we replied */
  char *method;
  char *arguments;
  char *action;
};

typedef struct {
  HelperJob *job;
  double progress;
  char *message;
} JobStep;

static void
job_free(HelperJob *job)
{
  g_clear_object(&job->skeleton);
  g_free(job->path);
  g_free(job->operation);
  g_free(job->caller.bus_name);
  g_free(job->method);
  g_free(job->arguments);
  g_free(job->action);
  g_free(job);
}

HelperDaemon *
helper_job_daemon(HelperJob *job)
{
  return job->daemon;
}

void
helper_job_audit_step(HelperJob *job, const char *text)
{
  g_autofree char *result = g_strdup_printf("step: %s: %s", job->path, text);
  helper_audit_raw(&job->caller, job->method, LCVM_OBJECT_PATH, job->arguments, job->action,
                   result);
}

static gboolean
apply_step(gpointer p)
{
  JobStep *s = p;
  if (s->progress >= 0)
    lcvm_dbus_job_set_progress(s->job->skeleton, s->progress);
  lcvm_dbus_job_set_message(s->job->skeleton, s->message);
  g_dbus_interface_skeleton_flush(G_DBUS_INTERFACE_SKELETON(s->job->skeleton));
  g_free(s->message);
  g_free(s);
  return G_SOURCE_REMOVE;
}

void
helper_job_step(HelperJob *job, double progress, const char *fmt, ...)
{
  va_list ap;
  JobStep *s = g_new0(JobStep, 1);
  s->job = job;
  s->progress = progress;
  va_start(ap, fmt);
  s->message = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_debug("job %s: %s", job->path, s->message);
  g_main_context_invoke(NULL, apply_step, s);
}

static gboolean
unexport_job(gpointer p)
{
  HelperJob *job = p;
  g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(job->skeleton));
  job_free(job);
  return G_SOURCE_REMOVE;
}

static void
job_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  HelperJob *job = data;
  GError *error = NULL;
  if (job->func(job, job->data, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

static void
job_done(GObject *source, GAsyncResult *res, gpointer data)
{
  HelperJob *job = data;
  g_autoptr(GError) error = NULL;
  gboolean ok = g_task_propagate_boolean(G_TASK(res), &error);
  const char *message = ok ? lcvm_dbus_job_get_message(job->skeleton) : error->message;
  g_autofree char *msg = g_strdup(message ? message : "");
  g_autofree char *result = NULL;

  if (ok)
    result = g_strdup_printf("ok: %s: %s", job->path, msg);
  else
    result = g_strdup_printf("failed: %s: %s", job->path, msg);
  helper_audit_raw(&job->caller, job->method, LCVM_OBJECT_PATH, job->arguments, job->action,
                   result);

  lcvm_dbus_job_set_progress(job->skeleton, 1.0);
  lcvm_dbus_job_set_message(job->skeleton, msg);
  lcvm_dbus_job_set_ok(job->skeleton, ok);
  lcvm_dbus_job_set_result(job->skeleton, msg);
  lcvm_dbus_job_set_done(job->skeleton, TRUE);
  g_dbus_interface_skeleton_flush(G_DBUS_INTERFACE_SKELETON(job->skeleton));
  lcvm_dbus_job_emit_finished(job->skeleton, ok, msg);
  g_timeout_add_seconds(JOB_LINGER_SECONDS, unexport_job, job);
  job->ended(job->ended_data, ok);
  helper_daemon_release(job->daemon);
}

HelperJob *
helper_job_new(HelperDaemon *d, GDBusMethodInvocation *inv, const char *operation,
               HelperJobFunc func, gpointer data, HelperJobEnded ended, gpointer ended_data,
               GError **error)
{
  HelperJob *job = g_new0(HelperJob, 1);
  job->daemon = d;
  job->operation = g_strdup(operation);
  job->func = func;
  job->data = data;
  job->ended = ended;
  job->ended_data = ended_data;
  job->path = g_strdup_printf(LCVM_JOBS_PATH "/%u", ++d->next_job_id);
  job->skeleton = lcvm_dbus_job_skeleton_new();
  lcvm_dbus_job_set_operation(job->skeleton, operation);
  lcvm_dbus_job_set_message(job->skeleton, "queued");
  const HelperCaller *caller = helper_caller_get(inv);
  if (caller != NULL) {
    job->caller = *caller;
    job->caller.bus_name = g_strdup(caller->bus_name);
  }
  job->method = g_strdup_printf("%s.%s", g_dbus_method_invocation_get_interface_name(inv),
                                g_dbus_method_invocation_get_method_name(inv));
  job->arguments = g_variant_print(g_dbus_method_invocation_get_parameters(inv), FALSE);
  job->action = g_strdup(helper_invocation_action(inv));

  if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(job->skeleton), d->bus, job->path,
                                        error)) {
    job_free(job);
    return NULL;
  }
  return job;
}

const char *
helper_job_path(HelperJob *job)
{
  return job->path;
}

void
helper_job_run(HelperJob *job)
{
  helper_daemon_hold(job->daemon);
  g_autoptr(GTask) task = g_task_new(NULL, NULL, job_done, job);
  g_task_set_task_data(task, job, NULL);
  g_task_run_in_thread(task, job_thread);
}
