/* SPDX-License-Identifier: MIT */
/* The frontend's typed client (frontend/cli-client.c): its method table names every method of
 * dbus/io.lium.Cvm1.xml once, with the XML's signatures; and every typed function, called on a
 * private bus (GTestDBus) against a fake helper that exports the XML's interfaces (so GDBus
 * itself refuses arguments or replies of another type), sends exactly the arguments the
 * frontend always sent, follows Jobs to their result, and maps the helper's errors. */
#include "api-xml.h"
#include "cli-client.h"
#include "lcvm-error.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-names.h"
#include "lcvm-vm-object.h"

#define JOB_OK     "/io/lium/Cvm1/jobs/1"
#define JOB_FAILED "/io/lium/Cvm1/jobs/2"
/* Jobs not done when read: one ends by PropertiesChanged (Done), the other by Finished. */
#define JOB_CHANGED  "/io/lium/Cvm1/jobs/3"
#define JOB_FINISHED "/io/lium/Cvm1/jobs/4"

/* "(" + the signatures of the args + ")", as GDBus checks a call or a reply. */
static char *
args_type(GDBusArgInfo **args)
{
  GString *type = g_string_new("(");
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_string_append(type, args[i]->signature);
  g_string_append_c(type, ')');
  return g_string_free(type, FALSE);
}

/* ---- the table ---- */

