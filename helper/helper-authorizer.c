/* SPDX-License-Identifier: MIT */
/* Authorization of every method call, by the action its row of the method table names. The
 * check runs in a worker thread (helper-dispatch.c), so a slow polkitd never blocks the main
 * loop. The subject is always the sender's bus name, never a pid. */
#include "helper-authorizer.h"
#include "helper-dispatch.h"
#include "helper-audit.h"
#include "helper-flood.h"
#include "lcvm-error.h"
#include "lcvm-names.h"
#include "lcvm-text.h"

/* The longest error text sent on the bus (a manifest error quotes at most 512 bytes of it). */
#define ERROR_MESSAGE_MAX 4096

const char *
helper_invocation_action(GDBusMethodInvocation *inv)
{
  const HelperMethod *m = helper_method_lookup(g_dbus_method_invocation_get_interface_name(inv),
                                               g_dbus_method_invocation_get_method_name(inv));
  return m ? m->action : NULL;
}

static void refuse(GDBusMethodInvocation *inv, const char *action, LcvmError code, const char *fmt,
                   ...) G_GNUC_PRINTF(4, 5);

static void
refuse(GDBusMethodInvocation *inv, const char *action, LcvmError code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_autofree char *result = g_strdup_printf("refused: %s: %s", lcvm_error_dbus_name(code), msg);
  const HelperCaller *caller = helper_caller_get(inv);
  gboolean again = helper_flood_refused(caller ? caller->uid : G_MAXUINT32);
  helper_audit_refusal(inv, action, result);
  helper_flood_answer(inv, again, code, msg);
}

static void
refuse_not_authorized(GDBusMethodInvocation *inv, const char *action)
{
  refuse(inv, action, LCVM_ERROR_NOT_AUTHORIZED,
         "not authorized for %s: ask an administrator to add you to group '" LCVM_GROUP
         "' (usermod -aG " LCVM_GROUP " USER)",
         action);
}

static gboolean
check_polkit(HelperDaemon *d, GDBusMethodInvocation *inv, const char *action, guint32 uid)
{
  GDBusMessage *msg = g_dbus_method_invocation_get_message(inv);
  gboolean interactive =
      (g_dbus_message_get_flags(msg) & G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;
  /* polkit said a plain no to this uid moments ago, and this caller cannot authenticate. */
  if (!interactive && helper_flood_denied(uid, action)) {
    refuse_not_authorized(inv, action);
    return FALSE;
  }
  g_autoptr(PolkitSubject) subject =
      polkit_system_bus_name_new(g_dbus_method_invocation_get_sender(inv));
  g_autoptr(GError) error = NULL;
  g_autoptr(PolkitAuthorizationResult) res = polkit_authority_check_authorization_sync(
      d->authority, subject, action, NULL,
      interactive ? POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION
                  : POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE,
      NULL, &error);
  if (res == NULL) {
    refuse(inv, action, LCVM_ERROR_NOT_AUTHORIZED,
           "cannot check authorization for %s: %s (is polkitd running?)", action, error->message);
    return FALSE;
  }
  if (polkit_authorization_result_get_is_authorized(res))
    return TRUE;
  if (polkit_authorization_result_get_is_challenge(res) && !interactive) {
    refuse(inv, action, LCVM_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
           "%s needs authentication: run the command on a terminal so it can ask for a "
           "password, or have an administrator add you to group '" LCVM_GROUP "'",
           action);
    return FALSE;
  }
  if (!interactive && !polkit_authorization_result_get_is_challenge(res))
    helper_flood_remember_denial(uid, action);
  refuse_not_authorized(inv, action);
  return FALSE;
}

gboolean
helper_authorize(HelperDaemon *d, GDBusMethodInvocation *inv)
{
  const char *iface = g_dbus_method_invocation_get_interface_name(inv);
  const char *method = g_dbus_method_invocation_get_method_name(inv);
  const HelperMethod *rule = helper_method_lookup(iface, method);

  if (rule != NULL && rule->action == NULL)
    return TRUE;
  helper_caller_resolve(inv);
  if (rule == NULL) {
    refuse(inv, NULL, LCVM_ERROR_NOT_AUTHORIZED, "%s.%s is not an allowed method", iface, method);
    return FALSE;
  }
  const HelperCaller *caller = helper_caller_get(inv);
  guint32 uid = caller ? caller->uid : G_MAXUINT32;
  if (!helper_flood_enter(uid)) {
    refuse(inv, rule->action, LCVM_ERROR_BUSY,
           "uid %u already has %d calls waiting for authorization after recent refusals; wait "
           "for their answers",
           uid, HELPER_FLOOD_MAX_IN_FLIGHT);
    return FALSE;
  }
  gboolean ok = check_polkit(d, inv, rule->action, uid);
  helper_flood_leave(uid);
  return ok;
}

void
helper_return_ok(GDBusMethodInvocation *inv, GVariant *value)
{
  const char *action = helper_invocation_action(inv);
  if (action != NULL)
    helper_audit(inv, action, "ok");
  g_dbus_method_invocation_return_value(inv, value);
}

void
helper_return_error(GDBusMethodInvocation *inv, const GError *error)
{
  const char *action = helper_invocation_action(inv);
  /* The last gate before the bus: whatever a message quotes (a file, QEMU, the guest), GDBus
   * gets valid UTF-8 of bounded length, never a critical and a malformed reply. */
  g_autofree char *message = lcvm_text_cut(error->message, ERROR_MESSAGE_MAX);
  GError *wire = g_error_new_literal(
      LCVM_ERROR, error->domain == LCVM_ERROR ? error->code : LCVM_ERROR_FAILED, message);
  if (action != NULL) {
    g_autofree char *result =
        g_strdup_printf("failed: %s: %s", lcvm_error_dbus_name(wire->code), wire->message);
    helper_audit(inv, action, result);
  }
  g_dbus_method_invocation_take_error(inv, wire);
}
