/* helper_events_parse_line: one line of a VM's event file, written by a bridge the guest may
 * have taken over. Only a JSON object with plain-text "event" and "payload" strings is taken:
 * a terminal escape, a lone surrogate, a second value on the line, an empty line and members of
 * another type are dropped (and never reach a GVariant: G_DEBUG=fatal-criticals would abort). */
#include "helper-events.h"
#include <string.h>

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

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/events/a_plain_event_is_taken", test_a_plain_event_is_taken);
  g_test_add_func("/events/hostile_lines_are_dropped", test_hostile_lines_are_dropped);
  return g_test_run();
}