static void
test_format_type(void)
{
  const struct {
    const char *format, *type;
  } cases[] = {
    { "()", "()" },
    { "(^ast)", "(ast)" },
    { "(^as@a(ss))", "(asa(ss))" },
    { "(@a{sv})", "(a{sv})" },
    { "(^ao)", "(ao)" },
    { "(&s&o)", "(so)" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *type = cli_client_format_type(cases[i].format);
    g_assert_cmpstr(type, ==, cases[i].type);
  }
}

static void
test_table_matches_xml(void)
{
  g_autoptr(GDBusNodeInfo) node = api_xml_node();
  guint rows = 0;
  for (const CliMethod *m = cli_client_methods(); m->iface != NULL; m++, rows++) {
    GDBusInterfaceInfo *iface = g_dbus_node_info_lookup_interface(node, m->iface);
    GDBusMethodInfo *method = iface ? g_dbus_interface_info_lookup_method(iface, m->name) : NULL;
    if (method == NULL)
      g_error("the client calls %s.%s, which the XML does not have", m->iface, m->name);
    g_autofree char *in = cli_client_format_type(m->in);
    g_autofree char *out = cli_client_format_type(m->out);
    g_assert_true(g_variant_type_string_is_valid(in) && g_variant_type_string_is_valid(out));
    g_autofree char *xml_in = args_type(method->in_args);
    g_autofree char *xml_out = args_type(method->out_args);
    if (!g_str_equal(in, xml_in) || !g_str_equal(out, xml_out))
      g_error("%s.%s: the client sends %s and expects %s; the XML says %s and %s", m->iface,
              m->name, in, out, xml_in, xml_out);
    for (const CliMethod *other = cli_client_methods(); other != m; other++)
      if (g_str_equal(other->iface, m->iface) && g_str_equal(other->name, m->name))
        g_error("%s.%s has two rows", m->iface, m->name);
  }
  /* …and every method of the XML has its row (a new method gets its client function too). */
  guint methods = 0;
  for (guint i = 0; node->interfaces[i] != NULL; i++)
    for (guint j = 0; node->interfaces[i]->methods && node->interfaces[i]->methods[j]; j++)
      methods++;
  g_assert_cmpuint(rows, ==, methods);
}

/* ---- a fake helper on a private bus ---- */

typedef struct {
  GDBusNodeInfo *node;
  const char *address;
  GMainContext *context;
  GDBusConnection *bus;
  GMainLoop *loop;
  GMutex lock;
  GCond cond;
  gboolean ready;
  GPtrArray *calls; /* "Method(args)" as g_variant_print shows them */
} FakeHelper;

/* A value of type: empty arrays, "text" strings, job as the object path. */
static GVariant *
reply_value(const GVariantType *type, const char *job)
{
  if (g_variant_type_is_tuple(type)) {
    g_autoptr(GPtrArray) items = g_ptr_array_new();
    for (const GVariantType *t = g_variant_type_first(type); t; t = g_variant_type_next(t))
      g_ptr_array_add(items, reply_value(t, job));
    return g_variant_new_tuple((GVariant **)items->pdata, items->len);
  }
  if (g_variant_type_is_array(type))
    return g_variant_new_array(g_variant_type_element(type), NULL, 0);
  if (g_variant_type_equal(type, G_VARIANT_TYPE_OBJECT_PATH))
    return g_variant_new_object_path(job);
  if (g_variant_type_equal(type, G_VARIANT_TYPE_STRING))
    return g_variant_new_string("text");
  g_error("the fake helper cannot answer a %.*s: teach reply_value",
          (int)g_variant_type_get_string_length(type), g_variant_type_peek_string(type));
}

static void
on_method(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
          const char *method, GVariant *params, GDBusMethodInvocation *inv, gpointer data)
{
  FakeHelper *f = data;
  g_autofree char *args = g_variant_print(params, TRUE);
  g_mutex_lock(&f->lock);
  g_ptr_array_add(f->calls, g_strconcat(method, args, NULL));
  g_mutex_unlock(&f->lock);
  /* A first argument "missing" is a VM the helper does not know; "fail" gets a failing Job,
   * "changed" and "finished" ones that are still running. */
  const char *first = NULL;
  const GVariantType *first_type = g_variant_type_first(g_variant_get_type(params));
  if (first_type != NULL && g_variant_type_equal(first_type, G_VARIANT_TYPE_STRING))
    g_variant_get_child(params, 0, "&s", &first);
  if (g_strcmp0(first, "missing") == 0) {
    g_dbus_method_invocation_return_dbus_error(inv, "io.lium.Cvm1.Error.NotFound",
                                               "VM missing is not defined");
    return;
  }
  const GDBusMethodInfo *info = g_dbus_method_invocation_get_method_info(inv);
  g_autofree char *out = args_type(info->out_args);
  const char *job = g_strcmp0(first, "fail") == 0       ? JOB_FAILED
                    : g_strcmp0(first, "changed") == 0  ? JOB_CHANGED
                    : g_strcmp0(first, "finished") == 0 ? JOB_FINISHED
                                                        : JOB_OK;
  g_dbus_method_invocation_return_value(inv, reply_value(G_VARIANT_TYPE(out), job));
}

/* PropertiesChanged of the Job at path, as the helper's skeleton sends it: one signal per
 * batch of changes (changed: an a{sv} in GVariant text format). */
static void
emit_changed(GDBusConnection *bus, const char *path, const char *changed)
{
  g_dbus_connection_emit_signal(
      bus, NULL, path, "org.freedesktop.DBus.Properties", "PropertiesChanged",
      g_variant_new("(s@a{sv}as)", LCVM_IFACE_JOB, g_variant_new_parsed(changed), NULL), NULL);
}

/* After the client read a running Job's properties: one more step, then its end. */
static gboolean
end_changed_job(gpointer data)
{
  FakeHelper *f = data;
  emit_changed(f->bus, JOB_CHANGED, "{'Message': <'second step'>}");
  emit_changed(f->bus, JOB_CHANGED,
               "{'Done': <true>, 'Ok': <true>, 'Result': <'ended by its properties'>}");
  return G_SOURCE_REMOVE;
}

static gboolean
end_finished_job(gpointer data)
{
  FakeHelper *f = data;
  emit_changed(f->bus, JOB_FINISHED, "{'Message': <'second step'>}");
  g_dbus_connection_emit_signal(f->bus, NULL, JOB_FINISHED, LCVM_IFACE_JOB, "Finished",
                                g_variant_new("(bs)", FALSE, "ended by Finished"), NULL);
  return G_SOURCE_REMOVE;
}

static GVariant *
on_job_property(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
                const char *property, GError **error, gpointer data)
{
  FakeHelper *f = data;
  gboolean later = g_str_equal(path, JOB_CHANGED) || g_str_equal(path, JOB_FINISHED);
  gboolean ok = g_str_equal(path, JOB_OK);
  if (later && g_str_equal(property, "Done")) {
    /* Sent after this GetAll's reply, from the fake helper's own loop. */
    GSource *idle = g_idle_source_new();
    g_source_set_callback(idle, g_str_equal(path, JOB_CHANGED) ? end_changed_job : end_finished_job,
                          f, NULL);
    g_source_attach(idle, f->context);
    g_source_unref(idle);
    return g_variant_new_boolean(FALSE);
  }
  if (later)
    return g_str_equal(property, "Message")    ? g_variant_new_string("first step")
           : g_str_equal(property, "Ok")       ? g_variant_new_boolean(FALSE)
           : g_str_equal(property, "Progress") ? g_variant_new_double(0.5)
                                               : g_variant_new_string("");
  if (g_str_equal(property, "Operation"))
    return g_variant_new_string("Test");
  if (g_str_equal(property, "Progress"))
    return g_variant_new_double(1.0);
  if (g_str_equal(property, "Message"))
    return g_variant_new_string("working");
  if (g_str_equal(property, "Done"))
    return g_variant_new_boolean(TRUE);
  if (g_str_equal(property, "Ok"))
    return g_variant_new_boolean(ok);
  return g_variant_new_string(ok ? "all done" : "it broke");
}

static gpointer
fake_helper_run(gpointer data)
{
  FakeHelper *f = data;
  g_main_context_push_thread_default(f->context);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) bus =
      g_dbus_connection_new_for_address_sync(f->address,
                                             G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                 G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                             NULL, NULL, &error);
  g_assert_no_error(error);
  const GDBusInterfaceVTable methods = { on_method, NULL, NULL, { 0 } };
  const GDBusInterfaceVTable job = { NULL, on_job_property, NULL, { 0 } };
  const char *managed[] = { LCVM_IFACE_HOST, LCVM_IFACE_MANAGER };
  for (guint i = 0; i < G_N_ELEMENTS(managed); i++)
    g_assert_cmpuint(
        g_dbus_connection_register_object(bus, LCVM_OBJECT_PATH,
                                          g_dbus_node_info_lookup_interface(f->node, managed[i]),
                                          &methods, f, NULL, &error),
        !=, 0);
  GDBusInterfaceInfo *job_iface = g_dbus_node_info_lookup_interface(f->node, LCVM_IFACE_JOB);
  g_assert_cmpuint(g_dbus_connection_register_object(bus, JOB_OK, job_iface, &job, f, NULL, &error),
                   !=, 0);
  g_assert_cmpuint(
      g_dbus_connection_register_object(bus, JOB_FAILED, job_iface, &job, f, NULL, &error), !=, 0);
  g_assert_cmpuint(
      g_dbus_connection_register_object(bus, JOB_CHANGED, job_iface, &job, f, NULL, &error), !=, 0);
  g_assert_cmpuint(
      g_dbus_connection_register_object(bus, JOB_FINISHED, job_iface, &job, f, NULL, &error), !=,
      0);
  f->bus = bus;
  g_autoptr(GVariant) owned = g_dbus_connection_call_sync(
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
      g_variant_new("(su)", LCVM_BUS_NAME, 4 /* DO_NOT_QUEUE */), G_VARIANT_TYPE("(u)"),
      G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error(error);
  g_mutex_lock(&f->lock);
  f->ready = TRUE;
  g_cond_signal(&f->cond);
  g_mutex_unlock(&f->lock);
  g_main_loop_run(f->loop);
  g_dbus_connection_close_sync(bus, NULL, NULL);
  g_main_context_pop_thread_default(f->context);
  return NULL;
}

/* The calls the fake helper saw since the last look, joined by "; ". */
static char *
take_calls(FakeHelper *f)
{
  g_mutex_lock(&f->lock);
  g_ptr_array_add(f->calls, NULL);
  char *seen = g_strjoinv("; ", (char **)f->calls->pdata);
  g_ptr_array_set_size(f->calls, 0);
  g_mutex_unlock(&f->lock);
  return seen;
}

static void
assert_calls(FakeHelper *f, const char *expected)
{
  g_autofree char *seen = take_calls(f);
  g_assert_cmpstr(seen, ==, expected);
}

static void
test_calls_on_a_bus(void)
{
  g_autofree char *daemon = g_find_program_in_path("dbus-daemon");
  if (daemon == NULL) {
    g_test_skip("no dbus-daemon (package dbus-daemon)");
    return;
  }
  g_autoptr(GTestDBus) test_bus = g_test_dbus_new(G_TEST_DBUS_NONE);
  g_test_dbus_up(test_bus);
  g_autoptr(GError) error = NULL;
  LcvmCli cli = { .json = FALSE, .no_ask_password = TRUE, .verb = "test" };
  cli.bus =
      g_dbus_connection_new_for_address_sync(g_test_dbus_get_bus_address(test_bus),
                                             G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                 G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                             NULL, NULL, &error);
  g_assert_no_error(error);

  /* No helper on the bus yet: the hint says what is missing. */
  g_autoptr(GVariant) none = cli_host_get_info(&cli, &error);
  g_assert_null(none);
  g_assert_nonnull(strstr(error->message, "the lium-cvm helper (io.lium.Cvm1) is not running"));
  g_clear_error(&error);

  FakeHelper f = { .node = api_xml_node(),
                   .address = g_test_dbus_get_bus_address(test_bus),
                   .context = g_main_context_new(),
                   .calls = g_ptr_array_new_with_free_func(g_free) };
  f.loop = g_main_loop_new(f.context, FALSE);
  g_mutex_init(&f.lock);
  g_cond_init(&f.cond);
  GThread *thread = g_thread_new("fake-helper", fake_helper_run, &f);
  g_mutex_lock(&f.lock);
  while (!f.ready)
    g_cond_wait(&f.cond, &f.lock);
  g_mutex_unlock(&f.lock);

  /* call: typed arguments out, typed replies back. */
  g_autoptr(GVariant) info = cli_host_get_info(&cli, &error);
  g_assert_no_error(error);
  g_assert_true(g_variant_is_of_type(info, G_VARIANT_TYPE_VARDICT));
  const char *modules[] = { "vfio", "vfio_pci", NULL };
  g_assert_true(cli_host_load_modules(&cli, modules, TRUE, &error));
  g_assert_true(cli_host_load_modules(&cli, modules, FALSE, &error));
  g_assert_true(cli_host_set_dma_entry_limit(&cli, 16777216, TRUE, &error));
  g_autoptr(GVariant) mode = cli_host_query_gpu_mode(&cli, "0000:19:00.0", &error);
  g_assert_nonnull(mode);
  g_autoptr(GVariant) status = cli_host_key_provider_status(&cli, &error);
  g_assert_nonnull(status);
  g_autofree char *logs = cli_host_key_provider_logs(&cli, 50, &error);
  g_assert_cmpstr(logs, ==, "text");
  g_assert_no_error(error);
  assert_calls(&f, "GetInfo(); LoadModules(['vfio', 'vfio_pci'], uint64 1); "
                   "LoadModules(['vfio', 'vfio_pci'], uint64 0); "
                   "SetDmaEntryLimit(uint64 16777216, uint64 1); "
                   "QueryGpuMode('0000:19:00.0',); KeyProviderStatus(); "
                   "KeyProviderLogs(uint32 50,)");

  g_auto(GStrv) argv = NULL;
  g_autoptr(GVariant) refusals = NULL;
  g_assert_true(cli_manager_dry_run(&cli, "vm1", &argv, &refusals, &error));
  g_assert_nonnull(argv);
  g_assert_true(g_variant_is_of_type(refusals, G_VARIANT_TYPE("a(ss)")));
  g_autofree char *vm = cli_manager_start_vm(&cli, "vm1", &error);
  g_assert_cmpstr(vm, ==, JOB_OK);
  g_assert_true(cli_manager_remove_vm(&cli, "vm1", &error));
  g_auto(GStrv) vms = cli_manager_list_vms(&cli, &error);
  g_assert_nonnull(vms);
  g_assert_no_error(error);
  assert_calls(&f, "DryRun('vm1',); StartVm('vm1', uint64 0); RemoveVm('vm1', uint64 0); "
                   "ListVms()");

  /* call and follow the Job: the Job's Result is the outcome. */
  const char *slots[] = { "0000:19:00.0", NULL };
  g_assert_true(cli_host_bind_vfio(&cli, slots, &error));
  g_assert_true(cli_host_unbind_vfio(&cli, slots, &error));
  g_assert_true(cli_host_set_gpu_mode(&cli, "0000:19:00.0", "on", "", &error));
  g_assert_true(cli_host_reset_gpu(&cli, "0000:19:00.0", LCVM_RESET_GPU_BUS, &error));
  g_assert_true(cli_host_start_key_provider(&cli, &error));
  g_assert_true(cli_host_build_key_provider(&cli, &error));
  g_assert_true(cli_host_stop_key_provider(&cli, &error));
  g_assert_true(cli_manager_stop_vm(&cli, "vm1", 5, LCVM_STOP_FORCE, &error));
  g_assert_no_error(error);
  assert_calls(&f, "BindVfio(['0000:19:00.0'], uint64 0); "
                   "UnbindVfio(['0000:19:00.0'], uint64 0); "
                   "SetGpuMode('0000:19:00.0', 'on', '', uint64 0); "
                   "ResetGpu('0000:19:00.0', uint64 1); StartKeyProvider(uint64 0,); "
                   "BuildKeyProvider(uint64 0,); StopKeyProvider(uint64 0,); "
                   "StopVm('vm1', uint32 5, uint64 1)");
  /* A Job still running when read ends by its signals: PropertiesChanged (Done, Ok, Result)
   * or Finished (ok, message). */
  g_assert_true(cli_manager_stop_vm(&cli, "changed", 0, 0, &error));
  g_assert_no_error(error);
  g_assert_false(cli_manager_stop_vm(&cli, "finished", 0, 0, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_cmpstr(error->message, ==, "ended by Finished");
  g_clear_error(&error);
  g_assert_false(cli_manager_stop_vm(&cli, "fail", 0, 0, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_cmpstr(error->message, ==, "it broke");
  g_clear_error(&error);

  /* The helper's errors arrive as LcvmError, without the D-Bus name in the message. */
  g_assert_false(cli_manager_remove_vm(&cli, "missing", &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND);
  g_assert_cmpstr(error->message, ==, "VM missing is not defined");
  g_clear_error(&error);
  g_assert_false(cli_manager_stop_vm(&cli, "missing", 0, 0, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND);
  g_clear_error(&error);

  /* properties */
  g_autoptr(GVariant) job = cli_properties(&cli, JOB_OK, LCVM_IFACE_JOB, &error);
  g_assert_no_error(error);
  gboolean done = FALSE;
  const char *result = NULL;
  g_assert_true(g_variant_lookup(job, "Done", "b", &done) && done);
  g_assert_true(g_variant_lookup(job, "Result", "&s", &result));
  g_assert_cmpstr(result, ==, "all done");
  g_autoptr(GVariant) gone = cli_properties(&cli, "/io/lium/Cvm1/jobs/9", LCVM_IFACE_JOB, &error);
  g_assert_null(gone);
  g_assert_nonnull(error);
  g_assert_false(g_dbus_error_is_remote_error(error)); /* stripped */
  g_clear_error(&error);

  g_main_loop_quit(f.loop);
  g_thread_join(thread);
  g_main_loop_unref(f.loop);
  g_main_context_unref(f.context);
  g_ptr_array_unref(f.calls);
  g_dbus_node_info_unref(f.node);
  g_mutex_clear(&f.lock);
  g_cond_clear(&f.cond);
  g_dbus_connection_close_sync(cli.bus, NULL, NULL);
  g_clear_object(&cli.bus);
  g_test_dbus_down(test_bus);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/client/format-type", test_format_type);
  g_test_add_func("/client/table-matches-xml", test_table_matches_xml);
  g_test_add_func("/client/calls-on-a-bus", test_calls_on_a_bus);
  return g_test_run();
}
