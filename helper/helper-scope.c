/* SPDX-License-Identifier: MIT */
/* The VM's transient scope (see helper-scope.h). Asks systemd over the system bus; systemd
 * moves the processes. Never writes to cgroupfs itself (the unit has ProtectControlGroups). */
#include "helper-scope.h"

#include <gio/gio.h>
#include <systemd/sd-daemon.h>

#define SCOPE_PREFIX "lium-cvm-vm-"
/* Where VMs and containers go by convention (libvirt, machined). */
#define SCOPE_SLICE "machine.slice"

/* The scope's unit name for VM name (names are [a-z0-9_-], all valid in unit names). */
static char *
helper_scope_unit_name(const char *name)
{
  return g_strconcat(SCOPE_PREFIX, name, ".scope", NULL);
}

static GVariant *
scope_properties(const char *name, pid_t qemu_pid, pid_t bridge_pid)
{
  GVariantBuilder pids;
  g_variant_builder_init(&pids, G_VARIANT_TYPE("au"));
  g_variant_builder_add(&pids, "u", (guint32)qemu_pid);
  if (bridge_pid > 0)
    g_variant_builder_add(&pids, "u", (guint32)bridge_pid);

  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a(sv)"));
  g_variant_builder_add(&b, "(sv)", "PIDs", g_variant_builder_end(&pids));
  g_autofree char *description =
      g_strdup_printf("lium-cvm VM %s (QEMU and its host-API bridge)", name);
  g_variant_builder_add(&b, "(sv)", "Description", g_variant_new_string(description));
  g_variant_builder_add(&b, "(sv)", "Slice", g_variant_new_string(SCOPE_SLICE));
  g_variant_builder_add(&b, "(sv)", "CPUAccounting", g_variant_new_boolean(TRUE));
  g_variant_builder_add(&b, "(sv)", "MemoryAccounting", g_variant_new_boolean(TRUE));
  g_variant_builder_add(&b, "(sv)", "TasksAccounting", g_variant_new_boolean(TRUE));
  /* A VM that crashed leaves no failed unit behind that would block its next start. */
  g_variant_builder_add(&b, "(sv)", "CollectMode", g_variant_new_string("inactive-or-failed"));
  return g_variant_builder_end(&b);
}

void
helper_scope_adopt(const char *name, pid_t qemu_pid, pid_t bridge_pid)
{
  if (sd_booted() <= 0 || qemu_pid <= 0)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
  g_autofree char *unit = helper_scope_unit_name(name);
  g_autoptr(GVariant) reply = NULL;
  if (bus != NULL)
    reply = g_dbus_connection_call_sync(
        bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager", "StartTransientUnit",
        g_variant_new("(ss@a(sv)a(sa(sv)))", unit, "fail",
                      scope_properties(name, qemu_pid, bridge_pid), NULL),
        G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, 10000, NULL, &error);
  if (reply == NULL)
    g_warning("VM %s: cannot move QEMU (pid %d) into %s: %s; it runs in the helper's cgroup", name,
              (int)qemu_pid, unit, error->message);
  else
    g_message("VM %s: QEMU (pid %d) and its bridge (pid %d) in %s", name, (int)qemu_pid,
              (int)bridge_pid, unit);
}
