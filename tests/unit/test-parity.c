/* SPDX-License-Identifier: MIT */
/* Notes on departures from Lium's launcher: hugepages, NUMA pinning, and .env keys the measured
 * init script never reads (field-2026 §6). */
#include "lcvm-parity.h"

#include <string.h>

static const char init_461934f_like[] =
    "for key in INTERNAL_PORT EXTERNAL_PORT SSH_PORT SSH_PUBLIC_PORT RENTING_PORT_RANGE \\\n"
    "  RENTING_PORT_MAPPINGS MINER_HOTKEY_SS58_ADDRESS VALIDATOR_HOTKEY_SS58_ADDRESS \\\n"
    "  ENABLE_TDX_ATTESTATION ENABLE_GPU_ATTESTATION; do\n"
    "  value=$(jq -r \".env_vars.$key // empty\" .user-config)\n"
    "done\n";

static GPtrArray *
notes_for(const char *env_text, const char *init)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmEnv) env = lcvm_env_parse(env_text, strlen(env_text), &error);
  g_assert_no_error(error);
  g_autoptr(LcvmManifest) m = lcvm_manifest_new();
  m->hugepages = g_strcmp0(lcvm_env_get(env, "CVM_HUGEPAGES"), "true") == 0;
  m->pin_numa = g_strcmp0(lcvm_env_get(env, "CVM_PIN_NUMA"), "true") == 0;
  return lcvm_parity_notes(env, m, init);
}

static gboolean
has_note(GPtrArray *notes, const char *needle)
{
  for (guint i = 0; i < notes->len; i++)
    if (strstr(notes->pdata[i], needle) != NULL)
      return TRUE;
  return FALSE;
}

static void
whitelisted_and_host_side_keys_give_no_note(void)
{
  g_autoptr(GPtrArray) notes =
      notes_for("SSH_PORT=2200\nEXTERNAL_PORT=8001\nCVM_VCPUS=4\nCVM_GPUS=all\n"
                "EXECUTOR_RUNNER_IMAGE_DIGEST=sha256:00\nENABLE_GPU_ATTESTATION=true\n",
                init_461934f_like);
  g_assert_cmpuint(notes->len, ==, 0);
}

static void
local_rent_keys_the_guest_never_sees_are_named(void)
{
  g_autoptr(GPtrArray) notes = notes_for("SSH_PORT=2200\nEXECUTOR_LOCAL_RENT_ENABLED=true\n"
                                         "LOCAL_RENT_MAX_DEADLINE_SECONDS=120\n",
                                         init_461934f_like);
  g_assert_cmpuint(notes->len, ==, 2);
  g_assert_true(g_str_has_prefix(notes->pdata[0], "EXECUTOR_LOCAL_RENT_ENABLED is set in .env"));
  g_assert_true(has_note(notes, "LOCAL_RENT_MAX_DEADLINE_SECONDS"));
  g_assert_true(has_note(notes, "the guest's .env will not have it"));
}

static void
empty_values_and_no_init_script_give_no_key_notes(void)
{
  g_autoptr(GPtrArray) empty = notes_for("EXECUTOR_LOCAL_RENT_ENABLED=\n", init_461934f_like);
  g_assert_cmpuint(empty->len, ==, 0);
  g_autoptr(GPtrArray) none = notes_for("EXECUTOR_LOCAL_RENT_ENABLED=true\n", NULL);
  g_assert_cmpuint(none->len, ==, 0);
}

static void
hugepages_and_pinning_are_announced(void)
{
  g_autoptr(GPtrArray) notes = notes_for("CVM_HUGEPAGES=true\nCVM_PIN_NUMA=true\n", "");
  g_assert_cmpuint(notes->len, ==, 2);
  g_assert_true(has_note(notes, "CVM_HUGEPAGES=true"));
  g_assert_true(has_note(notes, "never produces"));
  g_assert_true(has_note(notes, "CVM_PIN_NUMA=true"));
}

static void
key_names_match_only_whole_words(void)
{
  g_assert_true(lcvm_parity_text_names_key("a SSH_PORT b", "SSH_PORT"));
  g_assert_true(lcvm_parity_text_names_key("SSH_PORT", "SSH_PORT"));
  g_assert_true(lcvm_parity_text_names_key(".env_vars.SSH_PORT//", "SSH_PORT"));
  g_assert_false(lcvm_parity_text_names_key("SSH_PORTS", "SSH_PORT"));
  g_assert_false(lcvm_parity_text_names_key("X_SSH_PORT", "SSH_PORT"));
  g_assert_false(
      lcvm_parity_text_names_key("EXECUTOR_LOCAL_RENT_ENABLED_X LOCAL_RENT", "LOCAL_RENT_ENABLED"));
  /* A second, whole-word occurrence after a partial one still counts. */
  g_assert_true(lcvm_parity_text_names_key("SSH_PORTX SSH_PORT", "SSH_PORT"));
  g_assert_false(lcvm_parity_text_names_key("", "SSH_PORT"));
  g_assert_false(lcvm_parity_text_names_key("anything", ""));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/parity/whitelisted-and-host-side-keys-give-no-note",
                  whitelisted_and_host_side_keys_give_no_note);
  g_test_add_func("/parity/local-rent-keys-the-guest-never-sees-are-named",
                  local_rent_keys_the_guest_never_sees_are_named);
  g_test_add_func("/parity/empty-values-and-no-init-script-give-no-key-notes",
                  empty_values_and_no_init_script_give_no_key_notes);
  g_test_add_func("/parity/hugepages-and-pinning-are-announced",
                  hugepages_and_pinning_are_announced);
  g_test_add_func("/parity/key-names-match-only-whole-words", key_names_match_only_whole_words);
  return g_test_run();
}
