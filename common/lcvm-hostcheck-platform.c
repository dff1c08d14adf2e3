/* SPDX-License-Identifier: MIT */
/* Host check, platform area: CPU (vendor, generation, tdx_host_platform), KVM (/dev/kvm,
 * kvm_intel's tdx parameter), the TDX module as the kernel log reports it, SGX device nodes.
 * The kernel log is only read, and a log we may not read gives "unknown", never "fail". */
#include "lcvm-hostcheck-private.h"
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIOS_TDX_REMEDY                                                                            \
  "in BIOS set: Memory Encryption (TME) = Enable, TME-MT = Enable, Trust Domain Extension "        \
  "(TDX) = Enable, TDX SEAM Loader = Enable, TME-MT/TDX key split = a non-zero value, Limit "      \
  "CPU Physical Address to 46 bits = Disable; boot with nohibernate; then check 'sudo dmesg | "    \
  "grep virt/tdx'"

#define TDX_MODULE_UPDATE                                                                          \
  "update the BIOS, or copy Intel's signed intel_tdx_module.so to "                                \
  "/boot/efi/EFI/TDX/TDX-SEAM.so (and its .sigstruct to TDX-SEAM.so.sigstruct) and reboot"

/* Kernel log strings that explain why TDX did not come up, most specific first. */
static const struct {
  const char *needle;
  const char *remedy;
} tdx_failures[] = {
  { "too few private KeyIDs", "in BIOS set 'TME-MT/TDX key split' to a non-zero value" },
  { "Hibernation support is enabled", HC_GRUB_REMEDY("nohibernate") },
  { "virt/tdx: module not loaded",
    "in BIOS enable 'Trust Domain Extension (TDX)' and 'TDX SEAM Loader'; if both are on, the "
    "BIOS carries no TDX module: " TDX_MODULE_UPDATE },
  { "clobber bug present", "the TDX module is too old: " TDX_MODULE_UPDATE },
  { "initialization failed", "the TDX module failed to initialise (too old or unsupported by "
                             "this kernel): " TDX_MODULE_UPDATE },
  { "x86/tme: not enabled by BIOS",
    "in BIOS enable 'Memory Encryption (TME)' and 'TME-MT', and set 'Limit CPU Physical Address "
    "to 46 bits' = Disable (it greys out TME-MT)" },
};

static gboolean
is_intel(const HostCtx *ctx)
{
  return ctx->cpu_error == NULL && g_strcmp0(ctx->cpu.vendor, "GenuineIntel") == 0;
}

/* Known not to be Intel (an unreadable cpuinfo is not proof of that). */
static gboolean
not_intel(const HostCtx *ctx)
{
  return ctx->cpu_error == NULL && !is_intel(ctx);
}

static const char *
tdx_failure_remedy(const HostCtx *ctx, const char **message)
{
  for (gsize i = 0; i < G_N_ELEMENTS(tdx_failures); i++) {
    const char *m = hc_kmsg_find(ctx, tdx_failures[i].needle);
    if (m != NULL && (strstr(m, "tdx") != NULL || strstr(m, "tme") != NULL)) {
      *message = m;
      return tdx_failures[i].remedy;
    }
  }
  return NULL;
}

static void
check_cpu_vendor(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "cpu.vendor", "CPU vendor", "GenuineIntel (Intel Xeon with TDX)");
  if (ctx->cpu_error != NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", ctx->cpu_error);
    hc_remedy(c, "make %s/cpuinfo readable", ctx->config->proc_root);
    return;
  }
  if (is_intel(ctx)) {
    hc_set(c, LCVM_CHECK_OK, "GenuineIntel (%s)", ctx->cpu.model_name ? ctx->cpu.model_name : "?");
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s (%s)", ctx->cpu.vendor,
         ctx->cpu.model_name ? ctx->cpu.model_name : "?");
  hc_remedy(c, "TDX needs an Intel Xeon: 4th Gen Scalable (Sapphire Rapids, XCC/MCC SKUs), 5th "
               "Gen (Emerald Rapids) or Xeon 6 (Granite Rapids); use such a host");
}

