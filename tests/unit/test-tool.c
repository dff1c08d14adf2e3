/* SPDX-License-Identifier: MIT */
/* The trusted-tool runner (helper-tool.h): the tool gets exactly the environment, cwd and stdin
 * it is given and a session of its own; exit status, signal and both streams come back; output
 * is bounded; merged output arrives line by line; at the timeout its whole session dies,
 * grandchildren included. Runs as whoever runs the tests (nothing here needs root). */
#include "capture-check.h"
#include "helper-tool.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static gboolean
run_tool(const char *const *argv, const HelperCaptureOptions *capture, gboolean merge,
         HelperCaptured *run)
{
  const char *const env[] = { "A=1", NULL };
  HelperTool tool = { .argv = argv, .envp = env, .cwd = "/", .merge_stderr = merge };
  g_autoptr(GError) error = NULL;
  gboolean ok = helper_tool_run(&tool, capture, run, &error);
  g_assert_no_error(error);
  return ok;
}

static void
run_script(const char *script, guint timeout_ms, gsize max, HelperCaptured *run)
{
  const char *argv[] = { "/bin/sh", "-c", script, NULL };
  HelperCaptureOptions capture = { .timeout_ms = timeout_ms, .max_output = max };
  g_assert_true(run_tool(argv, &capture, FALSE, run));
}

static void
test_gets_only_the_environment_it_is_given(void)
{
  const char *argv[] = { "/usr/bin/env", NULL };
  HelperCaptureOptions capture = { .timeout_ms = 60000, .max_output = 4096 };
  g_auto(HelperCaptured) run = { 0 };
  g_assert_true(run_tool(argv, &capture, FALSE, &run));
  g_assert_true(run.exited);
  g_assert_cmpint(run.status, ==, 0);
  g_assert_cmpstr(run.out->str, ==, "A=1\n");
}

/* Field 6 of /proc/PID/stat is the session: a session leader's is its own pid. */
static void
test_runs_in_its_own_session_from_cwd_with_stdin_empty(void)
{
  g_auto(HelperCaptured) run = { 0 };
  run_script("echo $$ $(cut -d' ' -f6 /proc/$$/stat); pwd; cat; echo stdin-ended; exit 7", 60000,
             4096, &run);
  g_assert_true(run.exited);
  g_assert_cmpint(run.status, ==, 7);
  g_auto(GStrv) lines = g_strsplit(run.out->str, "\n", -1);
  g_auto(GStrv) ids = g_strsplit(lines[0], " ", -1);
  g_assert_cmpstr(ids[0], ==, ids[1]);
  g_assert_cmpstr(lines[1], ==, "/");
  g_assert_cmpstr(lines[2], ==, "stdin-ended");
}

static void
test_reports_both_streams_and_the_signal(void)
{
  g_auto(HelperCaptured) run = { 0 };
  run_script("echo out; echo err >&2; kill -TERM $$", 60000, 4096, &run);
  g_assert_false(run.timed_out);
  g_assert_false(run.exited);
  g_assert_cmpint(run.signal, ==, SIGTERM);
  g_assert_cmpstr(run.out->str, ==, "out\n");
  g_assert_cmpstr(run.err->str, ==, "err\n");
}

static void
test_keeps_only_the_last_bytes_of_each_stream(void)
{
  g_auto(HelperCaptured) run = { 0 };
  run_script("head -c 300000 /dev/zero | tr '\\0' a; printf END; head -c 5000 /dev/zero >&2", 60000,
             1000, &run);
  g_assert_true(run.exited);
  g_assert_true(run.out_cut && run.err_cut);
  g_assert_cmpuint(run.out->len, ==, 1000);
  g_assert_cmpuint(run.err->len, ==, 1000);
  g_assert_true(g_str_has_suffix(run.out->str, "aaaEND"));
}

static void
collect_line(const char *line, gpointer data)
{
  g_ptr_array_add(data, g_strdup(line));
}

static void
test_merged_output_arrives_line_by_line(void)
{
  const char *argv[] = { "/bin/sh", "-c", "printf 'one\\ntwo\\n'; echo three >&2; printf four",
                         NULL };
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
  HelperCaptureOptions capture = {
    .timeout_ms = 60000, .max_output = 4096, .on_line = collect_line, .line_data = lines
  };
  g_auto(HelperCaptured) run = { 0 };
  g_assert_true(run_tool(argv, &capture, TRUE, &run));
  g_assert_cmpuint(lines->len, ==, 4);
  g_assert_cmpstr(lines->pdata[0], ==, "one");
  g_assert_cmpstr(lines->pdata[2], ==, "three");
  g_assert_cmpstr(lines->pdata[3], ==, "four");
  g_assert_cmpstr(run.err->str, ==, "");
}

/* At the timeout the child and what it forked are killed (capture-check.h). */
static void
test_timeout_kills_the_whole_session(void)
{
  become_subreaper(TRUE);
  g_auto(HelperCaptured) run = { 0 };
  run_script(GRANDCHILD_SCRIPT, 500, 4096, &run);
  assert_killed_with_grandchild(&run);
  become_subreaper(FALSE);
}

static void
test_a_missing_tool_is_an_error(void)
{
  const char *argv[] = { "/nonexistent/lcvm-tool", NULL };
  HelperTool tool = { .argv = argv, .envp = (const char *const[]){ NULL }, .cwd = "/" };
  HelperCaptureOptions capture = { .timeout_ms = 1000, .max_output = 16 };
  g_auto(HelperCaptured) run = { 0 };
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_tool_run(&tool, &capture, &run, &error));
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, "/nonexistent/lcvm-tool"));
  g_assert_null(run.out);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/tool/gets-only-the-environment-it-is-given",
                  test_gets_only_the_environment_it_is_given);
  g_test_add_func("/tool/runs-in-its-own-session-from-cwd-with-stdin-empty",
                  test_runs_in_its_own_session_from_cwd_with_stdin_empty);
  g_test_add_func("/tool/reports-both-streams-and-the-signal",
                  test_reports_both_streams_and_the_signal);
  g_test_add_func("/tool/keeps-only-the-last-bytes-of-each-stream",
                  test_keeps_only_the_last_bytes_of_each_stream);
  g_test_add_func("/tool/merged-output-arrives-line-by-line",
                  test_merged_output_arrives_line_by_line);
  g_test_add_func("/tool/timeout-kills-the-whole-session", test_timeout_kills_the_whole_session);
  g_test_add_func("/tool/a-missing-tool-is-an-error", test_a_missing_tool_is_an_error);
  return g_test_run();
}
