/* SPDX-License-Identifier: MIT */
/* lcvm-flood-client: floods the helper with LoadModules calls for a while, as a local user
 * might: --connections C system-bus connections, each keeping --in-flight N calls outstanding,
 * for --seconds S. Prints one JSON object: calls answered, how many succeeded, and the errors
 * by D-Bus name. For bench/run-flood-bench.py and tests/integration/test_flood.py; never
 * installed. */
#include "lcvm-names.h"
#include <gio/gio.h>
#include <stdio.h>

typedef struct {
  GMainLoop *loop;
  gint64 until;
  guint outstanding;
  guint answered;
  guint ok;
  GHashTable *errors; /* D-Bus error name → count */
} Flood;

static void send_one(GDBusConnection *bus, Flood *f);

static void
on_reply(GObject *source, GAsyncResult *res, gpointer data)
{
  Flood *f = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
  f->outstanding--;
  f->answered++;
  if (reply != NULL) {
    f->ok++;
  } else {
    g_autofree char *name = g_dbus_error_get_remote_error(error);
    const char *key = name ? name : "(local)";
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(f->errors, key));
    g_hash_table_insert(f->errors, g_strdup(key), GUINT_TO_POINTER(n + 1));
  }
  if (g_get_monotonic_time() < f->until)
    send_one(G_DBUS_CONNECTION(source), f);
  else if (f->outstanding == 0)
    g_main_loop_quit(f->loop);
}

static void
send_one(GDBusConnection *bus, Flood *f)
{
  const char *modules[] = { "vfio_pci", NULL };
  f->outstanding++;
  g_dbus_connection_call(bus, LCVM_BUS_NAME, LCVM_OBJECT_PATH, LCVM_IFACE_HOST, "LoadModules",
                         g_variant_new("(^ast)", modules, (guint64)0), NULL, G_DBUS_CALL_FLAGS_NONE,
                         60000, NULL, on_reply, f);
}

int
main(int argc, char **argv)
{
  int connections = 4, in_flight = 16;
  double seconds = 5;
  const GOptionEntry entries[] = {
    { "connections", 'c', 0, G_OPTION_ARG_INT, &connections, "Bus connections (default 4)", "C" },
    { "in-flight", 'n', 0, G_OPTION_ARG_INT, &in_flight, "Calls outstanding per connection", "N" },
    { "seconds", 's', 0, G_OPTION_ARG_DOUBLE, &seconds, "How long to flood (default 5)", "S" },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- flood the helper with LoadModules");
  g_autoptr(GError) error = NULL;
  g_option_context_add_main_entries(ctx, entries, NULL);
  if (!g_option_context_parse(ctx, &argc, &argv, &error) || connections < 1 || in_flight < 1) {
    g_printerr("lcvm-flood-client: %s\n", error ? error->message : "C and N must be >= 1");
    return 2;
  }
  Flood f = { g_main_loop_new(NULL, FALSE),
              g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC),
              0,
              0,
              0,
              g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL) };
  g_autoptr(GPtrArray) buses = g_ptr_array_new_with_free_func(g_object_unref);
  for (int c = 0; c < connections; c++) {
    g_autofree char *address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
    GDBusConnection *bus = address ? g_dbus_connection_new_for_address_sync(
                                         address,
                                         G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                             G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                         NULL, NULL, &error)
                                   : NULL;
    if (bus == NULL) {
      g_printerr("lcvm-flood-client: cannot connect to the system bus: %s\n", error->message);
      return 1;
    }
    g_ptr_array_add(buses, bus);
    for (int i = 0; i < in_flight; i++)
      send_one(bus, &f);
  }
  g_main_loop_run(f.loop);
  printf("{\"answered\": %u, \"ok\": %u, \"errors\": {", f.answered, f.ok);
  GHashTableIter it;
  gpointer key, value;
  gboolean first = TRUE;
  g_hash_table_iter_init(&it, f.errors);
  while (g_hash_table_iter_next(&it, &key, &value)) {
    printf("%s\"%s\": %u", first ? "" : ", ", (char *)key, GPOINTER_TO_UINT(value));
    first = FALSE;
  }
  printf("}}\n");
  g_hash_table_unref(f.errors);
  g_main_loop_unref(f.loop);
  return 0;
}
