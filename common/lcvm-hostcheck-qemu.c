/* SPDX-License-Identifier: MIT */
/* Host check, QEMU area: which binary runs VMs ([qemu] path, else dstack's client.conf
 * [qemu] path, else PATH) and whether validators accept its version (the known-good list). The
 * one process this check starts is `qemu --version`, and its answer is cached per binary
 * path + mtime + size + inode, so a repeated check starts nothing. */
#include "lcvm-hostcheck-private.h"
#include "lcvm-capture.h"
#include "lcvm-qemu-probe.h"
#include "lcvm-safe-io.h"
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QEMU_NAME        "qemu-system-x86_64"
#define PROBE_TIMEOUT_MS 5000
#define CACHE_FILE       "qemu-version.ini"

/* How to get an accepted QEMU: the known-good list's [qemu] build, else a plain hint. */
static const char *
build_remedy(const HostCtx *ctx)
{
  return ctx->known_good ? ctx->known_good->qemu_build
                         : "install a QEMU of a version in the known-good list and set [qemu] "
                           "path (see attestation.known_good)";
}

/* The binary and where its name came from. */
static char *
resolve_qemu(const LcvmConfig *cfg, char **source)
{
  if (cfg->qemu_path[0] != '\0') {
    *source = g_strdup("[qemu] path in lium-cvm.conf");
    return g_strdup(cfg->qemu_path);
  }
  if (cfg->dstack_client_conf[0] != '\0') {
    g_autofree char *text = NULL;
    if (g_file_get_contents(cfg->dstack_client_conf, &text, NULL, NULL)) {
      char *path = lcvm_client_conf_qemu_path(text);
      if (path != NULL) {
        *source = g_strdup_printf("[qemu] path in %s", cfg->dstack_client_conf);
        return path;
      }
    }
  }
  char *path = g_find_program_in_path(QEMU_NAME);
  *source = g_strdup(path ? "PATH" : NULL);
  return path;
}

static char *
cache_key_value(const struct stat *st)
{
  return g_strdup_printf("%lld.%09ld:%lld:%llu", (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                         (long long)st->st_size, (unsigned long long)st->st_ino);
}

static char *
cache_lookup(const char *cache_dir, const char *path, const struct stat *st)
{
  if (cache_dir == NULL)
    return NULL;
  g_autofree char *file = g_build_filename(cache_dir, CACHE_FILE, NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, NULL))
    return NULL;
  g_autofree char *stamp = g_key_file_get_string(kf, path, "stamp", NULL);
  g_autofree char *want = cache_key_value(st);
  if (g_strcmp0(stamp, want) != 0)
    return NULL;
  return g_key_file_get_string(kf, path, "version", NULL);
}

/* Best effort: a cache we cannot write only costs the next run one probe. */
static void
cache_store(const char *cache_dir, const char *path, const struct stat *st, const char *version)
{
  if (cache_dir == NULL || g_mkdir_with_parents(cache_dir, 0700) != 0)
    return;
  g_autofree char *file = g_build_filename(cache_dir, CACHE_FILE, NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, NULL);
  g_autofree char *stamp = cache_key_value(st);
  g_key_file_set_string(kf, path, "stamp", stamp);
  g_key_file_set_string(kf, path, "version", version);
  gsize len;
  g_autofree char *data = g_key_file_to_data(kf, &len, NULL);
  lcvm_write_file_atomic(cache_dir, CACHE_FILE, data, len, 0600, NULL);
}

/* Runs `path --version` with a clean environment and a deadline; returns its first line. */
static char *
probe_version(const char *path, GError **error)
{
  const char *argv[] = { path, "--version", NULL };
  g_autofree char *out = lcvm_capture(argv, PROBE_TIMEOUT_MS, 65536, NULL, error);
  if (out == NULL)
    return NULL;
  char *eol = strchr(out, '\n');
  if (eol != NULL)
    *eol = '\0';
  if (out[0] == '\0') {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s --version printed nothing", path);
    return NULL;
  }
  return g_steal_pointer(&out);
}

