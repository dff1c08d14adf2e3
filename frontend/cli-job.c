/* SPDX-License-Identifier: MIT */
/* Following a helper job: subscribe first, then read the properties, so a job that ended
 * before we subscribed is still seen (Done/Ok/Result). */
#include "cli-client.h"
#include "lcvm-error.h"
#include "lcvm-names.h"
#include <stdio.h>

typedef struct {
  LcvmCli *cli;
  GMainLoop *loop;
  gboolean done;
  gboolean ok;
  char *result;
  char *last_message;
} JobWatch;

static void
print_step(JobWatch *w, const char *message)
{
  if (message == NULL || *message == '\0' || g_strcmp0(message, w->last_message) == 0)
    return;
  g_free(w->last_message);
  w->last_message = g_strdup(message);
  if (w->cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "step");
    json_builder_add_string_value(b, message);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    json_generator_set_root(gen, root);
    g_autofree char *line = json_generator_to_data(gen, NULL);
    g_printerr("%s\n", line);
  } else {
    g_printerr("  %s\n", message);
  }
}

static void
apply_props(JobWatch *w, GVariant *props)
{
  const char *message = NULL;
  const char *result = NULL;
  gboolean done = FALSE;
  gboolean ok = FALSE;
  if (g_variant_lookup(props, "Message", "&s", &message))
    print_step(w, message);
  if (g_variant_lookup(props, "Done", "b", &done) && done) {
    g_variant_lookup(props, "Ok", "b", &ok);
    g_variant_lookup(props, "Result", "&s", &result);
    w->done = TRUE;
    w->ok = ok;
    g_free(w->result);
    w->result = g_strdup(result ? result : "");
    g_main_loop_quit(w->loop);
  }
}

static void
on_changed(GVariant *changed, gpointer data)
{
  apply_props(data, changed);
}

static void
on_finished(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
            const char *signal, GVariant *params, gpointer data)
{
  JobWatch *w = data;
  const char *msg = NULL;
  g_variant_get(params, "(b&s)", &w->ok, &msg);
  w->done = TRUE;
  g_free(w->result);
  w->result = g_strdup(msg);
  g_main_loop_quit(w->loop);
}

gboolean
cli_follow_job(LcvmCli *cli, const char *path, GError **error)
{
  JobWatch w = { .cli = cli, .loop = g_main_loop_new(NULL, FALSE) };
  guint sub_props = cli_properties_watch(cli, path, LCVM_IFACE_JOB, on_changed, &w);
  guint sub_fin =
      g_dbus_connection_signal_subscribe(cli->bus, LCVM_BUS_NAME, LCVM_IFACE_JOB, "Finished", path,
                                         NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_finished, &w, NULL);
  g_autoptr(GError) local = NULL;
  g_autoptr(GVariant) props = cli_properties(cli, path, LCVM_IFACE_JOB, &local);
  if (props != NULL)
    apply_props(&w, props);
  if (props == NULL && !w.done) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "lost the job %s: %s", path, local->message);
  } else if (!w.done) {
    g_main_loop_run(w.loop);
  }
  cli_properties_unwatch(cli, sub_props);
  g_dbus_connection_signal_unsubscribe(cli->bus, sub_fin);
  g_main_loop_unref(w.loop);
  gboolean ok = w.done && w.ok;
  if (w.done && !w.ok)
    g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_FAILED, w.result);
  else if (ok && !cli->json && w.result && *w.result && g_strcmp0(w.result, w.last_message) != 0)
    g_printerr("  %s\n", w.result);
  g_free(w.result);
  g_free(w.last_message);
  return ok;
}
