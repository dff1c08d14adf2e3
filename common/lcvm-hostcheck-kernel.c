/* SPDX-License-Identifier: MIT */
/* Host check, kernel area: version against the tested 6.14, the command-line tokens a TDX +
 * VFIO host needs (last occurrence wins, as in the kernel), NUMA possible vs online and 1 GiB
 * hugepages. Remedies name GRUB lines; nothing here edits GRUB. */
#include "lcvm-hostcheck-private.h"
#include <string.h>

#define TESTED_KERNEL "6.14.0-1009-intel"

static void
check_kernel_version(HostCtx *ctx)
{
  LcvmCheck *c =
      hc_add(ctx, "kernel.version", "Kernel version", ">= 6.14 (" TESTED_KERNEL " tested)");
  g_autoptr(GError) error = NULL;
  g_autofree char *release = hc_read_value(ctx->config->proc_root, "sys/kernel/osrelease", &error);
  guint major, minor;
  if (release == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", error->message);
    return;
  }
  if (!lcvm_kernel_release_parse(release, &major, &minor)) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "cannot parse '%s'", release);
    return;
  }
  if (major > 6 || (major == 6 && minor >= 14)) {
    hc_set(c, LCVM_CHECK_OK, "%s", release);
    return;
  }
  hc_set(c, LCVM_CHECK_WARN, "%s is older than the tested " TESTED_KERNEL, release);
  hc_remedy(c, "install Canonical's linux-image-intel (" TESTED_KERNEL " tested) or a mainline "
               "kernel >= 6.16 and reboot into it");
}

/* The command line, or NULL after marking c unknown. */
static const char *
cmdline_or_unknown(HostCtx *ctx, LcvmCheck *c)
{
  if (ctx->cmdline == NULL)
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", ctx->cmdline_error);
  return ctx->cmdline;
}

static void
check_nohibernate(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "kernel.cmdline.nohibernate", "Hibernation off (TDX requires it)",
                        "nohibernate on the kernel command line");
  const char *cmdline = cmdline_or_unknown(ctx, c);
  if (cmdline == NULL)
    return;
  g_autofree char *v = lcvm_cmdline_lookup(cmdline, "nohibernate");
  if (v != NULL) {
    hc_set(c, LCVM_CHECK_OK, "nohibernate");
    return;
  }
  gboolean tdx_up = lcvm_cpuinfo_has_flag(&ctx->cpu, "tdx_host_platform");
  hc_set(c, tdx_up ? LCVM_CHECK_WARN : LCVM_CHECK_FAIL, "absent%s",
         tdx_up ? " (TDX is up, so hibernation is off some other way)" : "");
  hc_remedy(c, HC_GRUB_REMEDY("nohibernate"));
}

static void
check_intel_iommu(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "kernel.cmdline.intel_iommu", "Intel IOMMU on the command line",
                        "intel_iommu=on");
  const char *cmdline = cmdline_or_unknown(ctx, c);
  if (cmdline == NULL)
    return;
  g_autofree char *v = lcvm_cmdline_lookup(cmdline, "intel_iommu");
  if (v != NULL && (g_str_has_prefix(v, "on") || g_str_equal(v, "1"))) {
    hc_set(c, LCVM_CHECK_OK, "intel_iommu=%s", v);
    return;
  }
  if (v == NULL && ctx->iommu_active) {
    hc_set(c, LCVM_CHECK_WARN, "absent; the IOMMU is on by the kernel's default");
    hc_remedy(c, HC_GRUB_REMEDY("intel_iommu=on") " (so a kernel change cannot turn it off)");
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, v ? "intel_iommu=%s" : "absent%s", v ? v : "");
  hc_remedy(c,
            v ? "replace intel_iommu=%s by intel_iommu=on in GRUB_CMDLINE_LINUX_DEFAULT in "
                "/etc/default/grub, then run: sudo update-grub && sudo reboot"
              : HC_GRUB_REMEDY("intel_iommu=on") "%s",
            v ? v : "");
}

