/* Host check, QEMU area: which binary runs VMs ([qemu] path, else dstack's client.conf
 * [qemu] path, else PATH) and whether it is the dstack 9.2.1 build attestation needs. The
 * one process this check starts is `qemu --version`, and its answer is cached per binary
 * path + mtime + size + inode, so a repeated check starts nothing. */
#include "lcvm-hostcheck-private.h"
#include "lcvm-qemu-probe.h"
#include "lcvm-safe-io.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define QEMU_NAME        "qemu-system-x86_64"
#define PROBE_TIMEOUT_MS 5000
#define CACHE_FILE       "qemu-version.ini"

#define BUILD_DSTACK_QEMU                                                                          \
  "build the dstack QEMU: git clone -b dstack-qemu-9.2.1 https://github.com/kvinwang/qemu-tdx "    \
  "&& cd qemu-tdx && git checkout dbcec07c0854bf873d346a09e87e4c993ccf2633 && mkdir build && cd "  \
  "build && ../configure --prefix=/opt/qemu-dstack --target-list=x86_64-softmmu "                  \
  "--disable-werror --enable-kvm --enable-slirp && make -j$(nproc) && sudo make install; then "    \
  "set 'path = /opt/qemu-dstack/bin/qemu-system-x86_64' under [qemu] in %s"

/* The binary and where its name came from. */
static char *
resolve_qemu(HostCtx *ctx, char **source)
{
  const LcvmConfig *cfg = ctx->config;
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
  const char *envp[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
  GPid pid;
  int out = -1;
  if (!g_spawn_async_with_pipes(NULL, (char **)argv, (char **)envp,
                                G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDERR_TO_DEV_NULL |
                                    G_SPAWN_CLOEXEC_PIPES,
                                NULL, NULL, &pid, NULL, &out, NULL, error))
    return NULL;
  g_autoptr(GString) s = g_string_new(NULL);
  gint64 deadline = g_get_monotonic_time() + PROBE_TIMEOUT_MS * 1000;
  gboolean timed_out = FALSE;
  for (;;) {
    int left = (int)((deadline - g_get_monotonic_time()) / 1000);
    struct pollfd p = { .fd = out, .events = POLLIN };
    if (left <= 0 || poll(&p, 1, left) == 0) {
      timed_out = TRUE;
      break;
    }
    char buf[1024];
    ssize_t n = read(out, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || s->len > 65536)
      break;
    g_string_append_len(s, buf, n);
  }
  close(out);
  if (timed_out)
    kill(pid, SIGKILL);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  g_spawn_close_pid(pid);
  if (timed_out) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s --version did not answer in %d s",
                path, PROBE_TIMEOUT_MS / 1000);
    return NULL;
  }
  char *eol = strchr(s->str, '\n');
  if (eol != NULL)
    *eol = '\0';
  if (s->len == 0 || s->str[0] == '\0') {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s --version printed nothing", path);
    return NULL;
  }
  return g_strdup(s->str);
}

static void
judge_version(LcvmCheck *c, const char *path, const char *line, const char *client_conf)
{
  LcvmQemuVersion v;
  g_autoptr(GError) error = NULL;
  if (!lcvm_qemu_version_parse(line, &v, &error)) {
    hc_set(c, LCVM_CHECK_WARN, "%s", error->message);
    hc_remedy(c, BUILD_DSTACK_QEMU, client_conf);
    return;
  }
  if (v.dstack_build) {
    hc_set(c, LCVM_CHECK_OK, "%s", line);
  } else if (v.major == 9 && v.minor == 2 && v.patch == 1) {
    hc_set(c, LCVM_CHECK_WARN, "%s: a distribution build, not the dstack fork", line);
    hc_remedy(c,
              "the verifier's RTMR0 is computed from the dstack QEMU 9.2.1 fork and a distro "
              "9.2.1 may differ: " BUILD_DSTACK_QEMU,
              client_conf);
  } else if (v.major >= 10) {
    hc_set(c, LCVM_CHECK_FAIL,
           "QEMU %s at %s is a distro/upstream build: the verifier's RTMR0 "
           "oracle is built from dstack QEMU 9.2.1, so attestation can never "
           "pass",
           v.text, path);
    hc_remedy(c, BUILD_DSTACK_QEMU, client_conf);
  } else {
    hc_set(c, LCVM_CHECK_FAIL, "QEMU %s at %s: attestation needs the dstack 9.2.1 build", v.text,
           path);
    hc_remedy(c, BUILD_DSTACK_QEMU, client_conf);
  }
}

void
hc_check_qemu(HostCtx *ctx)
{
  const char *client_conf = ctx->config->dstack_client_conf[0] ? ctx->config->dstack_client_conf
                                                               : "/etc/dstack/client.conf";
  LcvmCheck *bin =
      hc_add(ctx, "qemu.binary", "QEMU binary",
             "[qemu] path, else client.conf [qemu] path, else " QEMU_NAME " in PATH; executable");
  LcvmCheck *ver = hc_add(ctx, "qemu.version", "QEMU version", "9.2.1, the dstack build");
  g_autofree char *source = NULL;
  g_autofree char *path = resolve_qemu(ctx, &source);
  struct stat st;
  if (path == NULL) {
    hc_set(bin, LCVM_CHECK_FAIL, "no [qemu] path, none in %s, no " QEMU_NAME " in PATH",
           client_conf);
    hc_remedy(bin, BUILD_DSTACK_QEMU, client_conf);
    hc_set(ver, LCVM_CHECK_SKIP, "no QEMU binary (see qemu.binary)");
    return;
  }
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0) {
    hc_set(bin, LCVM_CHECK_FAIL, "%s (from %s) is missing or not executable", path, source);
    hc_remedy(bin, BUILD_DSTACK_QEMU, client_conf);
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
      hc_remedy(ver, "run '%s --version' by hand; it must print version 9.2.1", path);
      return;
    }
    cache_store(ctx->options->cache_dir, path, &st, line);
  }
  judge_version(ver, path, line, client_conf);
}
