/* SPDX-License-Identifier: MIT */
/* The host check engine: reads the facts several checks share (cpuinfo, command line, kernel
 * log) once, runs the areas in order and turns the result into a report. It only reads:
 * never writes to the host, never needs privilege, and reports "unknown" with the reason
 * when a file cannot be read — a permission problem is never a failure of the host. */
#include "lcvm-hostcheck-private.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include "config.h"
#include "lcvm-pci.h"
#include "lcvm-json.h"
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HC_MAX_FILE (1024 * 1024)
#define HC_MAX_KMSG (16 * 1024 * 1024)

/* Run by the frontend (frontend/cmd-check-deep.c) with --deep: they ask the helper, or look at
 * the quote path (cmd-check-quote.c). */
static const char *const deep_checks[] = {
  "keyprovider.status",
  "nftables.guard",
  "qgsd.health",
  "pccs.reachable",
  "sgx.registration",
  "gpu.SLOT.cc_mode (queried through the helper when not cached)",
  NULL,
};

/* Reads fd until EOF, or (stop_at_blank) until the first empty line. */
static char *
read_fd(int fd, const char *path, gsize max, gboolean stop_at_blank, GError **error)
{
  g_autoptr(GString) s = g_string_new(NULL);
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      lcvm_set_errno(error, errno, "%s", path);
      return NULL;
    }
    if (n == 0)
      break;
    g_string_append_len(s, buf, n);
    if (s->len > max) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: larger than %" G_GSIZE_FORMAT " bytes",
                  path, max);
      return NULL;
    }
    if (stop_at_blank && strstr(s->str, "\n\n") != NULL)
      break;
  }
  return g_string_free(g_steal_pointer(&s), FALSE);
}

static char *
read_path(const char *root, const char *rel, gboolean stop_at_blank, GError **error)
{
  g_autofree char *path = lcvm_config_path(root, rel);
  lcvm_autofd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    lcvm_set_errno(error, errno, "%s", path);
    return NULL;
  }
  char *text = read_fd(fd, path, HC_MAX_FILE, stop_at_blank, error);
  return text;
}

char *
hc_read(const char *root, const char *rel, GError **error)
{
  return read_path(root, rel, FALSE, error);
}

char *
hc_read_value(const char *root, const char *rel, GError **error)
{
  char *text = hc_read(root, rel, error);
  return text ? g_strstrip(text) : NULL;
}

gboolean
hc_exists(const char *root, const char *rel)
{
  g_autofree char *path = lcvm_config_path(root, rel);
  struct stat st;
  return stat(path, &st) == 0;
}

LcvmCheck *
lcvm_check_report_add(LcvmCheckReport *report, const char *id, const char *title,
                      const char *expected)
{
  LcvmCheck *c = g_new0(LcvmCheck, 1);
  c->id = g_strdup(id);
  c->title = g_strdup(title);
  c->expected = g_strdup(expected);
  c->status = LCVM_CHECK_UNKNOWN;
  g_ptr_array_add(report->checks, c);
  return c;
}

LcvmCheck *
hc_add(HostCtx *ctx, const char *id, const char *title, const char *expected)
{
  return lcvm_check_report_add(ctx->report, id, title, expected);
}

static void
check_setv(LcvmCheck *c, LcvmCheckStatus status, const char *observed_fmt, va_list ap)
{
  g_free(c->observed);
  c->observed = g_strdup_vprintf(observed_fmt, ap);
  c->status = status;
}

void
hc_set(LcvmCheck *c, LcvmCheckStatus status, const char *observed_fmt, ...)
{
  va_list ap;
  va_start(ap, observed_fmt);
  check_setv(c, status, observed_fmt, ap);
  va_end(ap);
}

void
lcvm_check_set(LcvmCheck *c, LcvmCheckStatus status, const char *observed_fmt, ...)
{
  va_list ap;
  va_start(ap, observed_fmt);
  check_setv(c, status, observed_fmt, ap);
  va_end(ap);
}

static void
remedyv(LcvmCheck *c, const char *fmt, va_list ap)
{
  g_free(c->remedy);
  c->remedy = g_strdup_vprintf(fmt, ap);
}

