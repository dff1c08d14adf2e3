/* SPDX-License-Identifier: MIT */
/* A VM's .env (common/lcvm-env.c): parsed, applied to a manifest (every typed key, the
 * RENTING_PORT_MAPPINGS JSON among them) and written as .user-config. */
#include "fuzz.h"
#include "lcvm-env.h"
#include "lcvm-manifest.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(LcvmEnv) env = lcvm_env_parse((const char *)data, size, NULL);
  if (env == NULL)
    return 0;
  g_autoptr(LcvmManifest) m = lcvm_manifest_new();
  g_autoptr(GError) error = NULL;
  if (!lcvm_env_apply(env, m, &error))
    g_assert(g_utf8_validate(error->message, -1, NULL));
  g_autofree char *config = lcvm_env_user_config(env, NULL, NULL);
  return 0;
}
