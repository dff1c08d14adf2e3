/* SPDX-License-Identifier: MIT */
/* Locks and the idle exit. The helper exits after idle_timeout seconds without calls, jobs
 * or supervised VMs; D-Bus activation starts it again on the next call. */
#include "helper-daemon.h"
#include "helper-authorizer.h"
#include "lcvm-error.h"
#include <string.h>

char *
helper_device_lock_key(const char *slot)
{
  return g_strconcat(HELPER_DEVICE_LOCK_PREFIX, slot, NULL);
}

gboolean
helper_lock_acquire(HelperDaemon *d, const char *const *keys, const char *operation, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&d->locks_mutex);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
    if (!g_str_has_prefix(keys[i], HELPER_DEVICE_LOCK_PREFIX))
      continue;
    const char *slot = keys[i] + strlen(HELPER_DEVICE_LOCK_PREFIX);
    g_autofree char *vm = helper_vms_device_holder(d, slot);
    if (vm != NULL) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_DEVICE_IN_USE,
                  "%s belongs to VM %s while it runs; stop it first (lium-cvm stop %s)", slot, vm,
                  vm);
      return FALSE;
    }
  }
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
    const char *holder = g_hash_table_lookup(d->locks, keys[i]);
    if (holder != NULL) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_BUSY,
                  "%s is busy with '%s'; wait for it to finish and try again", keys[i], holder);
      return FALSE;
    }
  }
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    g_hash_table_insert(d->locks, g_strdup(keys[i]), g_strdup(operation));
  return TRUE;
}

gboolean
helper_lock_held(HelperDaemon *d, const char *key)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&d->locks_mutex);
  return g_hash_table_contains(d->locks, key);
}

void
helper_lock_release(HelperDaemon *d, const char *const *keys)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&d->locks_mutex);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    g_hash_table_remove(d->locks, keys[i]);
}

static gboolean
idle_expired(gpointer data)
{
  HelperDaemon *d = data;
  d->idle_source = 0;
  if (d->busy == 0) {
    g_message("idle for %" G_GUINT64_FORMAT " s, exiting", d->config->idle_timeout);
    g_main_loop_quit(d->loop);
  }
  return G_SOURCE_REMOVE;
}

static void
rearm_idle(HelperDaemon *d)
{
  if (d->idle_source != 0)
    g_source_remove(d->idle_source);
  d->idle_source = 0;
  if (d->config->idle_timeout > 0 && d->busy == 0)
    d->idle_source = g_timeout_add_seconds((guint)d->config->idle_timeout, idle_expired, d);
}

void
helper_daemon_hold(HelperDaemon *d)
{
  d->busy++;
  rearm_idle(d);
}

void
helper_daemon_release(HelperDaemon *d)
{
  g_assert(d->busy > 0);
  d->busy--;
  rearm_idle(d);
}

static gboolean
touch_in_main(gpointer data)
{
  rearm_idle(data);
  return G_SOURCE_REMOVE;
}

void
helper_daemon_touch(HelperDaemon *d)
{
  g_main_context_invoke(NULL, touch_in_main, d);
}

typedef struct {
  HelperDaemon *daemon;
  GDBusMethodInvocation *inv;
  HelperCallFunc func;
  gpointer data;
  GDestroyNotify destroy;
} ThreadCall;

static void
thread_call_free(gpointer p)
{
  ThreadCall *c = p;
  if (c->destroy != NULL)
    c->destroy(c->data);
  g_free(c);
}

static void
thread_call_run(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  ThreadCall *c = data;
  GError *error = NULL;
  GVariant *reply = c->func(c->daemon, c->data, &error);
  if (reply != NULL)
    g_task_return_pointer(task, g_variant_ref_sink(reply), (GDestroyNotify)g_variant_unref);
  else
    g_task_return_error(task, error);
}

static void
thread_call_done(GObject *source, GAsyncResult *res, gpointer data)
{
  ThreadCall *c = g_task_get_task_data(G_TASK(res));
  HelperDaemon *d = c->daemon;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_task_propagate_pointer(G_TASK(res), &error);
  if (reply != NULL)
    helper_return_ok(c->inv, reply);
  else
    helper_return_error(c->inv, error);
  helper_daemon_release(d);
}

void
helper_call_in_thread(HelperDaemon *d, GDBusMethodInvocation *inv, HelperCallFunc func,
                      gpointer data, GDestroyNotify destroy)
{
  ThreadCall *c = g_new0(ThreadCall, 1);
  c->daemon = d;
  c->inv = inv;
  c->func = func;
  c->data = data;
  c->destroy = destroy;
  helper_daemon_hold(d);
  g_autoptr(GTask) task = g_task_new(NULL, NULL, thread_call_done, NULL);
  g_task_set_task_data(task, c, thread_call_free);
  g_task_run_in_thread(task, thread_call_run);
}
