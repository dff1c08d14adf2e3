/* SPDX-License-Identifier: MIT */
/* The host check's parsers, on literal input (the checks themselves run against fake hosts
 * in tests/hostcheck/). */
#include "lcvm-hostcheck-parse.h"
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/vm_sockets_diag.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

static void
cpuinfo_reads_the_first_processor_only(void)
{
  const char *text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\n"
                     "model name\t: Intel(R) Xeon(R) Platinum 8580\n"
                     "flags\t\t: fpu vmx sgx tdx_host_platform\nbugs\t\t: tdx_pw_mce\n\n"
                     "processor\t: 1\nvendor_id\t: Other\nflags\t\t: fpu\n";
  LcvmCpuInfo info;
  g_assert_true(lcvm_cpuinfo_parse(text, &info));
  g_assert_cmpstr(info.vendor, ==, "GenuineIntel");
  g_assert_cmpuint(info.family, ==, 6);
  g_assert_cmpuint(info.model, ==, 207);
  g_assert_true(lcvm_cpuinfo_has_flag(&info, "tdx_host_platform"));
  g_assert_false(lcvm_cpuinfo_has_flag(&info, "tdx_pw_mce")); /* a bug, not a flag */
  g_assert_false(lcvm_cpuinfo_has_flag(&info, "tdx"));
  lcvm_cpuinfo_clear(&info);
}

static void
cpuinfo_without_vendor_is_refused(void)
{
  LcvmCpuInfo info;
  g_assert_false(lcvm_cpuinfo_parse("processor : 0\n", &info));
  lcvm_cpuinfo_clear(&info);
}

static void
cmdline_last_occurrence_wins(void)
{
  const char *cmd = "ro intel_iommu=off quiet intel_iommu=on nohibernate iommu=pt";
  g_autofree char *iommu = lcvm_cmdline_lookup(cmd, "intel_iommu");
  g_autofree char *flag = lcvm_cmdline_lookup(cmd, "nohibernate");
  g_autofree char *absent = lcvm_cmdline_lookup(cmd, "kvm_intel.tdx");
  g_autofree char *prefix = lcvm_cmdline_lookup(cmd, "iommu");
  g_assert_cmpstr(iommu, ==, "on");
  g_assert_cmpstr(flag, ==, "");
  g_assert_null(absent);
  g_assert_cmpstr(prefix, ==, "pt"); /* "intel_iommu" is not "iommu" */
}

static void
cmdline_stops_at_double_dash(void)
{
  g_autofree char *v = lcvm_cmdline_lookup("quiet -- nohibernate", "nohibernate");
  g_assert_null(v);
}

static void
kmsg_records_and_dmesg_text_give_messages(void)
{
  const char *kmsg = "6,1,100,-;virt/tdx: module initialized\n SUBSYSTEM=virt\n"
                     "4,2,200,-,caller=T1;kvm_intel: TDX not supported by the host platform\n";
  g_autoptr(GPtrArray) m = lcvm_kmsg_messages(kmsg, strlen(kmsg));
  g_assert_cmpuint(m->len, ==, 2);
  g_assert_cmpstr(m->pdata[0], ==, "virt/tdx: module initialized");
  g_assert_cmpstr(m->pdata[1], ==, "kvm_intel: TDX not supported by the host platform");

  const char *dmesg = "[    1.234567] virt/tdx: module initialized\n";
  g_autoptr(GPtrArray) d = lcvm_kmsg_messages(dmesg, strlen(dmesg));
  g_assert_cmpuint(d->len, ==, 1);
  g_assert_cmpstr(d->pdata[0], ==, "virt/tdx: module initialized");
}

static void
tdx_version_in_all_three_kernel_formats(void)
{
  LcvmTdxVersion v;
  g_assert_true(lcvm_tdx_version_parse("virt/tdx: TDX module: attributes 0x0, vendor_id 0x8086, "
                                       "major_version 1, minor_version 5, build_date 20230323, "
                                       "build_num 481",
                                       &v));
  g_assert_cmpuint(v.major, ==, 1);
  g_assert_cmpuint(v.minor, ==, 5);
  g_assert_cmpuint(v.build_num, ==, 481);

  g_assert_true(lcvm_tdx_version_parse("virt/tdx: TDX module 2.0.8, build number 882, build date "
                                       "20250101",
                                       &v));
  g_assert_cmpuint(v.major, ==, 2);
  g_assert_cmpuint(v.update, ==, 8);
  g_assert_cmpuint(v.build_num, ==, 882);

  g_assert_true(lcvm_tdx_version_parse("virt/tdx: Module version: 2.0.18", &v));
  g_assert_cmpuint(v.major, ==, 2);
  g_assert_cmpuint(v.update, ==, 18);
  g_assert_cmpuint(v.build_num, ==, 0);

  g_assert_false(lcvm_tdx_version_parse("virt/tdx: module initialized", &v));
}

