/* SPDX-License-Identifier: MIT */
/* io.lium.Cvm1.Host's GetInfo and LoadModules steps, named in the method table. */
#pragma once
#include "helper-dispatch.h"

GVariant *helper_host_get_info(HelperDaemon *d, gpointer data, GError **error);
gboolean helper_host_load_modules_validate(HelperCall *call, GError **error);
GVariant *helper_host_load_modules(HelperDaemon *d, gpointer data, GError **error);
