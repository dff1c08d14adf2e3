/* SPDX-License-Identifier: MIT */
/* Audit records. The record carries the caller as the bus saw it (uid, pid, unique name),
 * never what the caller claims. */
#include "helper-audit.h"
#include "lcvm-names.h"
#include "lcvm-text.h"
#include <stdio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

/* What a record quotes of the call's arguments and of its result (which may echo them). */
#define ARGS_MAX   1024
#define RESULT_MAX 1024
/* Repeated refusals: the first COALESCE_AFTER of a window are written at once, the rest of
 * the window as one record. */
#define COALESCE_WINDOW_S 5
#define COALESCE_AFTER    4
#define COALESCE_MAX_KEYS 1024

static void
caller_free(gpointer p)
{
  HelperCaller *c = p;
  g_free(c->bus_name);
  g_free(c);
}

/* Unique bus names are never reused while the bus runs and a connection's credentials never
 * change, so what the bus said about one holds for all its calls: a client making many calls
 * costs one GetConnectionCredentials. Bounded: emptied when it reaches CALLERS_MAX. */
#define CALLERS_MAX 4096
static GMutex callers_lock;
static GHashTable *callers; /* unique name → HelperCaller */

static gboolean
caller_cached(HelperCaller *c)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&callers_lock);
  const HelperCaller *known = callers ? g_hash_table_lookup(callers, c->bus_name) : NULL;
  if (known == NULL)
    return FALSE;
  c->uid = known->uid;
  c->pid = known->pid;
  return TRUE;
}

static void
caller_remember(const HelperCaller *c)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&callers_lock);
  if (callers == NULL || g_hash_table_size(callers) >= CALLERS_MAX) {
    g_clear_pointer(&callers, g_hash_table_unref);
    callers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  }
  HelperCaller *copy = g_memdup2(c, sizeof *c);
  copy->bus_name = NULL; /* the key */
  g_hash_table_insert(callers, g_strdup(c->bus_name), copy);
}

void
helper_caller_resolve(GDBusMethodInvocation *inv)
{
  HelperCaller *c = g_new0(HelperCaller, 1);
  c->uid = G_MAXUINT32;
  c->pid = 0;
  c->bus_name = g_strdup(g_dbus_method_invocation_get_sender(inv));
  if (caller_cached(c)) {
    g_object_set_data_full(G_OBJECT(inv), "lcvm-caller", c, caller_free);
    return;
  }
  GDBusConnection *bus = g_dbus_method_invocation_get_connection(inv);
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "GetConnectionCredentials", g_variant_new("(s)", c->bus_name), G_VARIANT_TYPE("(a{sv})"),
      G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  if (reply != NULL) {
    g_autoptr(GVariant) dict = g_variant_get_child_value(reply, 0);
    g_variant_lookup(dict, "UnixUserID", "u", &c->uid);
    g_variant_lookup(dict, "ProcessID", "u", &c->pid);
    if (c->uid != G_MAXUINT32)
      caller_remember(c);
  }
  g_object_set_data_full(G_OBJECT(inv), "lcvm-caller", c, caller_free);
}

const HelperCaller *
helper_caller_get(GDBusMethodInvocation *inv)
{
  return g_object_get_data(G_OBJECT(inv), "lcvm-caller");
}

static gboolean
journal_available(void)
{
  return access("/run/systemd/journal/socket", W_OK) == 0;
}

void
helper_audit_raw(const HelperCaller *caller, const char *method, const char *object,
                 const char *arguments, const char *action, const char *result)
{
  guint32 uid = caller ? caller->uid : G_MAXUINT32;
  guint32 pid = caller ? caller->pid : 0;
  const char *bus_name = caller && caller->bus_name ? caller->bus_name : "-";
  g_autofree char *args = lcvm_text_cut(arguments ? arguments : "", ARGS_MAX);
  g_autofree char *capped = lcvm_text_cut(result, RESULT_MAX);
  result = capped;

  if (journal_available()) {
    sd_journal_send("MESSAGE_ID=" LCVM_AUDIT_MESSAGE_ID, "PRIORITY=%d", 5,
                    "MESSAGE=%s by uid %u: %s", method, uid, result, "LCVM_CALLER_UID=%u", uid,
                    "LCVM_CALLER_PID=%u", pid, "LCVM_CALLER_BUS_NAME=%s", bus_name,
                    "LCVM_METHOD=%s", method, "LCVM_OBJECT=%s", object, "LCVM_ARGUMENTS=%s", args,
                    "LCVM_ACTION=%s", action ? action : "none", "LCVM_RESULT=%s", result, NULL);
    return;
  }
  /* args and result are quoted and C-escaped, so no value can forge another field. */
  g_autofree char *q_args = g_strescape(args, NULL);
  g_autofree char *q_result = g_strescape(result, NULL);
  g_autofree char *line = g_strdup_printf(
      "AUDIT MESSAGE_ID=" LCVM_AUDIT_MESSAGE_ID
      " uid=%u pid=%u bus_name=%s method=%s object=%s action=%s args=\"%s\" result=\"%s\"\n",
      uid, pid, bus_name, method, object, action ? action : "none", q_args, q_result);
  fputs(line, stderr);
  fflush(stderr);
}

