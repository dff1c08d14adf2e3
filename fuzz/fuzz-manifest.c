/* SPDX-License-Identifier: MIT */
/* vm-manifest.json (common/lcvm-manifest.c): parsed and validated; what passes is written back
 * and must read back the same. Every error text must be valid UTF-8 (it goes on the bus). */
#include "fuzz.h"
#include "lcvm-manifest.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_parse((const char *)data, size, &error);
  if (m == NULL) {
    g_assert(g_utf8_validate(error->message, -1, NULL));
    return 0;
  }
  gsize len = 0;
  g_autofree char *json = lcvm_manifest_to_json(m, &len, &error);
  g_assert(json != NULL);
  g_autoptr(LcvmManifest) again = lcvm_manifest_parse(json, len, &error);
  g_assert(again != NULL);
  return 0;
}
