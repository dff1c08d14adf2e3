/* SPDX-License-Identifier: MIT */
/* Locks and the idle exit. The helper exits after idle_timeout seconds without calls, jobs
 * or supervised VMs; D-Bus activation starts it again on the next call. */
#include "helper-daemon.h"
#include "helper-dispatch.h"
#include "helper-readopt.h"
#include "helper-uid-cursor.h"
#include "helper-vm.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

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
    g_autofree char *vm = helper_alloc_holder(d->alloc, keys[i]);
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

/* Only EADDRINUSE makes a host-API port busy: the bridge binds 127.0.0.1:PORT. */
static gboolean
hostapi_port_free(guint16 port)
{
  lcvm_autofd int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return TRUE;
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  return !(bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno == EADDRINUSE);
}

void
helper_daemon_init(HelperDaemon *d, LcvmConfig *config)
{
  d->config = config;
  d->locks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_mutex_init(&d->locks_mutex);
  d->alloc = helper_alloc_new(config, hostapi_port_free);
  helper_uid_cursor_load(config, d->alloc);
  d->loop = g_main_loop_new(NULL, FALSE);
}

gboolean
helper_daemon_export(HelperDaemon *d, GError **error)
{
  d->vms = helper_vms_new(d);
  return helper_dispatch_export(d, error) && helper_readopt(d, error);
}
