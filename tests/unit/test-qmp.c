/* SPDX-License-Identifier: MIT */
/* The QMP client against a scripted QEMU: the greeting and capabilities handshake, events
 * skipped on the way to a reply, QEMU's errors passed on, and a silent peer timing out. */
#include "helper-qmp.h"
#include "lcvm-error.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

typedef struct {
  GSocket *listener;
  gboolean greet;
} Server;

static void
say(GSocket *s, const char *line)
{
  g_socket_send(s, line, strlen(line), NULL, NULL);
}

/* Answers each command line by its name, like QEMU does. */
static gpointer
serve(gpointer data)
{
  Server *srv = data;
  g_autoptr(GSocket) s = g_socket_accept(srv->listener, NULL, NULL);
  if (s == NULL || !srv->greet)
    return g_steal_pointer(&s);
  say(s, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n");
  char buf[4096];
  gssize n;
  while ((n = g_socket_receive(s, buf, sizeof buf - 1, NULL, NULL)) > 0) {
    buf[n] = '\0';
    if (strstr(buf, "qmp_capabilities"))
      say(s, "{\"return\": {}}\n");
    else if (strstr(buf, "query-status"))
      say(s, "{\"event\": \"RESUME\", \"data\": {}}\n{\"return\": {\"status\": \"running\", "
             "\"running\": true}}\n");
    else
      say(s, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"not now\"}}\n");
  }
  return NULL;
}

static char *
start_server(Server *srv, GThread **thread)
{
  g_autofree char *dir = g_dir_make_tmp("lcvm-qmp-XXXXXX", NULL);
  char *path = g_build_filename(dir, "qmp.sock", NULL);
  srv->listener = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
  g_assert_true(g_socket_bind(srv->listener, addr, FALSE, NULL));
  g_assert_true(g_socket_listen(srv->listener, NULL));
  *thread = g_thread_new("qmp", serve, srv);
  return path;
}

static void
stop_server(Server *srv, GThread *thread, char *path)
{
  GSocket *left = g_thread_join(thread);
  g_clear_object(&left);
  g_object_unref(srv->listener);
  g_unlink(path);
  g_autofree char *dir = g_path_get_dirname(path);
  g_rmdir(dir);
  g_free(path);
}

static void
test_handshake_then_status_skipping_events(void)
{
  Server srv = { NULL, TRUE };
  GThread *thread = NULL;
  char *path = start_server(&srv, &thread);
  g_autoptr(GError) error = NULL;
  HelperQmp *qmp = helper_qmp_connect(path, 5000, &error);
  g_assert_no_error(error);
  g_autofree char *status = helper_qmp_query_status(qmp, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(status, ==, "running");
  g_autoptr(JsonNode) ret = helper_qmp_execute(qmp, "system_powerdown", &error);
  g_assert_null(ret);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "not now"));
  helper_qmp_free(qmp);
  stop_server(&srv, thread, path);
}

static void
test_a_silent_peer_times_out(void)
{
  Server srv = { NULL, FALSE };
  GThread *thread = NULL;
  char *path = start_server(&srv, &thread);
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time();
  g_assert_null(helper_qmp_connect(path, 200, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
  stop_server(&srv, thread, path);
}

static void
test_no_socket_is_an_error(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(helper_qmp_connect("/nonexistent/qmp.sock", 100, &error));
  g_assert_nonnull(strstr(error->message, "cannot connect"));
}

/* Found by fuzzing: an empty line gave a NULL root (a critical), a line of two values leaked the
 * second, an "error" that is not an object was a critical, and its "desc" reached a GError raw. */
static void
test_hostile_lines_are_refused_or_answered_safely(void)
{
  static const char *const refused[] = {
    "", "  ", "[]", "\"x\"", "{}{}", "{\"return\": {}} []", "{\"a\": \"\\udc80x\"}"
  };
  for (guint i = 0; i < G_N_ELEMENTS(refused); i++)
    g_assert_null(helper_qmp_parse_line(refused[i]));

  static const char *const errors[] = { "{\"error\": 7}", "{\"error\": {\"desc\": [1]}}",
                                        "{\"error\": {\"desc\": \"\\u001b]0;x\\u0007\"}}" };
  for (guint i = 0; i < G_N_ELEMENTS(errors); i++) {
    g_autoptr(JsonNode) line = helper_qmp_parse_line(errors[i]);
    g_assert_nonnull(line);
    g_autoptr(GError) error = NULL;
    JsonNode *ret = NULL;
    g_assert_cmpint(
        helper_qmp_classify(json_node_get_object(line), "qmp.sock", "query-status", &ret, &error),
        ==, HELPER_QMP_ERROR);
    g_assert_null(ret);
    g_assert_true(g_utf8_validate(error->message, -1, NULL));
    g_assert_null(strchr(error->message, '\x1b'));
  }

  g_autoptr(JsonNode) event = helper_qmp_parse_line("{\"event\": \"RESUME\"}");
  JsonNode *ret = NULL;
  g_assert_cmpint(helper_qmp_classify(json_node_get_object(event), "s", "c", &ret, NULL), ==,
                  HELPER_QMP_OTHER);
  static const char *const no_status[] = { "{\"return\": []}", "{\"return\": {\"status\": 1}}",
                                           "{\"return\": null}" };
  for (guint i = 0; i < G_N_ELEMENTS(no_status); i++) {
    g_autoptr(JsonNode) line = helper_qmp_parse_line(no_status[i]);
    g_autoptr(JsonNode) value = NULL;
    g_assert_cmpint(helper_qmp_classify(json_node_get_object(line), "s", "c", &value, NULL), ==,
                    HELPER_QMP_RETURN);
    g_assert_null(helper_qmp_status_of(value));
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/qmp/handshake_then_status_skipping_events",
                  test_handshake_then_status_skipping_events);
  g_test_add_func("/qmp/a_silent_peer_times_out", test_a_silent_peer_times_out);
  g_test_add_func("/qmp/no_socket_is_an_error", test_no_socket_is_an_error);
  g_test_add_func("/qmp/hostile_lines_are_refused_or_answered_safely",
                  test_hostile_lines_are_refused_or_answered_safely);
  return g_test_run();
}
