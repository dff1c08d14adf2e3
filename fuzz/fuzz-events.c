/* SPDX-License-Identifier: MIT */
/* A line of a VM's event file, written by a bridge the guest may have taken over
 * (helper/helper-events.c). What is taken becomes Vm properties on the bus and text on an
 * operator's terminal: plain text only. */
#include "fuzz.h"
#include "helper-events.h"
#include "lcvm-text.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *event = NULL, *payload = NULL;
  if (!helper_events_parse_line((const char *)data, size, &event, &payload))
    return 0;
  g_assert(lcvm_text_is_plain(event, strlen(event)));
  g_assert(lcvm_text_is_plain(payload, strlen(payload)));
  g_variant_unref(g_variant_ref_sink(g_variant_new_string(payload)));
  return 0;
}