void
hc_remedy(LcvmCheck *c, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  remedyv(c, fmt, ap);
  va_end(ap);
}

void
lcvm_check_set_remedy(LcvmCheck *c, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  remedyv(c, fmt, ap);
  va_end(ap);
}

const char *
hc_kmsg_find(const HostCtx *ctx, const char *needle)
{
  if (ctx->kmsg == NULL)
    return NULL;
  for (guint i = ctx->kmsg->len; i > 0; i--) {
    const char *m = g_ptr_array_index(ctx->kmsg, i - 1);
    if (strstr(m, needle) != NULL)
      return m;
  }
  return NULL;
}

/* The kernel log from dev_root/kmsg: one record per read on the real device (EAGAIN at the
 * end, EPIPE when a record was overwritten), plain text on a fake host. */
static char *
read_kmsg(const char *dev_root, GError **error)
{
  g_autofree char *path = lcvm_config_path(dev_root, "kmsg");
  lcvm_autofd int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    lcvm_set_errno(error, errno, "%s", path);
    return NULL;
  }
  g_autoptr(GString) s = g_string_new(NULL);
  char buf[8192];
  while (s->len < HC_MAX_KMSG) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      g_string_append_len(s, buf, n);
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EPIPE))
      continue;
    if (n < 0 && errno != EAGAIN) {
      lcvm_set_errno(error, errno, "%s", path);
      return NULL;
    }
    break;
  }
  return g_string_free(g_steal_pointer(&s), FALSE);
}

static void
gather_facts(HostCtx *ctx)
{
  const LcvmConfig *cfg = ctx->config;
  g_autoptr(GError) error = NULL;
  g_autofree char *cpuinfo = read_path(cfg->proc_root, "cpuinfo", TRUE, &error);
  if (cpuinfo == NULL)
    ctx->cpu_error = g_strdup(error->message);
  else if (!lcvm_cpuinfo_parse(cpuinfo, &ctx->cpu))
    ctx->cpu_error = g_strdup_printf("%s/cpuinfo has no vendor_id line", cfg->proc_root);
  g_clear_error(&error);

  ctx->cmdline = hc_read_value(cfg->proc_root, "cmdline", &error);
  if (ctx->cmdline == NULL)
    ctx->cmdline_error = g_strdup(error->message);
  g_clear_error(&error);

  ctx->iommu_active = lcvm_pci_iommu_active(cfg->sysfs_root);

  g_autofree char *log = read_kmsg(cfg->dev_root, &error);
  if (log == NULL)
    ctx->kmsg_error = g_strdup(error->message);
  else
    ctx->kmsg = lcvm_kmsg_messages(log, strlen(log));
}

static gboolean
require_dir(const char *key, const char *path, GError **error)
{
  if (g_file_test(path, G_FILE_TEST_IS_DIR))
    return TRUE;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
              "paths.%s = %s is not a directory: fix the configuration (or mount %s)", key, path,
              path);
  return FALSE;
}

static void
check_free(gpointer p)
{
  LcvmCheck *c = p;
  g_free(c->id);
  g_free(c->title);
  g_free(c->observed);
  g_free(c->expected);
  g_free(c->remedy);
  g_free(c);
}

LcvmCheckReport *
lcvm_hostcheck_run(const LcvmConfig *config, const LcvmHostcheckOptions *options, GError **error)
{
  if (!require_dir("proc_root", config->proc_root, error) ||
      !require_dir("sysfs_root", config->sysfs_root, error))
    return NULL;
  g_autoptr(LcvmCheckReport) report = g_new0(LcvmCheckReport, 1);
  report->checks = g_ptr_array_new_with_free_func(check_free);
  HostCtx ctx = { .config = config, .options = options, .report = report };
  gather_facts(&ctx);

  hc_check_known_good(&ctx);
  hc_check_platform(&ctx);
  hc_check_kernel(&ctx);
  hc_check_vfio(&ctx);
  hc_check_gpus(&ctx);
  hc_check_gpu_modes(&ctx);
  hc_check_qemu(&ctx);
  hc_check_services(&ctx);
  hc_check_image_known_good(&ctx);
  hc_check_qcnl(&ctx);

  lcvm_cpuinfo_clear(&ctx.cpu);
  g_free(ctx.cpu_error);
  g_free(ctx.cmdline);
  g_free(ctx.cmdline_error);
  g_clear_pointer(&ctx.kmsg, g_ptr_array_unref);
  g_free(ctx.kmsg_error);
  lcvm_known_good_free(ctx.known_good);
  g_free(ctx.known_good_error);
  return g_steal_pointer(&report);
}