static const char *
generation_name(guint model)
{
  switch (model) {
  case 143:
    return "Sapphire Rapids";
  case 207:
    return "Emerald Rapids";
  case 173:
  case 174:
    return "Granite Rapids";
  case 175:
    return "Sierra Forest";
  default:
    return NULL;
  }
}

static void
check_cpu_generation(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "cpu.generation", "CPU generation",
                        "Sapphire Rapids (XCC/MCC), Emerald Rapids or Granite Rapids");
  if (ctx->cpu_error != NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", ctx->cpu_error);
    return;
  }
  if (!is_intel(ctx)) {
    hc_set(c, LCVM_CHECK_SKIP, "not an Intel CPU (see cpu.vendor)");
    return;
  }
  const char *name = ctx->cpu.family == 6 ? generation_name(ctx->cpu.model) : NULL;
  gboolean tdx = lcvm_cpuinfo_has_flag(&ctx->cpu, "tdx_host_platform");
  if (name != NULL && (ctx->cpu.model != 143 || tdx)) {
    hc_set(c, LCVM_CHECK_OK, "%s (family %u model %u)", name, ctx->cpu.family, ctx->cpu.model);
    return;
  }
  if (name != NULL) {
    hc_set(c, LCVM_CHECK_WARN, "%s (family %u model %u): TDX only on XCC/MCC SKUs", name,
           ctx->cpu.family, ctx->cpu.model);
    hc_remedy(c, "confirm with the server vendor that this SKU (%s) supports TDX",
              ctx->cpu.model_name ? ctx->cpu.model_name : "?");
    return;
  }
  hc_set(c, tdx ? LCVM_CHECK_OK : LCVM_CHECK_WARN, "family %u model %u (%s)%s", ctx->cpu.family,
         ctx->cpu.model, ctx->cpu.model_name ? ctx->cpu.model_name : "?",
         tdx ? "; TDX is up" : ": not a generation known to support TDX");
  if (!tdx)
    hc_remedy(c, "check on ark.intel.com that %s supports Intel TDX",
              ctx->cpu.model_name ? ctx->cpu.model_name : "this CPU");
}

static void
check_tdx_host_platform(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "cpu.tdx_host_platform", "TDX enabled by BIOS and kernel",
                        "flag tdx_host_platform in cpuinfo");
  if (ctx->cpu_error != NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", ctx->cpu_error);
    return;
  }
  if (lcvm_cpuinfo_has_flag(&ctx->cpu, "tdx_host_platform")) {
    hc_set(c, LCVM_CHECK_OK, "tdx_host_platform present");
    return;
  }
  if (lcvm_cpuinfo_has_flag(&ctx->cpu, "tdx_guest")) {
    hc_set(c, LCVM_CHECK_FAIL, "tdx_guest: this machine is itself a TDX guest");
    hc_remedy(c, "run lium-cvm on the TDX host, not inside a TD");
    return;
  }
  if (!is_intel(ctx)) {
    hc_set(c, LCVM_CHECK_FAIL, "absent (%s CPU)", ctx->cpu.vendor);
    hc_remedy(c, "TDX needs an Intel Xeon host (see cpu.vendor)");
    return;
  }
  const char *message = NULL;
  const char *remedy = tdx_failure_remedy(ctx, &message);
  if (remedy != NULL) {
    hc_set(c, LCVM_CHECK_FAIL, "absent; kernel log: %s", message);
    hc_remedy(c, "%s", remedy);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "absent%s", ctx->kmsg ? "" : " (kernel log not readable)");
  hc_remedy(c, BIOS_TDX_REMEDY);
}

static void
check_kvm_device(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "kvm.device", "/dev/kvm", "a character device");
  g_autofree char *path = lcvm_config_path(ctx->config->dev_root, "kvm");
  struct stat st;
  if (stat(path, &st) == 0 && S_ISCHR(st.st_mode)) {
    hc_set(c, LCVM_CHECK_OK, "%s present", path);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s %s", path,
         access(path, F_OK) == 0 ? "is not a character device" : "missing");
  hc_remedy(c, "enable Intel Virtualization Technology (VT-x) in BIOS, then: sudo modprobe "
               "kvm_intel");
}

