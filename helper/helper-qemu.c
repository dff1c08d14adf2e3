/* SPDX-License-Identifier: MIT */
/* QEMU binary resolution and the confined version probe (see the header). The only process
 * started here is `QEMU --version`, as nobody, with an empty environment and a deadline. */
#include "helper-qemu.h"
#include "helper-client-conf.h"
#include "helper-spawn.h"
#include "lcvm-error.h"
#include "lcvm-hostcheck-parse.h"
#include "lcvm-trust.h"

#include <sys/stat.h>

#define QEMU_NAME        "qemu-system-x86_64"
#define PROBE_UID        65534 /* nobody: owns nothing a VM owns */
#define PROBE_TIMEOUT_MS 5000
#define PROBE_MAX_OUTPUT 4096

static GMutex cache_lock;
static LcvmQemuProbeCache *cache;

/* dstack's client.conf names the QEMU when lium-cvm.conf does not; believe it only when
 * root alone can have written it. */
static char *
client_conf_qemu(const LcvmConfig *config, GError **error)
{
  g_autofree char *text = helper_client_conf_text(config, error);
  return text != NULL ? lcvm_client_conf_qemu_path(text) : NULL;
}

static char *
configured_qemu(const LcvmConfig *config, GError **error)
{
  if (config->qemu_path[0] != '\0')
    return g_strdup(config->qemu_path);
  GError *local = NULL;
  char *path = client_conf_qemu(config, &local);
  if (local) {
    g_propagate_error(error, local);
    return NULL;
  }
  if (!path)
    path = g_find_program_in_path(QEMU_NAME);
  if (!path)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "no QEMU: set [qemu] path in lium-cvm.conf (or [qemu] path in %s) to a QEMU "
                "whose version is in the known-good list (see 'lium-cvm check')",
                config->dstack_client_conf);
  return path;
}

static gboolean
probe(const char *path, LcvmQemuVersion *version, GError **error)
{
  const char *argv[] = { path, "--version", NULL };
  HelperSpawnOptions options = {
    .argv = argv,
    .umask = 077,
    .uid = PROBE_UID,
    .gid = PROBE_UID,
    .profile = LCVM_SECCOMP_QEMU,
  };
  HelperCaptureOptions capture = { .timeout_ms = PROBE_TIMEOUT_MS, .max_output = PROBE_MAX_OUTPUT };
  g_auto(HelperCaptured) run = { 0 };
  if (!helper_spawn_capture(&options, &capture, &run, error))
    return FALSE;
  if (run.timed_out) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "--version did not answer in %d s",
                PROBE_TIMEOUT_MS / 1000);
    return FALSE;
  }
  if (!run.exited || run.status != 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "--version failed (status %d)",
                run.exited ? run.status : run.signal);
    return FALSE;
  }
  return lcvm_qemu_version_parse(run.out->str, version, error);
}

gboolean
helper_qemu_resolve(const LcvmConfig *config, char **path, LcvmQemuVersion *version, GError **error)
{
  g_autofree char *configured = configured_qemu(config, error);
  g_autofree char *trusted = configured ? lcvm_trusted_path(configured, error) : NULL;
  struct stat st;
  if (!trusted)
    return FALSE;
  if (stat(trusted, &st) < 0 || !S_ISREG(st.st_mode)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s is not a regular file", trusted);
    return FALSE;
  }
  g_mutex_lock(&cache_lock);
  if (!cache)
    cache = lcvm_qemu_probe_cache_new();
  gboolean ok = lcvm_qemu_probe_cache_lookup(cache, trusted, &st, version);
  if (!ok && (ok = probe(trusted, version, error)))
    lcvm_qemu_probe_cache_store(cache, trusted, &st, version);
  g_mutex_unlock(&cache_lock);
  if (!ok) {
    g_prefix_error(error, "QEMU %s: ", trusted);
    return FALSE;
  }
  *path = g_steal_pointer(&trusted);
  return TRUE;
}