static void
judge_version(HostCtx *ctx, LcvmCheck *c, const char *path, const char *line)
{
  LcvmQemuVersion v;
  g_autoptr(GError) error = NULL;
  if (!lcvm_qemu_version_parse(line, &v, &error)) {
    hc_set(c, LCVM_CHECK_WARN, "%s", error->message);
    hc_remedy(c, "%s", build_remedy(ctx));
    return;
  }
  if (ctx->known_good == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s at %s; no known-good list to judge it by (%s)", line, path,
           ctx->known_good_error);
    return;
  }
  g_autofree char *reason = NULL;
  switch (lcvm_known_good_qemu(ctx->known_good, &v, &reason)) {
  case LCVM_KNOWN_GOOD_ACCEPTED:
    hc_set(c, LCVM_CHECK_OK, "%s", line);
    return;
  case LCVM_KNOWN_GOOD_DOUBTFUL:
    hc_set(c, LCVM_CHECK_WARN, "%s at %s: %s", line, path, reason);
    break;
  case LCVM_KNOWN_GOOD_REJECTED:
    hc_set(c, LCVM_CHECK_FAIL, "%s at %s: %s", line, path, reason);
    break;
  }
  hc_remedy(c, "%s", build_remedy(ctx));
}

void
hc_check_qemu(HostCtx *ctx)
{
  const char *client_conf = ctx->config->dstack_client_conf[0] ? ctx->config->dstack_client_conf
                                                               : "/etc/dstack/client.conf";
  const char *remedy = build_remedy(ctx);
  LcvmCheck *bin =
      hc_add(ctx, "qemu.binary", "QEMU binary",
             "[qemu] path, else client.conf [qemu] path, else " QEMU_NAME " in PATH; executable");
  LcvmCheck *ver = hc_add(ctx, "qemu.version", "QEMU version",
                          "a version in the known-good list, not a distribution's package");
  g_autofree char *source = NULL;
  g_autofree char *path = resolve_qemu(ctx->config, &source);
  struct stat st;
  if (path == NULL) {
    hc_set(bin, LCVM_CHECK_FAIL, "no [qemu] path, none in %s, no " QEMU_NAME " in PATH",
           client_conf);
    hc_remedy(bin, "%s", remedy);
    hc_set(ver, LCVM_CHECK_SKIP, "no QEMU binary (see qemu.binary)");
    return;
  }
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0) {
    hc_set(bin, LCVM_CHECK_FAIL, "%s (from %s) is missing or not executable", path, source);
    hc_remedy(bin, "%s", remedy);
    hc_set(ver, LCVM_CHECK_SKIP, "no QEMU binary (see qemu.binary)");
    return;
  }
  hc_set(bin, LCVM_CHECK_OK, "%s (from %s)", path, source);

  g_autofree char *line = cache_lookup(ctx->options->cache_dir, path, &st);
  if (line == NULL) {
    g_autoptr(GError) error = NULL;
    line = probe_version(path, &error);
    if (line == NULL) {
      hc_set(ver, LCVM_CHECK_UNKNOWN, "%s", error->message);
      hc_remedy(ver, "run '%s --version' by hand; it must print a version in the known-good list",
                path);
      return;
    }
    cache_store(ctx->options->cache_dir, path, &st, line);
  }
  judge_version(ctx, ver, path, line);
}

char *
lcvm_hostcheck_qemu_version_line(const LcvmConfig *config, const char *cache_dir, char **path,
                                 GError **error)
{
  g_autofree char *source = NULL;
  *path = resolve_qemu(config, &source);
  struct stat st;
  if (*path == NULL || stat(*path, &st) != 0 || !S_ISREG(st.st_mode)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                "no QEMU binary (see 'lium-cvm check': qemu.binary)");
    return NULL;
  }
  char *line = cache_lookup(cache_dir, *path, &st);
  if (line == NULL && (line = probe_version(*path, error)) != NULL)
    cache_store(cache_dir, *path, &st, line);
  return line;
}
