/* SPDX-License-Identifier: MIT */
/* The guest agent client: its status-line parser against hostile replies, and the whole
 * exchange against a fake agent on the [testing] unix-socket seam — the exact request on the
 * wire, a 2xx accepted, anything else (refusal, garbage, silence, no agent) a clear error
 * within the deadline. */
#include "helper-guest-agent.h"
#include "lcvm-error.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char REQUEST[] = "POST /api/Shutdown?json HTTP/1.1\r\n"
                              "Host: localhost\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: 2\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "{}";

static gboolean
parse(const char *text, guint *code)
{
  return helper_guest_agent_parse_status(text, strlen(text), code);
}

static void
test_parse_accepts_status_lines(void)
{
  guint code = 0;
  g_assert_true(parse("HTTP/1.1 200 OK\r\n", &code));
  g_assert_cmpuint(code, ==, 200);
  g_assert_true(parse("HTTP/1.0 204\r\nX: y\r\n", &code));
  g_assert_cmpuint(code, ==, 204);
  g_assert_true(parse("HTTP/1.1 500 Internal \x01\xff error\n", &code));
  g_assert_cmpuint(code, ==, 500);
}

static void
test_parse_refuses_hostile_replies(void)
{
  static const char *const bad[] = {
    "",
    "HTTP/1.1 200 OK",         /* no end of line yet */
    "HTTP/1.1 20\r\n",         /* short code */
    "HTTP/1.1 2000 OK\r\n",    /* long code */
    "HTTP/1.1 -20 OK\r\n",     /* sign */
    "HTTP/1.1  200 OK\r\n",    /* two spaces */
    "HTTP/2 200\r\n",          /* not HTTP/1.x */
    "http/1.1 200 OK\r\n",     /* case */
    "HTTP/1.1 099 Low\r\n",    /* below 100 */
    "HTTP/1.1 600 High\r\n",   /* above 599 */
    "HTTP/1.1 200\r\r\n",      /* junk before the end of line */
    "HTTP/1.1 2a0 OK\r\n",     /* not a number */
    "\r\nHTTP/1.1 200 OK\r\n", /* not the first line */
    "HTTP/1.x 200 OK\r\n",     /* minor version */
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    guint code = 12345;
    g_assert_false(parse(bad[i], &code));
    g_assert_cmpuint(code, ==, 12345);
  }
  /* A NUL where the code is, and a line that is cut by the length given. */
  guint code = 0;
  g_assert_false(helper_guest_agent_parse_status("HTTP/1.1 2\0000 OK\r\n", 17, &code));
  g_assert_false(helper_guest_agent_parse_status("HTTP/1.1 200 OK\r\n", 12, &code));
}

/* ---- a fake agent ---- */

typedef struct {
  char *dir;
  int listener;
  const char *reply; /* NULL: accept, read, say nothing until the client gives up */
  GString *request;
  GThread *thread;
} FakeAgent;

static gpointer
agent_thread(gpointer data)
{
  FakeAgent *a = data;
  int fd = accept(a->listener, NULL, NULL);
  if (fd < 0)
    return NULL;
  char buf[1024];
  ssize_t n;
  /* The request ends with its two-byte body. */
  while (!g_str_has_suffix(a->request->str, "\r\n\r\n{}") && (n = read(fd, buf, sizeof buf)) > 0)
    g_string_append_len(a->request, buf, n);
  if (a->reply != NULL && write(fd, a->reply, strlen(a->reply)) < 0)
    g_warning("fake agent: %s", g_strerror(errno));
  else if (a->reply == NULL)
    while (read(fd, buf, sizeof buf) > 0)
      ;
  close(fd);
  return NULL;
}

static FakeAgent *
agent_new(guint cid, const char *reply)
{
  FakeAgent *a = g_new0(FakeAgent, 1);
  a->dir = g_dir_make_tmp("lcvm-agent-XXXXXX", NULL);
  a->reply = reply;
  a->request = g_string_new(NULL);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  g_snprintf(addr.sun_path, sizeof addr.sun_path, "%s/%u.sock", a->dir, cid);
  a->listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint(bind(a->listener, (struct sockaddr *)&addr, sizeof addr), ==, 0);
  g_assert_cmpint(listen(a->listener, 1), ==, 0);
  a->thread = g_thread_new("agent", agent_thread, a);
  return a;
}

