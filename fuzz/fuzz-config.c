/* SPDX-License-Identifier: MIT */
/* /etc/lium-cvm/lium-cvm.conf (common/lcvm-config.c), and the size and number parsers it uses. */
#include "fuzz.h"
#include "lcvm-config.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *text = fuzz_text(data, size);
  g_autoptr(LcvmConfig) config = lcvm_config_load_data(text, NULL);
  if (config != NULL) {
    g_autoptr(GHashTable) summary = lcvm_config_summary(config);
  }
  guint64 out;
  lcvm_parse_size(text, &out, NULL);
  lcvm_parse_uint(text, G_MAXUINT32, &out);
  return 0;
}
