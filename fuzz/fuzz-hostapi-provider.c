/* SPDX-License-Identifier: MIT */
/* The key provider's answer as the bridge reads it (helper/hostapi/hostapi-provider.c): a
 * frame's 4-byte length header and the JSON body, which becomes hex for the guest. */
#include "fuzz.h"
#include "hostapi.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size >= 4) {
    guint32 len;
    hostapi_provider_frame_length(data, &len, NULL);
  }
  g_autofree char *key = NULL, *quote = NULL;
  g_autoptr(GError) error = NULL;
  if (hostapi_provider_decode((const char *)data, size, &key, &quote, &error)) {
    g_assert(strspn(key, "0123456789abcdef") == strlen(key));
    g_assert(strspn(quote, "0123456789abcdef") == strlen(quote));
  } else {
    g_assert(g_utf8_validate(error->message, -1, NULL));
  }
  return 0;
}