static void
agent_free(FakeAgent *a)
{
  shutdown(a->listener, SHUT_RDWR);
  if (a->thread != NULL)
    g_thread_join(a->thread);
  close(a->listener);
  GDir *d = g_dir_open(a->dir, 0, NULL);
  for (const char *f = d ? g_dir_read_name(d) : NULL; f != NULL; f = g_dir_read_name(d)) {
    g_autofree char *p = g_build_filename(a->dir, f, NULL);
    g_unlink(p);
  }
  if (d != NULL)
    g_dir_close(d);
  g_rmdir(a->dir);
  g_free(a->dir);
  g_string_free(a->request, TRUE);
  g_free(a);
}

static LcvmConfig *
config_for(const char *dir)
{
  LcvmConfig *c = lcvm_config_new_default();
  g_free(c->guest_agent_socket_dir);
  c->guest_agent_socket_dir = g_strdup(dir);
  return c;
}

static void
test_shutdown_sends_the_dstack_request_and_takes_a_2xx(void)
{
  FakeAgent *a = agent_new(1001, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{}");
  g_autoptr(LcvmConfig) c = config_for(a->dir);
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_guest_agent_shutdown(c, 1001, 5000, &error));
  g_assert_no_error(error);
  agent_free(a);
}

static void
test_shutdown_request_is_exactly_the_prpc_post(void)
{
  FakeAgent *a = agent_new(1002, "HTTP/1.1 200 OK\r\n\r\n");
  g_autoptr(LcvmConfig) c = config_for(a->dir);
  g_assert_true(helper_guest_agent_shutdown(c, 1002, 5000, NULL));
  g_thread_join(g_steal_pointer(&a->thread));
  g_assert_cmpstr(a->request->str, ==, REQUEST);
  agent_free(a);
}

static void
test_shutdown_refused_names_the_status(void)
{
  FakeAgent *a = agent_new(1003, "HTTP/1.1 404 Not Found\r\n\r\n");
  g_autoptr(LcvmConfig) c = config_for(a->dir);
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_guest_agent_shutdown(c, 1003, 5000, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "refused the Shutdown request (HTTP 404)"));
  agent_free(a);
}

static void
test_shutdown_refuses_garbage(void)
{
  FakeAgent *a = agent_new(1004, "\x1b[2J\x1b]0;owned\x07 SSH-2.0-OpenSSH\r\n");
  g_autoptr(LcvmConfig) c = config_for(a->dir);
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_guest_agent_shutdown(c, 1004, 5000, &error));
  g_assert_nonnull(strstr(error->message, "sent no HTTP status line"));
  agent_free(a);
}

static void
test_silent_agent_times_out(void)
{
  FakeAgent *a = agent_new(1005, NULL);
  g_autoptr(LcvmConfig) c = config_for(a->dir);
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_guest_agent_shutdown(c, 1005, 300, &error));
  g_assert_nonnull(strstr(error->message, "sent no answer in time"));
  agent_free(a);
}

static void
test_no_agent_is_an_error_naming_cid_and_port(void)
{
  g_autofree char *dir = g_dir_make_tmp("lcvm-agent-XXXXXX", NULL);
  g_autoptr(LcvmConfig) c = config_for(dir);
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_guest_agent_shutdown(c, 1006, 1000, &error));
  g_assert_nonnull(strstr(error->message, "(vsock CID 1006, port 8000) does not answer"));
  g_rmdir(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/guest-agent/parse/accepts", test_parse_accepts_status_lines);
  g_test_add_func("/guest-agent/parse/refuses-hostile", test_parse_refuses_hostile_replies);
  g_test_add_func("/guest-agent/shutdown/accepted",
                  test_shutdown_sends_the_dstack_request_and_takes_a_2xx);
  g_test_add_func("/guest-agent/shutdown/request", test_shutdown_request_is_exactly_the_prpc_post);
  g_test_add_func("/guest-agent/shutdown/refused", test_shutdown_refused_names_the_status);
  g_test_add_func("/guest-agent/shutdown/garbage", test_shutdown_refuses_garbage);
  g_test_add_func("/guest-agent/shutdown/silent", test_silent_agent_times_out);
  g_test_add_func("/guest-agent/shutdown/absent", test_no_agent_is_an_error_naming_cid_and_port);
  return g_test_run();
}
