/* SPDX-License-Identifier: MIT */
/* The default-deny authorizer: one table maps every exported method to its polkit action
 * (or to "none": allowed to all). A method missing from the table is refused. */
#pragma once
#include "helper-daemon.h"

typedef struct {
  const char *interface;
  const char *method;
  const char *action; /* NULL: no authorization needed ("none") */
} HelperAuthRule;

/* The table; terminated by an entry with interface == NULL. */
const HelperAuthRule *helper_authorizer_table(void);
/* NULL when the method is not in the table (refused). */
const HelperAuthRule *helper_authorizer_lookup(const char *interface, const char *method);

/* Connects the authorizer to a skeleton's g-authorize-method (runs in a worker thread). */
void helper_authorizer_attach(HelperDaemon *d, GDBusInterfaceSkeleton *skeleton);

/* Replies, each writing the call's audit record when the method is privileged. */
void helper_return_ok(GDBusMethodInvocation *inv, GVariant *value);
void helper_return_error(GDBusMethodInvocation *inv, const GError *error);
const char *helper_invocation_action(GDBusMethodInvocation *inv);
