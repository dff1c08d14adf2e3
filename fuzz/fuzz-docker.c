/* SPDX-License-Identifier: MIT */
/* docker's output as the key provider's status reads it (helper/helper-keyprovider-containers.c and
 * -status.c): `compose ps --format json` / `inspect` JSON (objects per line or one array), and
 * container logs scanned for enclave errors — the input split at its first NUL byte. What comes out
 * reaches GVariants, so it must be valid UTF-8. */
#include "fuzz.h"
#include "helper-keyprovider.h"
#include "lcvm-json-depth.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *parts[2];
  fuzz_split(data, size, 2, parts);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) objects = helper_keyprovider_docker_objects(parts[0], &error);
  for (guint i = 0; objects != NULL && i < objects->len; i++) {
    JsonObject *o = json_node_get_object(objects->pdata[i]);
    const char *id = lcvm_json_string_member(o, "ID");
    g_assert(id == NULL || g_utf8_validate(id, -1, NULL));
  }
  g_autoptr(GPtrArray) errors = helper_keyprovider_enclave_errors(parts[1]);
  for (guint i = 0; i < errors->len; i++) {
    g_variant_unref(g_variant_ref_sink(g_variant_new_string(errors->pdata[i])));
    g_assert(strlen(errors->pdata[i]) <= 4 * ENCLAVE_ERROR_TEXT_MAX + 8);
  }
  g_free(parts[0]);
  g_free(parts[1]);
  return 0;
}