static void
check_iommu_pt(HostCtx *ctx)
{
  LcvmCheck *c =
      hc_add(ctx, "kernel.cmdline.iommu_pt", "IOMMU pass-through for host devices", "iommu=pt");
  const char *cmdline = cmdline_or_unknown(ctx, c);
  if (cmdline == NULL)
    return;
  g_autofree char *v = lcvm_cmdline_lookup(cmdline, "iommu");
  if (g_strcmp0(v, "pt") == 0) {
    hc_set(c, LCVM_CHECK_OK, "iommu=pt");
    return;
  }
  hc_set(c, LCVM_CHECK_WARN, v ? "iommu=%s" : "absent%s", v ? v : "");
  hc_remedy(c, HC_GRUB_REMEDY("iommu=pt") " (host devices then skip IOMMU translation)");
}

static void
check_numa(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "numa.nodes", "NUMA nodes possible = online",
                        "/sys/devices/system/node/possible equals online");
  g_autoptr(GError) error = NULL;
  const char *sys = ctx->config->sysfs_root;
  g_autofree char *possible = hc_read_value(sys, "devices/system/node/possible", &error);
  g_autofree char *online =
      possible ? hc_read_value(sys, "devices/system/node/online", &error) : NULL;
  if (online == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", error->message);
    return;
  }
  if (g_str_equal(possible, online)) {
    hc_set(c, LCVM_CHECK_OK, "possible %s, online %s", possible, online);
    return;
  }
  hc_set(c, LCVM_CHECK_WARN, "possible %s, online %s", possible, online);
  hc_remedy(c, "a key provider built on Gramine 1.5 fails load_enclave with EINVAL on this "
               "firmware: use a key provider image built on Gramine >= 1.6 (1.9 tested)");
}

/* TRUE when proc_root/mounts has a hugetlbfs at dir. */
static gboolean
hugetlbfs_mounted(HostCtx *ctx, const char *dir)
{
  g_autofree char *mounts = hc_read(ctx->config->proc_root, "mounts", NULL);
  if (mounts == NULL)
    return FALSE;
  g_auto(GStrv) lines = g_strsplit(mounts, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_auto(GStrv) f = g_strsplit(lines[i], " ", 4);
    if (g_strv_length(f) >= 3 && g_str_equal(f[1], dir) && g_str_equal(f[2], "hugetlbfs"))
      return TRUE;
  }
  return FALSE;
}

static void
check_hugepages(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "memory.hugepages", "1 GiB hugepages (optional)",
                        "if reserved: hugetlbfs mounted at paths.hugepages_dir");
  const char *dir = "kernel/mm/hugepages/hugepages-1048576kB";
  g_autofree char *nr_rel = g_strconcat(dir, "/nr_hugepages", NULL);
  g_autofree char *free_rel = g_strconcat(dir, "/free_hugepages", NULL);
  g_autofree char *nr = hc_read_value(ctx->config->sysfs_root, nr_rel, NULL);
  g_autofree char *nfree = hc_read_value(ctx->config->sysfs_root, free_rel, NULL);
  if (nr == NULL || g_str_equal(nr, "0")) {
    hc_set(c, LCVM_CHECK_SKIP, "none reserved: VMs use ordinary memory");
    return;
  }
  const char *mnt = ctx->config->hugepages_dir;
  if (hugetlbfs_mounted(ctx, mnt)) {
    hc_set(c, LCVM_CHECK_OK, "%s reserved, %s free, hugetlbfs at %s", nr, nfree ? nfree : "?", mnt);
    return;
  }
  hc_set(c, LCVM_CHECK_WARN, "%s reserved, but no hugetlbfs mounted at %s", nr, mnt);
  hc_remedy(c, "sudo mount -t hugetlbfs -o pagesize=1G none %s (and add it to /etc/fstab)", mnt);
}

void
hc_check_kernel(HostCtx *ctx)
{
  check_kernel_version(ctx);
  check_nohibernate(ctx);
  check_intel_iommu(ctx);
  check_iommu_pt(ctx);
  check_numa(ctx);
  check_hugepages(ctx);
}