void
helper_audit(GDBusMethodInvocation *inv, const char *action, const char *result)
{
  g_autofree char *method =
      g_strdup_printf("%s.%s", g_dbus_method_invocation_get_interface_name(inv),
                      g_dbus_method_invocation_get_method_name(inv));
  GVariant *params = g_dbus_method_invocation_get_parameters(inv);
  g_autofree char *args = params ? g_variant_print(params, FALSE) : g_strdup("()");
  helper_audit_raw(helper_caller_get(inv), method, g_dbus_method_invocation_get_object_path(inv),
                   args, action, result);
}

/* ---- coalesced refusals ---- */

typedef struct {
  HelperCaller caller; /* the latest refused caller */
  char *method;
  char *object;
  char *args;
  char *action;
  char *result;
  guint written; /* refusals of this window written at once */
  guint repeats; /* refusals after those, counted */
  GDateTime *first;
  GDateTime *last;
} Coalesced;

static GMutex coalesce_lock;
static GHashTable *coalescing; /* "uid\nmethod\naction\nresult" → Coalesced */

static void
coalesced_free(gpointer p)
{
  Coalesced *c = p;
  g_free(c->caller.bus_name);
  g_free(c->method);
  g_free(c->object);
  g_free(c->args);
  g_free(c->action);
  g_free(c->result);
  g_clear_pointer(&c->first, g_date_time_unref);
  g_clear_pointer(&c->last, g_date_time_unref);
  g_free(c);
}

static void
write_summary(Coalesced *c)
{
  if (c->repeats == 0)
    return;
  g_autofree char *first = g_date_time_format_iso8601(c->first);
  g_autofree char *last = g_date_time_format_iso8601(c->last);
  /* Cut first, so the record's own cap never takes the count. */
  g_autofree char *cut = lcvm_text_cut(c->result, RESULT_MAX - 128);
  g_autofree char *result =
      g_strdup_printf("%s [%u more like it from %s to %s]", cut, c->repeats, first, last);
  helper_audit_raw(&c->caller, c->method, c->object, c->args, c->action, result);
}

static gboolean
flush_one(gpointer key)
{
  g_mutex_lock(&coalesce_lock);
  Coalesced *c = NULL;
  g_autofree char *stolen_key = NULL; /* stealing frees neither key nor value */
  if (coalescing != NULL)
    g_hash_table_steal_extended(coalescing, key, (gpointer *)&stolen_key, (gpointer *)&c);
  g_mutex_unlock(&coalesce_lock);
  if (c != NULL) {
    write_summary(c);
    coalesced_free(c);
  }
  return G_SOURCE_REMOVE;
}

void
helper_audit_refusal(GDBusMethodInvocation *inv, const char *action, const char *result)
{
  const HelperCaller *caller = helper_caller_get(inv);
  g_autofree char *method =
      g_strdup_printf("%s.%s", g_dbus_method_invocation_get_interface_name(inv),
                      g_dbus_method_invocation_get_method_name(inv));
  GVariant *params = g_dbus_method_invocation_get_parameters(inv);
  g_autofree char *args = params ? g_variant_print(params, FALSE) : g_strdup("()");
  char *key = g_strdup_printf("%u\n%s\n%s\n%s", caller ? caller->uid : G_MAXUINT32, method,
                              action ? action : "none", result);
  g_mutex_lock(&coalesce_lock);
  if (coalescing == NULL)
    coalescing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, coalesced_free);
  Coalesced *c = g_hash_table_lookup(coalescing, key);
  if (c != NULL && c->written < COALESCE_AFTER) {
    c->written++;
    g_mutex_unlock(&coalesce_lock);
    g_free(key);
    helper_audit(inv, action, result);
    return;
  }
  if (c != NULL) {
    c->repeats++;
    if (caller != NULL) {
      g_free(c->caller.bus_name);
      c->caller = *caller;
      c->caller.bus_name = g_strdup(caller->bus_name);
    }
    g_free(c->args);
    c->args = g_steal_pointer(&args);
    g_clear_pointer(&c->last, g_date_time_unref);
    c->last = g_date_time_new_now_utc();
    if (c->first == NULL)
      c->first = g_date_time_ref(c->last);
    g_mutex_unlock(&coalesce_lock);
    g_free(key);
    return;
  }
  if (g_hash_table_size(coalescing) < COALESCE_MAX_KEYS) {
    c = g_new0(Coalesced, 1);
    if (caller != NULL) {
      c->caller = *caller;
      c->caller.bus_name = g_strdup(caller->bus_name);
    } else {
      c->caller.uid = G_MAXUINT32;
    }
    c->method = g_strdup(method);
    c->object = g_strdup(g_dbus_method_invocation_get_object_path(inv));
    c->args = g_strdup(args);
    c->action = g_strdup(action);
    c->result = g_strdup(result);
    c->written = 1;
    g_hash_table_insert(coalescing, key, c);
    GSource *timer = g_timeout_source_new_seconds(COALESCE_WINDOW_S);
    g_source_set_callback(timer, flush_one, g_strdup(key), g_free);
    g_source_attach(timer, NULL);
    g_source_unref(timer);
  } else {
    g_free(key);
  }
  g_mutex_unlock(&coalesce_lock);
  helper_audit(inv, action, result);
}

void
helper_audit_flush(void)
{
  g_mutex_lock(&coalesce_lock);
  GHashTable *pending = g_steal_pointer(&coalescing);
  g_mutex_unlock(&coalesce_lock);
  if (pending == NULL)
    return;
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init(&it, pending);
  while (g_hash_table_iter_next(&it, NULL, &value))
    write_summary(value);
  g_hash_table_unref(pending);
}