static void
client_conf_takes_the_last_qemu_path(void)
{
  const char *text = "[image]\npath = /images\n[qemu]\n# path = /commented\npath = /a/qemu\n"
                     "[qemu]\npath = \"/opt/qemu-dstack/bin/qemu-system-x86_64\"\n[other]\n"
                     "path = /not/qemu\n";
  g_autofree char *path = lcvm_client_conf_qemu_path(text);
  g_assert_cmpstr(path, ==, "/opt/qemu-dstack/bin/qemu-system-x86_64");
  g_autofree char *none = lcvm_client_conf_qemu_path("[image]\npath = /x\n");
  g_assert_null(none);
}

static void
kernel_release_major_minor(void)
{
  guint major, minor;
  g_assert_true(lcvm_kernel_release_parse("6.14.0-1009-intel", &major, &minor));
  g_assert_cmpuint(major, ==, 6);
  g_assert_cmpuint(minor, ==, 14);
  g_assert_false(lcvm_kernel_release_parse("intel-6", &major, &minor));
}

/* Appends one netlink message to buf at *off. */
static void
put_msg(guint8 *buf, gsize *off, guint16 type, const void *payload, gsize len)
{
  struct nlmsghdr *h = (struct nlmsghdr *)(buf + *off);
  h->nlmsg_len = NLMSG_LENGTH(len);
  h->nlmsg_type = type;
  memcpy(NLMSG_DATA(h), payload, len);
  *off += NLMSG_ALIGN(h->nlmsg_len);
}

static void
vsock_dump_finds_the_listener(void)
{
  guint8 buf[512] = { 0 };
  gsize off = 0;
  struct vsock_diag_msg other = { .vdiag_family = AF_VSOCK,
                                  .vdiag_state = TCP_LISTEN,
                                  .vdiag_src_port = 1234 };
  struct vsock_diag_msg qgs = { .vdiag_family = AF_VSOCK,
                                .vdiag_state = TCP_LISTEN,
                                .vdiag_src_port = 4050 };
  int zero = 0;
  put_msg(buf, &off, SOCK_DIAG_BY_FAMILY, &other, sizeof(other));
  gboolean listening = FALSE, done = FALSE;
  g_assert_true(lcvm_vsock_dump_scan(buf, off, 4050, &listening, &done, NULL));
  g_assert_false(listening);
  put_msg(buf, &off, SOCK_DIAG_BY_FAMILY, &qgs, sizeof(qgs));
  put_msg(buf, &off, NLMSG_DONE, &zero, sizeof(zero));
  g_assert_true(lcvm_vsock_dump_scan(buf, off, 4050, &listening, &done, NULL));
  g_assert_true(listening);
  g_assert_true(done);
}

static void
vsock_dump_error_is_reported(void)
{
  guint8 buf[128] = { 0 };
  gsize off = 0;
  struct nlmsgerr e = { .error = -2 };
  put_msg(buf, &off, NLMSG_ERROR, &e, sizeof(e));
  gboolean listening = FALSE, done = FALSE;
  g_autoptr(GError) error = NULL;
  g_assert_false(lcvm_vsock_dump_scan(buf, off, 4050, &listening, &done, &error));
  g_assert_nonnull(error);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/hostcheck/cpuinfo/reads-the-first-processor-only",
                  cpuinfo_reads_the_first_processor_only);
  g_test_add_func("/hostcheck/cpuinfo/without-vendor-is-refused",
                  cpuinfo_without_vendor_is_refused);
  g_test_add_func("/hostcheck/cmdline/last-occurrence-wins", cmdline_last_occurrence_wins);
  g_test_add_func("/hostcheck/cmdline/stops-at-double-dash", cmdline_stops_at_double_dash);
  g_test_add_func("/hostcheck/kmsg/records-and-dmesg-text-give-messages",
                  kmsg_records_and_dmesg_text_give_messages);
  g_test_add_func("/hostcheck/tdx-version/all-three-kernel-formats",
                  tdx_version_in_all_three_kernel_formats);
  g_test_add_func("/hostcheck/client-conf/takes-the-last-qemu-path",
                  client_conf_takes_the_last_qemu_path);
  g_test_add_func("/hostcheck/kernel-release/major-minor", kernel_release_major_minor);
  g_test_add_func("/hostcheck/vsock/dump-finds-the-listener", vsock_dump_finds_the_listener);
  g_test_add_func("/hostcheck/vsock/dump-error-is-reported", vsock_dump_error_is_reported);
  return g_test_run();
}
