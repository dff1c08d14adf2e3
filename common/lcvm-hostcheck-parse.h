/* SPDX-License-Identifier: MIT */
/* Parsers for the text and binary formats the host check reads: /proc/cpuinfo, the kernel
 * command line, the kernel log (/dev/kmsg records or dmesg text), the TDX module version
 * lines, dstack's client.conf and a vsock sock_diag dump. Pure functions
 * on buffers: nothing here opens a file, so each can be tested with literal input. */
#pragma once
#include <glib.h>

typedef struct {
  char *vendor;     /* vendor_id */
  char *model_name; /* model name */
  guint family;
  guint model;
  gboolean have_model;
  GStrv flags;
  GStrv bugs;
} LcvmCpuInfo;

/* Parses the first processor block of /proc/cpuinfo (the flags are the same on every CPU).
 * FALSE when there is no vendor_id line. */
gboolean lcvm_cpuinfo_parse(const char *text, LcvmCpuInfo *out);
gboolean lcvm_cpuinfo_has_flag(const LcvmCpuInfo *info, const char *flag);
void lcvm_cpuinfo_clear(LcvmCpuInfo *info);

/* The value of the last occurrence of key on a kernel command line ("" for a bare flag),
 * or NULL when absent. Words after a lone "--" belong to init and are ignored. */
char *lcvm_cmdline_lookup(const char *cmdline, const char *key);

/* The messages of a kernel log: /dev/kmsg records ("PRI,SEQ,TS,FLAGS;text", continuation
 * lines dropped) or dmesg text ("[  1.23] text"). Returns an array of strings. */
GPtrArray *lcvm_kmsg_messages(const char *data, gsize len);

typedef struct {
  guint major;
  guint minor;
  guint update;
  gboolean have_update;
  guint64 build_num; /* 0: not printed */
} LcvmTdxVersion;

/* Reads a TDX module version from one kernel log message, in any of the three formats
 * kernels print: "major_version N, minor_version N, … build_num N" (TDX 1.0 kernels),
 * "TDX module X.Y.Z, build number N, …" and "Module version: X.Y.ZZ" (upstream). */
gboolean lcvm_tdx_version_parse(const char *message, LcvmTdxVersion *out);

/* The last "path = …" in the [qemu] section of a dstack client.conf, or NULL. */
char *lcvm_client_conf_qemu_path(const char *text);

/* "6.14.0-1009-intel" → 6, 14. */
gboolean lcvm_kernel_release_parse(const char *release, guint *major, guint *minor);

/* Walks a NETLINK_SOCK_DIAG reply for AF_VSOCK. Sets *listening when a socket is in the
 * listen state on port, *done on NLMSG_DONE. FALSE (with error) on NLMSG_ERROR. */
gboolean lcvm_vsock_dump_scan(const void *buf, gsize len, guint32 port, gboolean *listening,
                              gboolean *done, GError **error);
