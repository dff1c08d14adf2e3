/* SPDX-License-Identifier: MIT */
/* NVIDIA gpu-admin-tools' output (common/lcvm-gpu-admin.c): stdout and stderr (split at the
 * first NUL byte) of a query about one device. What it quotes reaches the bus. */
#include "fuzz.h"
#include "lcvm-gpu-admin.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *parts[2];
  fuzz_split(data, size, 2, parts);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmGpuAdminOutput) o =
      lcvm_gpu_admin_parse("0000:19:00.0", parts[0], parts[1], &error);
  if (o != NULL) {
    g_autofree char *quote = lcvm_gpu_admin_quote(o);
  }
  g_free(parts[0]);
  g_free(parts[1]);
  return 0;
}
