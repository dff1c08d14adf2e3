/* SPDX-License-Identifier: MIT */
/* app-compose.json handling (common/lcvm-compose.c): the text check an operator's compose goes
 * through, the runner-digest stamping, and the hash. */
#include "fuzz.h"
#include "lcvm-compose.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *hash = lcvm_compose_hash((const char *)data, size);
  g_autofree char *text = lcvm_compose_decode_text("compose", (const char *)data, size, NULL);
  if (text == NULL)
    return 0;
  if (lcvm_compose_needs_runner_digest(text)) {
    g_autofree char *stamped = lcvm_compose_stamp_runner_digest(text, DIGEST, NULL);
  }
  return 0;
}
