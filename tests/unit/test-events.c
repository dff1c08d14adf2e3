/* SPDX-License-Identifier: MIT */
/* helper_events_parse_line: one line of a VM's event file, written by a bridge the guest may
 * have taken over. Only a JSON object with plain-text "event" and "payload" strings is taken:
 * a terminal escape, a lone surrogate, a second value on the line, an empty line and members of
 * another type are dropped (and never reach a GVariant: G_DEBUG=fatal-criticals would abort). */
#include "helper-bridge.h"
#include "helper-events.h"
#include "helper-runtime-record.h"
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static gboolean
parse(const char *line, char **event, char **payload)
{
  return helper_events_parse_line(line, strlen(line), event, payload);
}

static void
test_a_plain_event_is_taken(void)
{
  g_autofree char *event = NULL, *payload = NULL;
  g_assert_true(parse("{\"time_us\": 1, \"event\": \"boot.progress\", \"payload\": \"caf\xc3\xa9 "
                      "done\"}",
                      &event, &payload));
  g_assert_cmpstr(event, ==, "boot.progress");
  g_assert_cmpstr(payload, ==, "caf\xc3\xa9 done");
}

static void
test_hostile_lines_are_dropped(void)
{
  static const char *const lines[] = {
    "",
    "{\"event\": \"boot.progress\", \"payload\": \"\\u001b]52;c;aGk=\\u0007\"}",
    "{\"event\": \"boot.progress\", \"payload\": \"\\u001b[2J\"}",
    "{\"event\": \"boot.progress\", \"payload\": \"\\u009b2J\"}",
    "{\"event\": \"boot.progress\", \"payload\": \"two\\nlines\"}",
    "{\"event\": \"boot.progress\\u0007\", \"payload\": \"x\"}",
    "{\"event\": \"boot.progress\", \"payload\": \"\\udc80x\"}",
    "{\"event\": \"boot.progress\", \"payload\": \"x\"}{\"event\": \"boot.error\"}",
    "{\"event\": \"boot.progress\", \"payload\": 7}",
    "{\"event\": [\"boot.progress\"], \"payload\": \"x\"}",
    "[\"boot.progress\", \"x\"]",
    "\"boot.progress\"",
    "{\"event\": \"boot.progress\", \"payload\": \"\xff\"}",
  };
  for (guint i = 0; i < G_N_ELEMENTS(lines); i++) {
    char *event = NULL, *payload = NULL;
    if (parse(lines[i], &event, &payload))
      g_error("line %u taken: %s", i, lines[i]);
    g_assert_null(event);
    g_assert_null(payload);
  }
}

static void
count_event(const char *event, const char *payload, gpointer data)
{
  (*(guint *)data)++;
}

/* Issue 19 item 10: a bridge that appends a megabyte at once must not hold the helper's main
 * loop until it is all read: one batch per iteration, the rest from an idle source. */
static void
test_a_large_append_is_read_in_batches_across_iterations(void)
{
  g_autofree char *dir = g_dir_make_tmp("lcvm-events-XXXXXX", NULL);
  g_autoptr(LcvmConfig) config = lcvm_config_new_default();
  g_free(config->runtime_dir);
  config->runtime_dir = g_build_filename(dir, "run", NULL);
  g_autoptr(GError) error = NULL;
  int vm_dir = helper_runtime_dir_open(config, "vm1", TRUE, &error);
  g_assert_no_error(error);
  int fd = openat(vm_dir, LCVM_RUNTIME_EVENTS, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  g_assert_cmpint(fd, >=, 0);
  guint seen = 0;
  HelperEvents *e = helper_events_follow(config, "vm1", count_event, NULL, &seen, &error);
  g_assert_no_error(error);

  g_autoptr(GString) lines = g_string_new(NULL);
  guint total = 0;
  while (lines->len < 4 * HELPER_EVENTS_MAX_BATCH) {
    g_string_append_printf(lines,
                           "{\"event\": \"boot.progress\", \"payload\": \"step %06u of "
                           "a long boot, padded to about two hundred bytes ............"
                           "..........................................................\"}\n",
                           total);
    total++;
  }
  g_assert_cmpint(write(fd, lines->str, lines->len), ==, (gssize)lines->len);
  g_main_context_iteration(NULL, TRUE); /* the inotify wakeup: one batch */
  g_assert_cmpuint(seen, >, 0);
  g_assert_cmpuint(seen, <, total);
  while (seen < total)
    g_main_context_iteration(NULL, TRUE);
  g_assert_cmpuint(seen, ==, total);

  helper_events_free(e);
  close(fd);
  close(vm_dir);
  g_autofree char *events = g_build_filename(config->runtime_dir, "vm1", "events", NULL);
  g_autofree char *vm = g_build_filename(config->runtime_dir, "vm1", NULL);
  g_unlink(events);
  g_rmdir(vm);
  g_rmdir(config->runtime_dir);
  g_rmdir(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/events/a_plain_event_is_taken", test_a_plain_event_is_taken);
  g_test_add_func("/events/hostile_lines_are_dropped", test_hostile_lines_are_dropped);
  g_test_add_func("/events/a_large_append_is_read_in_batches_across_iterations",
                  test_a_large_append_is_read_in_batches_across_iterations);
  return g_test_run();
}
