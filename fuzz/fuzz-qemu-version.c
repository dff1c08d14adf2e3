/* SPDX-License-Identifier: MIT */
/* `qemu-system-x86_64 --version` output (common/lcvm-qemu-probe.c): what it quotes goes into
 * an error on the bus, so it must be valid UTF-8. */
#include "fuzz.h"
#include "lcvm-qemu-probe.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *text = fuzz_text(data, size);
  LcvmQemuVersion v;
  g_autoptr(GError) error = NULL;
  if (lcvm_qemu_version_parse(text, &v, &error))
    lcvm_qemu_version_at_least(&v, 9, 2, 1);
  else
    g_assert(g_utf8_validate(error->message, -1, NULL));
  return 0;
}
