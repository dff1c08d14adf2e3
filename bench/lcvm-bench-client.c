/* SPDX-License-Identifier: MIT */
/* lcvm-bench-client: calls one helper method N times over the system bus from one
 * connection, one call at a time, and prints the latency distribution and the call rate as
 * one JSON object. Only for bench/run-foundation-bench.py; never installed. Every call must
 * succeed: a single error ends the run with exit status 1, so a figure never hides refusals. */
#include "lcvm-names.h"
#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  const char *method;
  int count;
  int warmup;
  char **modules;
} BenchOptions;

static GVariant *
call_params(const BenchOptions *o)
{
  if (g_str_equal(o->method, "LoadModules"))
    return g_variant_new("(^ast)", o->modules, (guint64)0);
  return NULL;
}

static gboolean
call_once(GDBusConnection *bus, const BenchOptions *o, GError **error)
{
  g_autoptr(GVariant) reply =
      g_dbus_connection_call_sync(bus, LCVM_BUS_NAME, LCVM_OBJECT_PATH, LCVM_IFACE_HOST, o->method,
                                  call_params(o), NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
  return reply != NULL;
}

static int
compare_int64(const void *a, const void *b)
{
  gint64 x = *(const gint64 *)a;
  gint64 y = *(const gint64 *)b;
  return (x > y) - (x < y);
}

static gint64
percentile(const gint64 *sorted, int n, double p)
{
  int i = (int)(p * (n - 1) + 0.5);
  return sorted[i];
}

/* Fills lat[0..count) with the microseconds of each call; returns the total. */
static gint64
measure(GDBusConnection *bus, const BenchOptions *o, gint64 *lat, GError **error)
{
  for (int i = 0; i < o->warmup; i++)
    if (!call_once(bus, o, error))
      return -1;
  gint64 start = g_get_monotonic_time();
  for (int i = 0; i < o->count; i++) {
    gint64 t0 = g_get_monotonic_time();
    if (!call_once(bus, o, error))
      return -1;
    lat[i] = g_get_monotonic_time() - t0;
  }
  return g_get_monotonic_time() - start;
}

static int
run(GDBusConnection *bus, const BenchOptions *o)
{
  g_autofree gint64 *lat = g_new(gint64, o->count);
  g_autoptr(GError) error = NULL;
  gint64 total = measure(bus, o, lat, &error);
  if (total < 0) {
    g_printerr("lcvm-bench-client: %s failed: %s\n", o->method, error->message);
    return 1;
  }
  qsort(lat, o->count, sizeof(gint64), compare_int64);
  printf("{\"method\": \"%s\", \"calls\": %d, \"seconds\": %.3f, \"calls_per_s\": %.0f, "
         "\"p50_us\": %" G_GINT64_FORMAT ", \"p99_us\": %" G_GINT64_FORMAT
         ", \"max_us\": %" G_GINT64_FORMAT "}\n",
         o->method, o->count, total / 1e6, o->count / (total / 1e6), percentile(lat, o->count, 0.5),
         percentile(lat, o->count, 0.99), lat[o->count - 1]);
  return 0;
}

int
main(int argc, char **argv)
{
  BenchOptions o = { .method = "GetInfo", .count = 1000, .warmup = 50 };
  g_autofree char *method = NULL;
  const GOptionEntry entries[] = {
    { "method", 'm', 0, G_OPTION_ARG_STRING, &method, "GetInfo or LoadModules", "NAME" },
    { "count", 'n', 0, G_OPTION_ARG_INT, &o.count, "Measured calls (default 1000)", "N" },
    { "warmup", 'w', 0, G_OPTION_ARG_INT, &o.warmup, "Unmeasured calls first (default 50)", "N" },
    { "module", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.modules, "Module for LoadModules", "NAME" },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- helper call latency");
  g_autoptr(GError) error = NULL;
  g_option_context_add_main_entries(ctx, entries, NULL);
  if (!g_option_context_parse(ctx, &argc, &argv, &error) || o.count < 1 || o.warmup < 0) {
    g_printerr("lcvm-bench-client: %s\n", error ? error->message : "--count must be >= 1");
    return 2;
  }
  if (method != NULL)
    o.method = method;
  if (!g_str_equal(o.method, "GetInfo") &&
      !(g_str_equal(o.method, "LoadModules") && o.modules != NULL)) {
    g_printerr("lcvm-bench-client: --method is GetInfo, or LoadModules with --module\n");
    return 2;
  }
  g_autoptr(GDBusConnection) bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
  if (bus == NULL) {
    g_printerr("lcvm-bench-client: cannot connect to the system bus: %s\n", error->message);
    return 1;
  }
  int status = run(bus, &o);
  g_strfreev(o.modules);
  return status;
}
