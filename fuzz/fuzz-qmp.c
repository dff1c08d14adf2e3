/* SPDX-License-Identifier: MIT */
/* QMP lines from QEMU, which runs the guest (helper/helper-qmp.c): each input line parsed,
 * classified as the answer to query-status, its status and QEMU's error read. The error text
 * reaches the bus, so it must be valid UTF-8 without controls. */
#include "fuzz.h"
#include "helper-qmp.h"
#include "lcvm-text.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *text = fuzz_text(data, size);
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_autoptr(JsonNode) line = helper_qmp_parse_line(lines[i]);
    if (line == NULL)
      continue;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    switch (
        helper_qmp_classify(json_node_get_object(line), "qmp.sock", "query-status", &ret, &error)) {
    case HELPER_QMP_RETURN: {
      const char *status = helper_qmp_status_of(ret);
      if (status != NULL)
        g_variant_unref(g_variant_ref_sink(g_variant_new_string(status)));
      break;
    }
    case HELPER_QMP_ERROR:
      g_assert(lcvm_text_is_plain(error->message, strlen(error->message)));
      break;
    case HELPER_QMP_OTHER:
      break;
    }
  }
  return 0;
}
