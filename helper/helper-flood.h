/* SPDX-License-Identifier: MIT */
/* Keeping a local user's flood of refused calls from slowing operators. Every privileged call
 * is authorized in a GDBus worker thread through a polkitd round trip and audited; a flood of
 * calls polkit refuses used to occupy those threads and polkitd, and write one record each.
 *  - A uid refused in the last HELPER_FLOOD_REFUSED_S seconds gets at most
 *    HELPER_FLOOD_MAX_IN_FLIGHT calls in authorization at once; more are refused Busy at once.
 *    Uids never refused (operators) and root are not limited.
 *  - polkit's plain "not authorized" (never a challenge, never an error reaching polkitd) for
 *    a call that does not allow interactive authorization is remembered for
 *    HELPER_FLOOD_DENY_TTL_MS per (uid, action): the same uid's next non-interactive calls for
 *    that action are refused without asking polkit again. A caller that allows interactive
 *    authorization is always asked through polkit. A changed rule or group membership takes
 *    effect for that uid after at most the TTL.
 *  - The refusals of a uid refused moments ago are answered after a short wait (tarpit), so a
 *    flooding client's own round trips slow it down instead of the bus and the helper.
 * The repeated refusal records are coalesced in helper-audit.c. Thread-safe. */
#pragma once
#include <gio/gio.h>

#define HELPER_FLOOD_MAX_IN_FLIGHT 2
#define HELPER_FLOOD_REFUSED_S     10
#define HELPER_FLOOD_DENY_TTL_MS   3000
#define HELPER_FLOOD_TARPIT_MS     250
#define HELPER_FLOOD_TARPIT_MAX    1024

/* FALSE (and nothing counted) when uid may not start another authorization now. */
gboolean helper_flood_enter(guint32 uid);
void helper_flood_leave(guint32 uid);

/* Notes a refusal of uid (of any kind). TRUE when uid had been refused within
 * HELPER_FLOOD_REFUSED_S already and its answer should wait HELPER_FLOOD_TARPIT_MS: a flood
 * then gets at most (its calls in flight) / TARPIT answers a second, while a single refused
 * call is answered at once. At most HELPER_FLOOD_TARPIT_MAX answers wait at a time (beyond
 * that they go out at once), so waiting answers cannot grow the helper's memory. */
gboolean helper_flood_refused(guint32 uid);
/* Sends the error now, or after HELPER_FLOOD_TARPIT_MS when delay (and room) says so. */
void helper_flood_answer(GDBusMethodInvocation *inv, gboolean delay, int code, const char *message);

/* Whether polkit said a plain no to (uid, action) within the TTL. */
gboolean helper_flood_denied(guint32 uid, const char *action);
void helper_flood_remember_denial(guint32 uid, const char *action);