/* kvm_intel's own explanation for tdx=N, when the log has one. */
static const char *
kvm_tdx_reason(const HostCtx *ctx)
{
  static const char *const needles[] = { "is required for TDX",   "TDX not supported",
                                         "no TDX private KeyIDs", "tdx requires",
                                         "Disable TDX",           NULL };
  for (guint i = 0; needles[i] != NULL; i++) {
    const char *m = hc_kmsg_find(ctx, needles[i]);
    if (m != NULL)
      return m;
  }
  return NULL;
}

static void
check_kvm_tdx(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "kvm.tdx", "kvm_intel TDX support", "kvm_intel parameter tdx = Y");
  const char *sys = ctx->config->sysfs_root;
  if (!hc_exists(sys, "module/kvm_intel")) {
    hc_set(c, LCVM_CHECK_FAIL, "kvm_intel is not loaded");
    hc_remedy(c, "enable VT-x in BIOS, then: sudo modprobe kvm_intel tdx=1 (and " HC_GRUB_REMEDY(
                     "kvm_intel.tdx=1") ")");
    return;
  }
  g_autoptr(GError) error = NULL;
  g_autofree char *value = hc_read_value(sys, "module/kvm_intel/parameters/tdx", &error);
  if (value == NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
    hc_set(c, LCVM_CHECK_FAIL, "this kernel's kvm_intel has no tdx parameter");
    hc_remedy(c, "install a TDX host kernel (6.14.0-1009-intel is tested; or mainline >= 6.16) "
                 "and reboot into it");
    return;
  }
  if (value == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", error->message);
    return;
  }
  if (g_str_equal(value, "Y") || g_str_equal(value, "1")) {
    hc_set(c, LCVM_CHECK_OK, "tdx=%s", value);
    return;
  }
  const char *reason = kvm_tdx_reason(ctx);
  hc_set(c, LCVM_CHECK_FAIL, "tdx=%s%s%s", value, reason ? "; kernel log: " : "",
         reason ? reason : "");
  if (!lcvm_cpuinfo_has_flag(&ctx->cpu, "tdx_host_platform"))
    hc_remedy(c, "first make TDX itself work (see cpu.tdx_host_platform); then " HC_GRUB_REMEDY(
                     "kvm_intel.tdx=1"));
  else
    hc_remedy(c, HC_GRUB_REMEDY("kvm_intel.tdx=1") "; if it is already there, the kernel log "
                                                   "line above says which prerequisite failed");
}

static gboolean
tdx_message_initialized(const char *m)
{
  return (strstr(m, "virt/tdx: module initialized") != NULL ||
          strstr(m, "TDX-Module initialized") != NULL);
}

static void
check_tdx_module(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "tdx.module", "TDX module initialised",
                        "kernel log: virt/tdx: module initialized");
  if (not_intel(ctx)) {
    hc_set(c, LCVM_CHECK_SKIP, "not an Intel CPU (see cpu.vendor)");
    return;
  }
  if (ctx->kmsg == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "kernel log not readable: %s", ctx->kmsg_error);
    hc_remedy(c, "check by hand: sudo dmesg | grep virt/tdx (the last line must say 'module "
                 "initialized')");
    return;
  }
  for (guint i = ctx->kmsg->len; i > 0; i--) {
    const char *m = g_ptr_array_index(ctx->kmsg, i - 1);
    if (tdx_message_initialized(m)) {
      hc_set(c, LCVM_CHECK_OK, "%s", m);
      return;
    }
  }
  const char *message = NULL;
  const char *remedy = tdx_failure_remedy(ctx, &message);
  if (remedy != NULL) {
    hc_set(c, LCVM_CHECK_FAIL, "%s", message);
    hc_remedy(c, "%s", remedy);
    return;
  }
  hc_set(c, LCVM_CHECK_UNKNOWN, "no virt/tdx message in the kernel log (it may have wrapped)");
  hc_remedy(c, "check by hand: sudo journalctl -k -b | grep virt/tdx");
}