const char *
lcvm_check_status_name(LcvmCheckStatus status)
{
  switch (status) {
  case LCVM_CHECK_OK:
    return "ok";
  case LCVM_CHECK_WARN:
    return "warn";
  case LCVM_CHECK_FAIL:
    return "fail";
  case LCVM_CHECK_UNKNOWN:
    return "unknown";
  case LCVM_CHECK_SKIP:
    return "skip";
  }
  return "unknown";
}

static const char *
fix_name(LcvmCheckFix fix)
{
  switch (fix) {
  case LCVM_FIX_NONE:
    return NULL;
  case LCVM_FIX_LOAD_VFIO_MODULES:
    return "load-vfio-modules";
  case LCVM_FIX_DMA_ENTRY_LIMIT:
    return "set-dma-entry-limit";
  }
  return NULL;
}

guint
lcvm_check_report_count(const LcvmCheckReport *report, LcvmCheckStatus status)
{
  guint n = 0;
  for (guint i = 0; i < report->checks->len; i++)
    n += ((LcvmCheck *)g_ptr_array_index(report->checks, i))->status == status;
  return n;
}

gboolean
lcvm_check_report_ready(const LcvmCheckReport *report)
{
  return lcvm_check_report_count(report, LCVM_CHECK_FAIL) == 0;
}

static void
add_check_json(JsonBuilder *b, const LcvmCheck *c)
{
  json_builder_begin_object(b);
  lcvm_json_add_string_or_null(b, "id", c->id);
  lcvm_json_add_string_or_null(b, "title", c->title);
  lcvm_json_add_string_or_null(b, "status", lcvm_check_status_name(c->status));
  lcvm_json_add_string_or_null(b, "observed", c->observed);
  lcvm_json_add_string_or_null(b, "expected", c->expected);
  lcvm_json_add_string_or_null(b, "remedy", c->remedy);
  lcvm_json_add_string_or_null(b, "fix", fix_name(c->fix));
  json_builder_end_object(b);
}

JsonNode *
lcvm_check_report_to_json(const LcvmCheckReport *report, gboolean deep_requested)
{
  static const LcvmCheckStatus all[] = { LCVM_CHECK_OK, LCVM_CHECK_WARN, LCVM_CHECK_FAIL,
                                         LCVM_CHECK_UNKNOWN, LCVM_CHECK_SKIP };
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  lcvm_json_add_string_or_null(b, "version", LCVM_VERSION);
  json_builder_set_member_name(b, "ready");
  json_builder_add_boolean_value(b, lcvm_check_report_ready(report));
  json_builder_set_member_name(b, "summary");
  json_builder_begin_object(b);
  for (gsize i = 0; i < G_N_ELEMENTS(all); i++) {
    json_builder_set_member_name(b, lcvm_check_status_name(all[i]));
    json_builder_add_int_value(b, lcvm_check_report_count(report, all[i]));
  }
  json_builder_end_object(b);
  json_builder_set_member_name(b, "deep");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "requested");
  json_builder_add_boolean_value(b, deep_requested);
  json_builder_set_member_name(b, "available");
  json_builder_begin_array(b);
  for (const char *const *d = deep_checks; *d != NULL; d++)
    json_builder_add_string_value(b, *d);
  json_builder_end_array(b);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "checks");
  json_builder_begin_array(b);
  for (guint i = 0; i < report->checks->len; i++)
    add_check_json(b, g_ptr_array_index(report->checks, i));
  json_builder_end_array(b);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

void
lcvm_check_report_free(LcvmCheckReport *report)
{
  if (report == NULL)
    return;
  g_ptr_array_unref(report->checks);
  g_free(report);
}
