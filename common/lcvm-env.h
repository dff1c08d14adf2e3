/* SPDX-License-Identifier: MIT */
/* The executor's .env file: parsed as text, never executed or sourced. One parser gives both
 * the values written to the guest's .user-config and the typed VM settings, so the two can
 * never disagree the way `source .env` and dstack.py's reader could.
 *
 * Syntax: KEY=VALUE lines; blank lines and lines starting with '#' are skipped; an optional
 * leading `export `; spaces around '=' are allowed; a value in single or double quotes is
 * taken verbatim (no escapes, no expansion — `$(…)`, backticks and `${…}` stay text) and may
 * be followed only by a comment; an unquoted value ends at a '#' that follows whitespace and
 * is trimmed. CRLF line ends and a UTF-8 byte-order mark are accepted. A line that is not
 * KEY=VALUE, an unterminated quote, invalid UTF-8 and a key set twice are errors. */
#pragma once
#include <glib.h>

#include "lcvm-manifest.h"

#define LCVM_ENV_MAX_SIZE (1024 * 1024)
/* Every forward the .env describes binds here (lium-cvm.sh's PORT_BIND_IP). */
#define LCVM_ENV_BIND_ADDRESS "0.0.0.0"

typedef struct {
  char *key;
  char *value;
  guint line;
} LcvmEnvEntry;

typedef struct {
  GPtrArray *entries; /* LcvmEnvEntry*, in file order */
  GHashTable *index;  /* key → LcvmEnvEntry* (borrowed) */
} LcvmEnv;

void lcvm_env_free(LcvmEnv *env);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmEnv, lcvm_env_free)

/* Parses the text; every bad line is reported (one message per line, "line N: …"). */
LcvmEnv *lcvm_env_parse(const char *data, gsize len, GError **error);
/* Reads and parses a file (at most LCVM_ENV_MAX_SIZE bytes). */
LcvmEnv *lcvm_env_load(const char *path, GError **error);

/* The value of key, or NULL when the key is absent. */
const char *lcvm_env_get(const LcvmEnv *env, const char *key);

/* The .user-config bytes: {"env_vars": {KEY: VALUE, …}} in file order, as Python's
 * json.dump(indent=4) writes it. */
char *lcvm_env_user_config(const LcvmEnv *env, gsize *len, GError **error);

/* Fills the VM settings of manifest from the typed keys (an empty value counts as unset):
 *   CVM_VCPUS (default 4), CVM_MEMORY (default 4G), CVM_DISK (default 20G) — sizes with a
 *     T, G or M suffix, a bare number is MiB;
 *   CVM_GPUS — "all" (gpu_attach = ALL, lists left empty for the caller to resolve) or a
 *     comma list of BB:DD.F / DDDD:BB:DD.F slots (canonical, in manifest->gpus; the caller
 *     sorts NVSwitches out);
 *   CVM_HUGEPAGES, CVM_PIN_NUMA — true/false (default false);
 *   ports, all TCP on LCVM_ENV_BIND_ADDRESS: SSH_PUBLIC_PORT (default SSH_PORT) → SSH_PORT,
 *     EXTERNAL_PORT → EXTERNAL_PORT, then either RENTING_PORT_MAPPINGS (a JSON list of
 *     [guest, host] pairs) or RENTING_PORT_RANGE (a comma list of ports and a-b ranges,
 *     each forwarded to the same port), never both; no host port twice.
 * Every bad value is reported at once, each with its key, the value and the accepted form. */
gboolean lcvm_env_apply(const LcvmEnv *env, LcvmManifest *manifest, GError **error);
