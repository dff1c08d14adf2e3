/* SPDX-License-Identifier: MIT */
/* The VMs a previous helper left running, taken over at start (helper-readopt.c). */
#pragma once
#include "helper-daemon.h"

/* Re-adopts into d->vms every VM with a runtime record; shows the crashes recorded earlier. */
gboolean helper_readopt(HelperDaemon *d, GError **error);
