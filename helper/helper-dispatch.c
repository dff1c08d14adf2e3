/* SPDX-License-Identifier: MIT */
/* The one way from a method call to its reply (see helper-dispatch.h). Host and Manager are
 * registered with g_dbus_connection_register_object and the generated interface infos rather
 * than as generated skeletons: the method_call handler runs in the main thread at once, so a
 * call allowed to all (GetInfo, ListVms) is answered without a thread hop, while a skeleton
 * sends every call through a worker thread to emit g-authorize-method. Privileged calls are
 * authorized in a worker thread here instead. */
#include "helper-dispatch.h"
#include "helper-audit.h"
#include "helper-authorizer.h"
#include "lcvm-dbus-generated.h"
#include "lcvm-error.h"
#include "lcvm-names.h"

gboolean
helper_flags_check(guint64 flags, guint64 allowed, GError **error)
{
  guint64 unknown = flags & ~allowed;
  if (unknown == 0)
    return TRUE;
  if (allowed == 0)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "unknown flags 0x%" G_GINT64_MODIFIER "x (none are defined; send 0)", unknown);
  else
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "unknown flags 0x%" G_GINT64_MODIFIER "x (defined: 0x%" G_GINT64_MODIFIER
                "x; send 0 for none)",
                unknown, allowed);
  return FALSE;
}

const HelperMethod *
helper_method_lookup(const char *interface, const char *method)
{
  for (const HelperMethod *m = helper_methods(); m->interface != NULL; m++)
    if (g_str_equal(m->interface, interface) && g_str_equal(m->method, method))
      return m;
  return NULL;
}

/* ---- one call's life ---- */

static HelperCall *
call_new(HelperDaemon *d, GDBusMethodInvocation *inv, const HelperMethod *m)
{
  HelperCall *c = g_new0(HelperCall, 1);
  c->daemon = d;
  c->inv = inv;
  c->method = m;
  c->args = g_variant_ref(g_dbus_method_invocation_get_parameters(inv));
  return c;
}

/* The call is over: everything it kept goes, and the daemon may idle again. */
static void
call_end(HelperCall *c)
{
  HelperDaemon *d = c->daemon;
  if (c->destroy != NULL)
    c->destroy(c->data);
  g_strfreev(c->locks);
  g_variant_unref(c->args);
  g_free(c);
  helper_daemon_release(d);
}

static void
call_fail(HelperCall *c, const GError *error)
{
  helper_return_error(c->inv, error);
  call_end(c);
}

static void
call_unlock(HelperCall *c)
{
  helper_lock_release(c->daemon, (const char *const *)c->locks);
}

/* After the work: locks back, finish, the reply and its audit record. */
static void
call_reply(HelperCall *c, GVariant *reply, const GError *error)
{
  call_unlock(c);
  if (c->method->finish != NULL)
    c->method->finish(c, reply != NULL);
  if (reply != NULL)
    helper_return_ok(c->inv, reply);
  else
    helper_return_error(c->inv, error);
  call_end(c);
}

static void
work_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  HelperCall *c = data;
  GError *error = NULL;
  GVariant *reply = c->method->work(c->daemon, c->data, &error);
  if (reply != NULL)
    g_task_return_pointer(task, g_variant_ref_sink(reply), (GDestroyNotify)g_variant_unref);
  else
    g_task_return_error(task, error);
}

static void
work_done(GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_task_propagate_pointer(G_TASK(res), &error);
  call_reply(data, reply, error);
}

static void
job_ended(gpointer data, gboolean ok)
{
  HelperCall *c = data;
  call_unlock(c);
  if (c->method->finish != NULL)
    c->method->finish(c, ok);
  call_end(c);
}

static void
call_start_job(HelperCall *c)
{
  const HelperMethod *m = c->method;
  g_autoptr(GError) error = NULL;
  HelperJob *job =
      helper_job_new(c->daemon, c->inv, m->operation, m->job, c->data, job_ended, c, &error);
  if (job == NULL) {
    call_reply(c, NULL, error);
    return;
  }
  g_autofree char *started = g_strdup_printf("started: %s", helper_job_path(job));
  helper_audit(c->inv, m->action, started);
  g_dbus_method_invocation_return_value(c->inv, g_variant_new("(o)", helper_job_path(job)));
  c->inv = NULL; /* answered; the Job ends the call (job_ended) */
  helper_job_run(job);
}

