/* SPDX-License-Identifier: MIT */
/* VM object paths and states (see the header). */
#include "lcvm-vm-object.h"
#include "lcvm-names.h"

#include <gio/gio.h>

char *
lcvm_vm_object_path(const char *name)
{
  g_autofree char *escaped = g_dbus_escape_object_path(name);
  return g_strconcat(LCVM_VMS_PATH "/", escaped, NULL);
}

gboolean
lcvm_vm_state_is_live(const char *state)
{
  return g_strcmp0(state, LCVM_VM_STARTING) == 0 || g_strcmp0(state, LCVM_VM_RUNNING) == 0 ||
         g_strcmp0(state, LCVM_VM_STOPPING) == 0;
}
