/* SPDX-License-Identifier: MIT */
/* What the helper reads from a guest besides JSON: the console's last lines kept with a crash
 * (helper/helper-crash.c), which reach a GVariant and an operator's terminal, and the guest
 * agent's HTTP status line (helper/helper-guest-agent.c). The input goes to both. */
#include "fuzz.h"
#include "helper-crash.h"
#include "helper-guest-agent.h"
#include "lcvm-text.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_auto(GStrv) lines = helper_crash_console_lines((const char *)data, size, 8);
  g_assert(g_strv_length(lines) <= 8);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_assert(lcvm_text_is_plain(lines[i], strlen(lines[i])));
    g_assert(g_utf8_strlen(lines[i], -1) <= HELPER_CRASH_LINE_MAX);
  }
  g_variant_unref(g_variant_ref_sink(g_variant_new_strv((const char *const *)lines, -1)));
  guint code = 0;
  if (helper_guest_agent_parse_status((const char *)data, size, &code))
    g_assert(code >= 100 && code <= 599);
  return 0;
}