/* Locks, begin, then the work as the row says. */
static void
call_run(HelperCall *c)
{
  const HelperMethod *m = c->method;
  g_autoptr(GError) error = NULL;
  if (m->locks != NULL) {
    g_auto(GStrv) keys = m->locks(c);
    if (!helper_lock_acquire(c->daemon, (const char *const *)keys, m->operation, &error)) {
      call_fail(c, error);
      return;
    }
    c->locks = g_steal_pointer(&keys);
  }
  if (m->begin != NULL && !m->begin(c, &error)) {
    call_unlock(c);
    call_fail(c, error);
    return;
  }
  switch (m->answer) {
  case HELPER_ANSWER_AT_ONCE: {
    g_autoptr(GVariant) reply = m->work(c->daemon, c->data, &error);
    call_reply(c, reply ? g_variant_ref_sink(reply) : NULL, error);
    return;
  }
  case HELPER_ANSWER_THREAD: {
    g_autoptr(GTask) task = g_task_new(NULL, NULL, work_done, c);
    g_task_set_task_data(task, c, NULL);
    g_task_run_in_thread(task, work_thread);
    return;
  }
  case HELPER_ANSWER_JOB:
    call_start_job(c);
    return;
  }
  g_assert_not_reached();
}

static void
check_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  HelperCall *c = data;
  GError *error = NULL;
  if (c->method->check(c, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

static void
check_done(GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr(GError) error = NULL;
  if (g_task_propagate_boolean(G_TASK(res), &error))
    call_run(data);
  else
    call_fail(data, error);
}

/* Authorized: flags, validation, the worker's check. */
static void
call_authorized(HelperCall *c)
{
  const HelperMethod *m = c->method;
  g_autoptr(GError) error = NULL;
  if (m->flags_arg >= 0)
    g_variant_get_child(c->args, (gsize)m->flags_arg, "t", &c->flags);
  if (!helper_flags_check(c->flags, m->flags, &error) ||
      (m->validate != NULL && !m->validate(c, &error))) {
    call_fail(c, error);
    return;
  }
  if (m->check == NULL) {
    call_run(c);
    return;
  }
  g_autoptr(GTask) task = g_task_new(NULL, NULL, check_done, c);
  g_task_set_task_data(task, c, NULL);
  g_task_run_in_thread(task, check_thread);
}

static void
authorize_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  HelperCall *c = data;
  g_task_return_boolean(task, helper_authorize(c->daemon, c->inv));
}

static void
authorize_done(GObject *source, GAsyncResult *res, gpointer data)
{
  HelperCall *c = data;
  if (g_task_propagate_boolean(G_TASK(res), NULL))
    call_authorized(c);
  else
    call_end(c); /* refused and answered by the authorizer */
}

static void
method_call(GDBusConnection *bus, const char *sender, const char *path, const char *interface,
            const char *method, GVariant *parameters, GDBusMethodInvocation *inv, gpointer data)
{
  HelperDaemon *d = data;
  const HelperMethod *m = helper_method_lookup(interface, method);
  if (m != NULL && m->action == NULL && m->answer == HELPER_ANSWER_AT_ONCE && m->flags_arg < 0 &&
      m->validate == NULL && m->locks == NULL) {
    /* Allowed to all and cheap: answered here, with no hold and no thread. */
    helper_daemon_touch(d);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = m->work(d, NULL, &error);
    if (reply != NULL)
      helper_return_ok(inv, g_steal_pointer(&reply));
    else
      helper_return_error(inv, error);
    return;
  }
  helper_daemon_hold(d);
  HelperCall *c = call_new(d, inv, m);
  if (m != NULL && m->action == NULL) {
    call_authorized(c);
    return;
  }
  g_autoptr(GTask) task = g_task_new(NULL, NULL, authorize_done, c);
  g_task_set_task_data(task, c, NULL);
  g_task_run_in_thread(task, authorize_thread);
}

static const GDBusInterfaceVTable vtable = { .method_call = method_call };

gboolean
helper_dispatch_export(HelperDaemon *d, GError **error)
{
  GDBusInterfaceInfo *infos[] = { lcvm_dbus_host_interface_info(),
                                  lcvm_dbus_manager_interface_info() };
  for (guint i = 0; i < G_N_ELEMENTS(infos); i++)
    if (g_dbus_connection_register_object(d->bus, LCVM_OBJECT_PATH, infos[i], &vtable, d, NULL,
                                          error) == 0)
      return FALSE;
  return TRUE;
}
