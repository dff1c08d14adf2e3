/* SPDX-License-Identifier: MIT */
/* The default-deny authorizer: every method's row of the method table (helper-dispatch.h)
 * names its polkit action (or none: allowed to all). A method missing from the table is
 * refused. */
#pragma once
#include "helper-daemon.h"

/* Blocking (call it from a worker thread): TRUE when the caller may call inv's method; else
 * the call was answered (refused, audited, flood-limited) and FALSE. */
gboolean helper_authorize(HelperDaemon *d, GDBusMethodInvocation *inv);

/* Replies, each writing the call's audit record when the method is privileged. */
void helper_return_ok(GDBusMethodInvocation *inv, GVariant *value);
void helper_return_error(GDBusMethodInvocation *inv, const GError *error);
const char *helper_invocation_action(GDBusMethodInvocation *inv);
