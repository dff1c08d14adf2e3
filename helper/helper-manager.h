/* SPDX-License-Identifier: MIT */
/* io.lium.Cvm1.Manager's steps, named in the method table (helper-methods.c). */
#pragma once
#include "helper-dispatch.h"

/* "vm:NAME" of the VM the call names. */
GStrv helper_manager_vm_locks(HelperCall *call);

gboolean helper_manager_dry_run_validate(HelperCall *call, GError **error);
GVariant *helper_manager_dry_run(HelperDaemon *d, gpointer data, GError **error);

gboolean helper_manager_start_validate(HelperCall *call, GError **error);
gboolean helper_manager_start_begin(HelperCall *call, GError **error);
GVariant *helper_manager_start(HelperDaemon *d, gpointer data, GError **error);
void helper_manager_start_finish(HelperCall *call, gboolean ok);

gboolean helper_manager_stop_validate(HelperCall *call, GError **error);
gboolean helper_manager_stop_begin(HelperCall *call, GError **error);
gboolean helper_manager_stop_job(HelperJob *job, gpointer data, GError **error);

gboolean helper_manager_remove_validate(HelperCall *call, GError **error);
GVariant *helper_manager_remove(HelperDaemon *d, gpointer data, GError **error);
void helper_manager_remove_finish(HelperCall *call, gboolean ok);

GVariant *helper_manager_list(HelperDaemon *d, gpointer data, GError **error);
