/* SPDX-License-Identifier: MIT */
/* Shared between the host check's area files (lcvm-hostcheck-<area>.c): the context every
 * check reads through, and the helpers that add results. Not for use outside the check. */
#pragma once
#include "lcvm-hostcheck-parse.h"
#include "lcvm-hostcheck.h"
#include "lcvm-known-good.h"

typedef struct {
  const LcvmConfig *config;
  const LcvmHostcheckOptions *options;
  LcvmCheckReport *report;
  /* Facts read once and used by several checks. */
  LcvmCpuInfo cpu;
  char *cpu_error; /* NULL when cpu is valid */
  char *cmdline;   /* NULL when unreadable */
  char *cmdline_error;
  GPtrArray *kmsg; /* kernel log messages; NULL when unreadable */
  char *kmsg_error;
  gboolean iommu_active;
  LcvmKnownGood *known_good; /* NULL when unreadable (known_good_error says why) */
  char *known_good_error;
} HostCtx;

/* Reads root/rel whole (at most 1 MiB). */
char *hc_read(const char *root, const char *rel, GError **error);
/* Same, stripped of surrounding white space. */
char *hc_read_value(const char *root, const char *rel, GError **error);
/* TRUE when root/rel exists (following symlinks). */
gboolean hc_exists(const char *root, const char *rel);

/* Adds a check with the given id; its status starts as unknown. */
LcvmCheck *hc_add(HostCtx *ctx, const char *id, const char *title, const char *expected);
void hc_set(LcvmCheck *c, LcvmCheckStatus status, const char *observed_fmt, ...)
    G_GNUC_PRINTF(3, 4);
void hc_remedy(LcvmCheck *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* The kernel log message containing needle (last one), or NULL. */
const char *hc_kmsg_find(const HostCtx *ctx, const char *needle);

/* "Add TOKEN to GRUB_CMDLINE_LINUX_DEFAULT …" */
#define HC_GRUB_REMEDY(token)                                                                      \
  "add " token " to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, then run: "                   \
  "sudo update-grub && sudo reboot"

/* Areas, in report order. */
void hc_check_known_good(HostCtx *ctx); /* lcvm-hostcheck-knowngood.c; loads ctx->known_good */
void hc_check_platform(HostCtx *ctx);
void hc_check_kernel(HostCtx *ctx);
void hc_check_vfio(HostCtx *ctx);
void hc_check_gpus(HostCtx *ctx);
void hc_check_gpu_modes(HostCtx *ctx); /* lcvm-hostcheck-gpumode.c */
void hc_check_qemu(HostCtx *ctx);
void hc_check_services(HostCtx *ctx);
void hc_check_qcnl(HostCtx *ctx);             /* lcvm-hostcheck-qcnl.c */
void hc_check_image_known_good(HostCtx *ctx); /* lcvm-hostcheck-knowngood.c */