static void
check_tdx_module_version(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "tdx.module.version", "TDX module version",
                        "at least the known-good list's minimum build of its series");
  if (not_intel(ctx)) {
    hc_set(c, LCVM_CHECK_SKIP, "not an Intel CPU (see cpu.vendor)");
    return;
  }
  if (ctx->kmsg == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "kernel log not readable: %s", ctx->kmsg_error);
    hc_remedy(c, "check by hand: sudo dmesg | grep -i 'tdx module'");
    return;
  }
  LcvmTdxVersion v = { 0 };
  gboolean found = FALSE;
  for (guint i = ctx->kmsg->len; i > 0 && !found; i--) {
    const char *m = g_ptr_array_index(ctx->kmsg, i - 1);
    found = strstr(m, "tdx") != NULL && lcvm_tdx_version_parse(m, &v);
  }
  if (!found && !lcvm_cpuinfo_has_flag(&ctx->cpu, "tdx_host_platform")) {
    hc_set(c, LCVM_CHECK_SKIP, "no TDX module is running (see cpu.tdx_host_platform)");
    return;
  }
  if (!found) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "the kernel printed no TDX module version");
    hc_remedy(c, "newer kernels print none: the TD quote's tee_tcb_svn shows the module's TCB");
    return;
  }
  g_autofree char *version = v.have_update
                                 ? g_strdup_printf("%u.%u.%02u", v.major, v.minor, v.update)
                                 : g_strdup_printf("%u.%u", v.major, v.minor);
  if (ctx->known_good == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN,
           "%s build %" G_GUINT64_FORMAT "; no known-good list to judge it "
           "by (%s)",
           version, v.build_num, ctx->known_good_error);
    return;
  }
  if (v.major == ctx->known_good->tdx_min_major && v.build_num == 0) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s (no build number printed)", version);
    hc_remedy(c, "the TD quote's tee_tcb_svn shows the module's TCB");
    return;
  }
  g_autofree char *reason = NULL;
  if (lcvm_known_good_tdx_module(ctx->known_good, &v, &reason) == LCVM_KNOWN_GOOD_ACCEPTED) {
    hc_set(c, LCVM_CHECK_OK, "%s build %" G_GUINT64_FORMAT "%s%s%s", version, v.build_num,
           reason ? " (" : "", reason ? reason : "", reason ? ")" : "");
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s", reason);
  hc_remedy(c, "%s", TDX_MODULE_UPDATE);
}

static void
check_sgx_devices(HostCtx *ctx)
{
  LcvmCheck *c =
      hc_add(ctx, "sgx.devices", "SGX device nodes", "/dev/sgx_enclave and /dev/sgx_provision");
  const char *dev = ctx->config->dev_root;
  gboolean enclave = hc_exists(dev, "sgx_enclave");
  gboolean provision = hc_exists(dev, "sgx_provision");
  if (enclave && provision) {
    hc_set(c, LCVM_CHECK_OK, "both present");
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s%s%s; cpu flag sgx %s", enclave ? "" : "sgx_enclave missing",
         !enclave && !provision ? ", " : "", provision ? "" : "sgx_provision missing",
         lcvm_cpuinfo_has_flag(&ctx->cpu, "sgx") ? "present" : "absent");
  hc_remedy(c, "in BIOS set SW Guard Extensions (SGX) = Enable (PRM size Auto, SGX Auto MP "
               "Registration = Enable), then power the machine off and on (cold boot); if they "
               "are still missing, set 'SGX Factory Reset' = Enable once");
}

void
hc_check_platform(HostCtx *ctx)
{
  check_cpu_vendor(ctx);
  check_cpu_generation(ctx);
  check_tdx_host_platform(ctx);
  check_kvm_device(ctx);
  check_kvm_tdx(ctx);
  check_tdx_module(ctx);
  check_tdx_module_version(ctx);
  check_sgx_devices(ctx);
}
