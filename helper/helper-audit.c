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

static void
caller_free(gpointer p)
{
  HelperCaller *c = p;
  g_free(c->bus_name);
  g_free(c);
}

void
helper_caller_resolve(GDBusMethodInvocation *inv)
{
  HelperCaller *c = g_new0(HelperCaller, 1);
  c->uid = G_MAXUINT32;
  c->pid = 0;
  c->bus_name = g_strdup(g_dbus_method_invocation_get_sender(inv));
  GDBusConnection *bus = g_dbus_method_invocation_get_connection(inv);
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "GetConnectionCredentials", g_variant_new("(s)", c->bus_name), G_VARIANT_TYPE("(a{sv})"),
      G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  if (reply != NULL) {
    g_autoptr(GVariant) dict = g_variant_get_child_value(reply, 0);
    g_variant_lookup(dict, "UnixUserID", "u", &c->uid);
    g_variant_lookup(dict, "ProcessID", "u", &c->pid);
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
