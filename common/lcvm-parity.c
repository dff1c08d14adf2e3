/* SPDX-License-Identifier: MIT */
/* Notes on departures from Lium's launcher (see the header). */
#include "lcvm-parity.h"

#include <string.h>

/* .env keys only the host reads: they never need to reach the guest. */
static gboolean
host_side_key(const char *key)
{
  return g_str_has_prefix(key, "CVM_") || g_str_equal(key, "EXECUTOR_RUNNER_IMAGE_DIGEST");
}

static gboolean
name_char(char c)
{
  return g_ascii_isalnum(c) || c == '_';
}

gboolean
lcvm_parity_text_names_key(const char *text, const char *key)
{
  gsize n = strlen(key);
  if (n == 0)
    return FALSE;
  for (const char *p = strstr(text, key); p != NULL; p = strstr(p + 1, key)) {
    gboolean starts = p == text || !name_char(p[-1]);
    if (starts && !name_char(p[n]))
      return TRUE;
  }
  return FALSE;
}

static void
layout_notes(const LcvmManifest *m, GPtrArray *notes)
{
  if (m->hugepages)
    g_ptr_array_add(notes,
                    g_strdup("CVM_HUGEPAGES=true: the guest gets hugepage-backed NUMA nodes and "
                             "vm_config says hugepages: true, a layout Lium's launcher never "
                             "produces (lium-cvm.sh passes no --hugepages); RTMR0 will differ "
                             "from what Lium's validators expect. Remove CVM_HUGEPAGES from .env "
                             "unless you mean it"));
  if (m->pin_numa)
    g_ptr_array_add(notes,
                    g_strdup("CVM_PIN_NUMA=true: QEMU runs pinned (taskset) to the CPUs of the "
                             "first GPU's NUMA node, which Lium's launcher never does "
                             "(lium-cvm.sh passes no --pin-numa); host-side only, no measurement "
                             "changes. Remove CVM_PIN_NUMA from .env unless you mean it"));
}

static void
whitelist_notes(const LcvmEnv *env, const char *init_script, GPtrArray *notes)
{
  for (guint i = 0; i < env->entries->len; i++) {
    const LcvmEnvEntry *e = g_ptr_array_index(env->entries, i);
    if (e->value[0] == '\0' || host_side_key(e->key) ||
        lcvm_parity_text_names_key(init_script, e->key))
      continue;
    g_ptr_array_add(notes, g_strdup_printf("%s is set in .env, but the measured init script never "
                                           "reads it: the guest's .env will not have it (it still "
                                           "travels, unencrypted, in .user-config)",
                                           e->key));
  }
}

GPtrArray *
lcvm_parity_notes(const LcvmEnv *env, const LcvmManifest *manifest, const char *init_script)
{
  GPtrArray *notes = g_ptr_array_new_with_free_func(g_free);
  layout_notes(manifest, notes);
  if (init_script != NULL)
    whitelist_notes(env, init_script, notes);
  return notes;
}
