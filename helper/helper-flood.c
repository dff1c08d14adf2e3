/* SPDX-License-Identifier: MIT */
/* The flood limits of the authorizer (see the header): three small tables under one mutex,
 * each entry expiring by monotonic time; expired entries are swept when a table grows past
 * SWEEP_AT, so a flood of distinct uids cannot grow them without bound. */
#include "helper-flood.h"
#include "lcvm-error.h"

#define SWEEP_AT 256

static GMutex flood_lock;
static GHashTable *in_flight;     /* uid → count */
static GHashTable *refused_until; /* uid → monotonic µs */
static GHashTable *denied_until;  /* "uid action" → monotonic µs */

static void
tables_init(void)
{
  if (in_flight != NULL)
    return;
  in_flight = g_hash_table_new(g_direct_hash, g_direct_equal);
  refused_until = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  denied_until = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static gboolean
expired(gpointer key, gpointer value, gpointer now)
{
  return *(gint64 *)value <= *(gint64 *)now;
}

static void
put_deadline(GHashTable *table, gpointer key, gint64 deadline)
{
  gint64 now = g_get_monotonic_time();
  if (g_hash_table_size(table) >= SWEEP_AT)
    g_hash_table_foreach_remove(table, expired, &now);
  g_hash_table_insert(table, key, g_memdup2(&deadline, sizeof deadline));
}

static gboolean
before_deadline(GHashTable *table, gconstpointer key)
{
  const gint64 *until = g_hash_table_lookup(table, key);
  return until != NULL && *until > g_get_monotonic_time();
}

gboolean
helper_flood_enter(guint32 uid)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&flood_lock);
  tables_init();
  gpointer key = GUINT_TO_POINTER(uid);
  guint n = GPOINTER_TO_UINT(g_hash_table_lookup(in_flight, key));
  if (uid != 0 && n >= HELPER_FLOOD_MAX_IN_FLIGHT && before_deadline(refused_until, key))
    return FALSE;
  g_hash_table_insert(in_flight, key, GUINT_TO_POINTER(n + 1));
  return TRUE;
}

void
helper_flood_leave(guint32 uid)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&flood_lock);
  tables_init();
  gpointer key = GUINT_TO_POINTER(uid);
  guint n = GPOINTER_TO_UINT(g_hash_table_lookup(in_flight, key));
  if (n <= 1)
    g_hash_table_remove(in_flight, key);
  else
    g_hash_table_insert(in_flight, key, GUINT_TO_POINTER(n - 1));
}

gboolean
helper_flood_refused(guint32 uid)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&flood_lock);
  tables_init();
  gpointer key = GUINT_TO_POINTER(uid);
  gboolean again = before_deadline(refused_until, key);
  put_deadline(refused_until, key,
               g_get_monotonic_time() + HELPER_FLOOD_REFUSED_S * G_USEC_PER_SEC);
  return again;
}

typedef struct {
  GDBusMethodInvocation *inv;
  int code;
  char *message;
} Answer;

static gint waiting; /* answers held back now */

static gboolean
send_answer(gpointer data)
{
  Answer *a = data;
  g_dbus_method_invocation_return_error_literal(a->inv, LCVM_ERROR, a->code, a->message);
  g_free(a->message);
  g_free(a);
  g_atomic_int_dec_and_test(&waiting);
  return G_SOURCE_REMOVE;
}

void
helper_flood_answer(GDBusMethodInvocation *inv, gboolean delay, int code, const char *message)
{
  if (!delay || g_atomic_int_add(&waiting, 1) >= HELPER_FLOOD_TARPIT_MAX) {
    if (delay)
      g_atomic_int_dec_and_test(&waiting);
    g_dbus_method_invocation_return_error_literal(inv, LCVM_ERROR, code, message);
    return;
  }
  Answer *a = g_new0(Answer, 1);
  a->inv = inv; /* the invocation stays alive until an answer is returned on it */
  a->code = code;
  a->message = g_strdup(message);
  GSource *timer = g_timeout_source_new(HELPER_FLOOD_TARPIT_MS);
  g_source_set_callback(timer, send_answer, a, NULL);
  g_source_attach(timer, NULL);
  g_source_unref(timer);
}

gboolean
helper_flood_denied(guint32 uid, const char *action)
{
  g_autofree char *key = g_strdup_printf("%u %s", uid, action);
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&flood_lock);
  tables_init();
  return before_deadline(denied_until, key);
}

void
helper_flood_remember_denial(guint32 uid, const char *action)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&flood_lock);
  tables_init();
  put_deadline(denied_until, g_strdup_printf("%u %s", uid, action),
               g_get_monotonic_time() + HELPER_FLOOD_DENY_TTL_MS * 1000);
}
