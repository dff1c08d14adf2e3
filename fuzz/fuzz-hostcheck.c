/* SPDX-License-Identifier: MIT */
/* The text and binary parsers of `lium-cvm check` (common/lcvm-hostcheck-parse.c): the first
 * byte picks the parser, the rest is its input (/proc/cpuinfo, a kernel command line, the
 * kernel log, a TDX module version line, a dstack client.conf, a kernel release, a sock_diag
 * dump). */
#include "fuzz.h"
#include "lcvm-hostcheck-parse.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  guint8 which = data[0] % 7;
  data++, size--;
  g_autofree char *text = fuzz_text(data, size);
  switch (which) {
  case 0: {
    LcvmCpuInfo info = { 0 };
    if (lcvm_cpuinfo_parse(text, &info))
      lcvm_cpuinfo_has_flag(&info, "tdx_guest");
    lcvm_cpuinfo_clear(&info);
    break;
  }
  case 1: {
    g_autofree char *v = lcvm_cmdline_lookup(text, "kvm_intel.tdx");
    g_autofree char *w = lcvm_cmdline_lookup(text, "intel_iommu");
    break;
  }
  case 2: {
    g_autoptr(GPtrArray) messages = lcvm_kmsg_messages((const char *)data, size);
    for (guint i = 0; messages != NULL && i < messages->len; i++) {
      LcvmTdxVersion v;
      lcvm_tdx_version_parse(messages->pdata[i], &v);
    }
    break;
  }
  case 3: {
    LcvmTdxVersion v;
    lcvm_tdx_version_parse(text, &v);
    break;
  }
  case 4: {
    g_autofree char *path = lcvm_client_conf_qemu_path(text);
    break;
  }
  case 5: {
    guint major, minor;
    lcvm_kernel_release_parse(text, &major, &minor);
    break;
  }
  case 6: {
    gboolean listening = FALSE, done = FALSE;
    g_autoptr(GError) error = NULL;
    /* recv() fills an aligned buffer; the input after the selector byte is not aligned. */
    g_autofree void *aligned = g_memdup2(data, size);
    lcvm_vsock_dump_scan(aligned, size, 3443, &listening, &done, &error);
    break;
  }
  }
  return 0;
}
