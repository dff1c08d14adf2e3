/* SPDX-License-Identifier: MIT */
/* The QEMU argv builder against golden command lines. Every expectation below was written by
 * hand from reference/lium.md §2.3 (the launcher's argv, in order) plus the guest-invisible
 * differences DESIGN §6-7 allows (QMP and serial through fds, -add-fd disks, -sandbox,
 * -m in MiB, format=qcow2, read-only share) — never copied from the builder's output. */
#include "lcvm-error.h"
#include "lcvm-qemu-argv.h"

#include <string.h>

#define QEMU    "/opt/qemu-dstack/bin/qemu-system-x86_64"
#define IMG     "/var/lib/lium-cvm/images/dstack-nvidia-0.5.11"
#define INST    "/var/lib/lium-cvm/instances/vm1"
#define CMDLINE "console=ttyS0 init=/init panic=1 dstack.rootfs_hash=ab12 dstack.rootfs_size=42"

/* The head every TDX guest shares up to -nographic -nodefaults (after -m/-smp). */
#define TDX_MACHINE_ARGS                                                                           \
  "-cpu", "host", "-machine",                                                                      \
      "q35,kernel_irqchip=split,confidential-guest-support=tdx,hpet=off,smm=off", "-object",       \
      "tdx-guest,id=tdx", "-nographic", "-nodefaults"

/* Guest-invisible plumbing, then the image and the share, vsock 1000. */
#define PLUMBING_ARGS                                                                              \
  "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",           \
      "-action", "reboot=shutdown,panic=exit-failure", "-chardev",                                 \
      "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control", "-add-fd",      \
      "set=4,fd=4,opaque=serial.log", "-chardev", "file,id=ser0,path=/dev/fdset/4,append=on",      \
      "-serial", "chardev:ser0"

#define IMAGE_ARGS                                                                                 \
  "-kernel", "/proc/self/fd/8", "-initrd", "/proc/self/fd/9", "-bios", "/proc/self/fd/10",         \
      "-virtfs",                                                                                   \
      "local,path=" INST "/shared,mount_tag=host-shared,readonly=on,security_model=mapped,"        \
      "id=virtfs0"

#define DISK_ARGS                                                                                  \
  "-add-fd", "set=5,fd=5,opaque=" IMG "/rootfs.img.verity", "-drive",                              \
      "file=/dev/fdset/5,if=none,id=virtio-disk0,format=raw,readonly=on", "-device",               \
      "virtio-blk-pci,drive=virtio-disk0", "-add-fd", "set=6,fd=6,opaque=" INST "/hda.img",        \
      "-add-fd", "set=6,fd=7,opaque=" INST "/hda.img", "-drive",                                   \
      "file=/dev/fdset/6,if=none,id=virtio-disk1,format=qcow2", "-device",                         \
      "virtio-blk-pci,drive=virtio-disk1", "-global",                                              \
      "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off", "-global",                              \
      "q35-pcihost.pci-hole64-size=0x100000000000"

#define NET_ONE_FORWARD                                                                            \
  "-device", "virtio-net-pci,netdev=nic0_td", "-netdev",                                           \
      "user,id=nic0_td,hostfwd=tcp:0.0.0.0:2200-:22"

static const LcvmQemuForward one_forward[] = { { "tcp", "0.0.0.0", 2200, 22 } };

static const LcvmQemuDevice eight_gpus[] = {
  { "0000:18:00.0", 0 }, { "0000:2a:00.0", 0 }, { "0000:3a:00.0", 0 }, { "0000:5d:00.0", 0 },
  { "0000:9a:00.0", 1 }, { "0000:ab:00.0", 1 }, { "0000:ba:00.0", 1 }, { "0000:db:00.0", 1 },
};
static const LcvmQemuDevice four_nvswitches[] = {
  { "0000:05:00.0", 0 },
  { "0000:06:00.0", 0 },
  { "0000:07:00.0", 1 },
  { "0000:08:00.0", 1 },
};

static LcvmQemuVersion
version(guint major, guint minor, guint patch)
{
  LcvmQemuVersion v = { major, minor, patch, "", FALSE };
  g_snprintf(v.text, sizeof v.text, "%u.%u.%u", major, minor, patch);
  return v;
}

/* A TDX guest with 8 vCPUs, 64 GiB, one forward, no GPU, on the dstack QEMU 9.2.1. */
static LcvmQemuSpec
base_spec(void)
{
  LcvmQemuSpec spec = {
    .qemu_path = QEMU,
    .qemu_version = version(9, 2, 1),
    .tee = TRUE,
    .accel = "kvm",
    .vcpus = 8,
    .memory_mib = 65536,
    .kernel = IMG "/bzImage",
    .initrd = IMG "/initramfs.cpio.gz",
    .bios = IMG "/ovmf.fd",
    .kernel_fd = LCVM_QEMU_FD_KERNEL,
    .initrd_fd = LCVM_QEMU_FD_INITRD,
    .bios_fd = LCVM_QEMU_FD_BIOS,
    .rootfs = IMG "/rootfs.img.verity",
    .rootfs_fd = LCVM_QEMU_FD_ROOTFS,
    .cmdline = CMDLINE,
    .shared_dir = INST "/shared",
    .shared_ro = TRUE,
    .data_disk = INST "/hda.img",
    .data_disk_fd = LCVM_QEMU_FD_DATA_DISK,
    .data_disk_ro_fd = LCVM_QEMU_FD_DATA_DISK_RO,
    .qmp_fd = LCVM_QEMU_FD_QMP,
    .serial_fd = LCVM_QEMU_FD_SERIAL,
    .vsock_cid = 1000,
    .forwards = one_forward,
    .n_forwards = G_N_ELEMENTS(one_forward),
    .hugepages_dir = "/dev/hugepages",
  };
  return spec;
}

static GStrv
build_ok(const LcvmQemuSpec *spec)
{
  g_autoptr(GError) error = NULL;
  GStrv argv = lcvm_qemu_argv_build(spec, &error);
  g_assert_no_error(error);
  g_assert_nonnull(argv);
  return argv;
}

/* Compares element by element so a failure names the first differing argument. */
static void
assert_argv(const char *const *got, const char *const *expected)
{
  guint i = 0;
  for (; got[i] && expected[i]; i++)
    if (!g_str_equal(got[i], expected[i]))
      g_error("argument %u: got '%s', expected '%s'", i, got[i], expected[i]);
  if (got[i] || expected[i])
    g_error("argument %u: got '%s', expected '%s'", i, got[i] ? got[i] : "(end)",
            expected[i] ? expected[i] : "(end)");
}

/* The arguments after the first occurrence of option's value, i.e. the tail that follows. */
static const char *const *
after(const char *const *argv, const char *option)
{
  for (guint i = 0; argv[i]; i++)
    if (g_str_equal(argv[i], option))
      return argv + i + 2;
  g_error("option %s missing", option);
}

static void
test_tdx_guest_without_gpu_is_the_reference_argv(void)
{
  LcvmQemuSpec spec = base_spec();
  g_auto(GStrv) argv = build_ok(&spec);
  const char *expected[] = {
    QEMU,          "-accel",        "kvm",     "-m",
    "65536M",      "-smp",          "8",       TDX_MACHINE_ARGS,
    PLUMBING_ARGS, IMAGE_ARGS,      "-device", "vhost-vsock-pci,guest-cid=1000",
    DISK_ARGS,     NET_ONE_FORWARD, "-append", CMDLINE,
    NULL
  };
  assert_argv((const char *const *)argv, expected);
}

static void
test_one_gpu_gets_a_root_port_and_the_legacy_container_before_qemu_10(void)
{
  const LcvmQemuDevice gpu[] = { { "0000:18:00.0", 0 } };
  LcvmQemuSpec spec = base_spec();
  spec.gpus = gpu;
  spec.n_gpus = 1;
  g_auto(GStrv) argv = build_ok(&spec);
  const char *expected[] = { QEMU,          "-accel",
                             "kvm",         "-m",
                             "65536M",      "-smp",
                             "8",           TDX_MACHINE_ARGS,
                             PLUMBING_ARGS, IMAGE_ARGS,
                             "-device",     "vhost-vsock-pci,guest-cid=1000",
                             DISK_ARGS,     NET_ONE_FORWARD,
                             "-device",     "pcie-root-port,id=pci.1,bus=pcie.0,chassis=1",
                             "-device",     "vfio-pci,host=0000:18:00.0,bus=pci.1",
                             "-append",     CMDLINE,
                             NULL };
  assert_argv((const char *const *)argv, expected);
}

static void
test_eight_gpus_then_four_nvswitches_on_qemu_9_2_1(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.gpus = eight_gpus;
  spec.n_gpus = 8;
  spec.nvswitches = four_nvswitches;
  spec.n_nvswitches = 4;
  g_auto(GStrv) argv = build_ok(&spec);
  const char *tail[] = { "-device", "pcie-root-port,id=pci.1,bus=pcie.0,chassis=1",
                         "-device", "vfio-pci,host=0000:18:00.0,bus=pci.1",
                         "-device", "pcie-root-port,id=pci.2,bus=pcie.0,chassis=2",
                         "-device", "vfio-pci,host=0000:2a:00.0,bus=pci.2",
                         "-device", "pcie-root-port,id=pci.3,bus=pcie.0,chassis=3",
                         "-device", "vfio-pci,host=0000:3a:00.0,bus=pci.3",
                         "-device", "pcie-root-port,id=pci.4,bus=pcie.0,chassis=4",
                         "-device", "vfio-pci,host=0000:5d:00.0,bus=pci.4",
                         "-device", "pcie-root-port,id=pci.5,bus=pcie.0,chassis=5",
                         "-device", "vfio-pci,host=0000:9a:00.0,bus=pci.5",
                         "-device", "pcie-root-port,id=pci.6,bus=pcie.0,chassis=6",
                         "-device", "vfio-pci,host=0000:ab:00.0,bus=pci.6",
                         "-device", "pcie-root-port,id=pci.7,bus=pcie.0,chassis=7",
                         "-device", "vfio-pci,host=0000:ba:00.0,bus=pci.7",
                         "-device", "pcie-root-port,id=pci.8,bus=pcie.0,chassis=8",
                         "-device", "vfio-pci,host=0000:db:00.0,bus=pci.8",
                         "-device", "pcie-root-port,id=pci.9,bus=pcie.0,chassis=9",
                         "-device", "vfio-pci,host=0000:05:00.0,bus=pci.9",
                         "-device", "pcie-root-port,id=pci.10,bus=pcie.0,chassis=10",
                         "-device", "vfio-pci,host=0000:06:00.0,bus=pci.10",
                         "-device", "pcie-root-port,id=pci.11,bus=pcie.0,chassis=11",
                         "-device", "vfio-pci,host=0000:07:00.0,bus=pci.11",
                         "-device", "pcie-root-port,id=pci.12,bus=pcie.0,chassis=12",
                         "-device", "vfio-pci,host=0000:08:00.0,bus=pci.12",
                         "-append", CMDLINE,
                         NULL };
  assert_argv(after((const char *const *)argv, "-netdev"), tail);
}

static void
test_qemu_10_attaches_every_device_through_iommufd(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.qemu_version = version(10, 1, 0);
  spec.gpus = eight_gpus;
  spec.n_gpus = 2;
  spec.nvswitches = four_nvswitches;
  spec.n_nvswitches = 1;
  g_auto(GStrv) argv = build_ok(&spec);
  const char *tail[] = { "-object", "iommufd,id=iommufd0",
                         "-device", "pcie-root-port,id=pci.1,bus=pcie.0,chassis=1",
                         "-device", "vfio-pci,host=0000:18:00.0,bus=pci.1,iommufd=iommufd0",
                         "-device", "pcie-root-port,id=pci.2,bus=pcie.0,chassis=2",
                         "-device", "vfio-pci,host=0000:2a:00.0,bus=pci.2,iommufd=iommufd0",
                         "-device", "pcie-root-port,id=pci.3,bus=pcie.0,chassis=3",
                         "-device", "vfio-pci,host=0000:05:00.0,bus=pci.3,iommufd=iommufd0",
                         "-append", CMDLINE,
                         NULL };
  assert_argv(after((const char *const *)argv, "-netdev"), tail);
}

static void
assert_refused(const LcvmQemuSpec *spec, const char *fragment)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = lcvm_qemu_argv_build(spec, &error);
  g_assert_null(argv);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  if (!strstr(error->message, fragment))
    g_error("message '%s' lacks '%s'", error->message, fragment);
}

/* What a start and a dry run build for QEMU >= 10: the helper's /dev/iommu and vfio cdev fds,
 * numbered as lcvm-qemu-spec assigns them (GPUs first, then NVSwitches). */
static void
test_qemu_10_passes_iommu_and_vfio_cdev_fds(void)
{
  const LcvmQemuDevice gpus[] = { { "0000:18:00.0", 0, LCVM_QEMU_FD_VFIO_FIRST },
                                  { "0000:2a:00.0", 0, LCVM_QEMU_FD_VFIO_FIRST + 1 } };
  const LcvmQemuDevice switches[] = { { "0000:05:00.0", 0, LCVM_QEMU_FD_VFIO_FIRST + 2 } };
  LcvmQemuSpec spec = base_spec();
  spec.qemu_version = version(10, 0, 2);
  spec.iommufd_fd = LCVM_QEMU_FD_IOMMUFD;
  spec.gpus = gpus;
  spec.n_gpus = 2;
  spec.nvswitches = switches;
  spec.n_nvswitches = 1;
  g_auto(GStrv) argv = build_ok(&spec);
  const char *tail[] = { "-object", "iommufd,id=iommufd0,fd=11",
                         "-device", "pcie-root-port,id=pci.1,bus=pcie.0,chassis=1",
                         "-device", "vfio-pci,host=0000:18:00.0,bus=pci.1,iommufd=iommufd0,fd=12",
                         "-device", "pcie-root-port,id=pci.2,bus=pcie.0,chassis=2",
                         "-device", "vfio-pci,host=0000:2a:00.0,bus=pci.2,iommufd=iommufd0,fd=13",
                         "-device", "pcie-root-port,id=pci.3,bus=pcie.0,chassis=3",
                         "-device", "vfio-pci,host=0000:05:00.0,bus=pci.3,iommufd=iommufd0,fd=14",
                         "-append", CMDLINE,
                         NULL };
  assert_argv(after((const char *const *)argv, "-netdev"), tail);
}

/* QEMU refuses fd= without an iommufd backend; the builder refuses it first. */
static void
test_vfio_fds_before_qemu_10_are_refused(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.gpus = (const LcvmQemuDevice[]){ { "0000:18:00.0", 0, LCVM_QEMU_FD_VFIO_FIRST } };
  spec.n_gpus = 1;
  assert_refused(&spec, "needs QEMU >= 10 (iommufd)");
  spec.gpus = (const LcvmQemuDevice[]){ { "0000:18:00.0", 0, 0 } };
  spec.iommufd_fd = LCVM_QEMU_FD_IOMMUFD;
  assert_refused(&spec, "an iommufd fd (11) needs QEMU >= 10");
  spec.qemu_version = version(10, 0, 0);
  spec.iommufd_fd = 2;
  assert_refused(&spec, "must be 3 or above");
  spec.iommufd_fd = LCVM_QEMU_FD_IOMMUFD;
  spec.gpus = (const LcvmQemuDevice[]){ { "0000:18:00.0", 0, 1 } };
  assert_refused(&spec, "must be 3 or above");
}

static void
test_qemu_10_without_devices_has_no_iommufd_object(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.qemu_version = version(10, 0, 0);
  g_auto(GStrv) argv = build_ok(&spec);
  const char *tail[] = { "-append", CMDLINE, NULL };
  assert_argv(after((const char *const *)argv, "-netdev"), tail);
}

/* GPUs on host nodes 1,1,0,0: node order is first appearance, so guest node 0 is host node 1.
 * 7 vCPUs round up to 8 and 3000 MiB to 3 GiB, then to 4 GiB (two nodes of 2 GiB). */
static void
test_hugepages_on_two_numa_nodes(void)
{
  const LcvmQemuDevice gpus[] = {
    { "0000:9a:00.0", 1 }, { "0000:ab:00.0", 1 }, { "0000:18:00.0", 0 }, { "0000:2a:00.0", 0 }
  };
  LcvmQemuSpec spec = base_spec();
  spec.vcpus = 7;
  spec.memory_mib = 3000;
  spec.hugepages = TRUE;
  spec.gpus = gpus;
  spec.n_gpus = 4;
  spec.nvswitches = four_nvswitches;
  spec.n_nvswitches = 1;
  g_auto(GStrv) argv = build_ok(&spec);
  const char *head[] = { QEMU, "-accel", "kvm", "-m", "4096M", "-smp", "8", "-cpu", NULL };
  for (guint i = 0; head[i]; i++)
    g_assert_cmpstr(argv[i], ==, head[i]);
  const char *tail[] = { "-numa",
                         "node,nodeid=0,cpus=0-3,memdev=mem0",
                         "-object",
                         "memory-backend-file,id=mem0,size=2G,mem-path=/dev/hugepages,share=on,"
                         "prealloc=yes,host-nodes=1,policy=bind",
                         "-device",
                         "pxb-pcie,id=pcie.node1,bus=pcie.0,addr=10,numa_node=0,bus_nr=5",
                         "-numa",
                         "node,nodeid=1,cpus=4-7,memdev=mem1",
                         "-object",
                         "memory-backend-file,id=mem1,size=2G,mem-path=/dev/hugepages,share=on,"
                         "prealloc=yes,host-nodes=0,policy=bind",
                         "-device",
                         "pxb-pcie,id=pcie.node0,bus=pcie.0,addr=11,numa_node=1,bus_nr=8",
                         "-device",
                         "pcie-root-port,id=pci.1,bus=pcie.node1,chassis=1",
                         "-device",
                         "vfio-pci,host=0000:9a:00.0,bus=pci.1",
                         "-device",
                         "pcie-root-port,id=pci.2,bus=pcie.node1,chassis=2",
                         "-device",
                         "vfio-pci,host=0000:ab:00.0,bus=pci.2",
                         "-device",
                         "pcie-root-port,id=pci.3,bus=pcie.node0,chassis=3",
                         "-device",
                         "vfio-pci,host=0000:18:00.0,bus=pci.3",
                         "-device",
                         "pcie-root-port,id=pci.4,bus=pcie.node0,chassis=4",
                         "-device",
                         "vfio-pci,host=0000:2a:00.0,bus=pci.4",
                         "-device",
                         "pcie-root-port,id=pci.5,bus=pcie.0,chassis=5",
                         "-device",
                         "vfio-pci,host=0000:05:00.0,bus=pci.5",
                         "-append",
                         CMDLINE,
                         NULL };
  assert_argv(after((const char *const *)argv, "-netdev"), tail);
  g_assert_cmpuint(lcvm_qemu_spec_effective_vcpus(&spec), ==, 8);
  g_assert_cmpuint(lcvm_qemu_spec_effective_memory_mib(&spec), ==, 4096);
}

static void
test_hugepages_without_gpu_use_node_zero(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.vcpus = 3;
  spec.memory_mib = 2048;
  spec.hugepages = TRUE;
  g_auto(GStrv) argv = build_ok(&spec);
  const char *tail[] = { "-numa",
                         "node,nodeid=0,cpus=0-2,memdev=mem0",
                         "-object",
                         "memory-backend-file,id=mem0,size=2G,mem-path=/dev/hugepages,"
                         "share=on,prealloc=yes,host-nodes=0,policy=bind",
                         "-device",
                         "pxb-pcie,id=pcie.node0,bus=pcie.0,addr=10,numa_node=0,bus_nr=5",
                         "-append",
                         CMDLINE,
                         NULL };
  assert_argv(after((const char *const *)argv, "-netdev"), tail);
  g_assert_cmpstr(argv[4], ==, "2048M");
  g_assert_cmpstr(argv[6], ==, "3");
}

static void
test_pin_numa_prefixes_taskset_and_changes_nothing_else(void)
{
  LcvmQemuSpec spec = base_spec();
  g_auto(GStrv) plain = build_ok(&spec);
  spec.taskset_path = "/usr/bin/taskset";
  spec.pin_cpulist = "0-31,64-95";
  g_auto(GStrv) pinned = build_ok(&spec);
  g_assert_cmpstr(pinned[0], ==, "/usr/bin/taskset");
  g_assert_cmpstr(pinned[1], ==, "-c");
  g_assert_cmpstr(pinned[2], ==, "0-31,64-95");
  assert_argv((const char *const *)pinned + 3, (const char *const *)plain);
}

static void
test_many_forwards_are_one_netdev_in_manifest_order(void)
{
  const LcvmQemuForward forwards[] = {
    { "tcp", "0.0.0.0", 2200, 22 },     { "tcp", "127.0.0.1", 8080, 80 },
    { "udp", "0.0.0.0", 30000, 30000 }, { "tcp", "192.168.1.5", 30001, 443 },
    { "tcp", "10.1.2.3", 30002, 8443 },
  };
  LcvmQemuSpec spec = base_spec();
  spec.forwards = forwards;
  spec.n_forwards = G_N_ELEMENTS(forwards);
  g_auto(GStrv) argv = build_ok(&spec);
  const char *const *net = after((const char *const *)argv, "-global") + 2;
  const char *expected[] = { "-device",
                             "virtio-net-pci,netdev=nic0_td",
                             "-netdev",
                             "user,id=nic0_td,hostfwd=tcp:0.0.0.0:2200-:22,"
                             "hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:0.0.0.0:30000-:30000,"
                             "hostfwd=tcp:192.168.1.5:30001-:443,hostfwd=tcp:10.1.2.3:30002-:8443",
                             "-append",
                             CMDLINE,
                             NULL };
  assert_argv(net, expected);
}

static void
test_no_forward_is_a_bare_user_netdev(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.n_forwards = 0;
  g_auto(GStrv) argv = build_ok(&spec);
  const char *tail[] = { "-append", CMDLINE, NULL };
  g_assert_cmpstr(after((const char *const *)argv, "-netdev")[-1], ==, "user,id=nic0_td");
  assert_argv(after((const char *const *)argv, "-netdev"), tail);
}

static void
test_512m_memory_is_written_in_mib(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.memory_mib = 512;
  g_auto(GStrv) argv = build_ok(&spec);
  g_assert_cmpstr(argv[3], ==, "-m");
  g_assert_cmpstr(argv[4], ==, "512M");
}

/* allow_no_tee + accel=tcg: the same machine without the TDX options and, with no
 * /dev/vhost-vsock, without the vsock device. */
static void
test_no_tee_tcg_guest(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.tee = FALSE;
  spec.accel = "tcg";
  spec.vsock_cid = 0;
  spec.memory_mib = 512;
  spec.vcpus = 1;
  g_auto(GStrv) argv = build_ok(&spec);
  const char *expected[] = { QEMU,
                             "-accel",
                             "tcg",
                             "-m",
                             "512M",
                             "-smp",
                             "1",
                             "-cpu",
                             "max,phys-bits=48",
                             "-machine",
                             "q35,kernel_irqchip=split,hpet=off,smm=off",
                             "-nographic",
                             "-nodefaults",
                             PLUMBING_ARGS,
                             IMAGE_ARGS,
                             DISK_ARGS,
                             NET_ONE_FORWARD,
                             "-append",
                             CMDLINE,
                             NULL };
  assert_argv((const char *const *)argv, expected);
}

static void
test_no_tee_on_kvm_keeps_vsock_and_host_cpu(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.tee = FALSE;
  g_auto(GStrv) argv = build_ok(&spec);
  g_assert_cmpstr(argv[8], ==, "host");
  g_assert_cmpstr(argv[10], ==, "q35,kernel_irqchip=split,hpet=off,smm=off");
  g_assert_cmpstr(after((const char *const *)argv, "-virtfs")[0], ==, "-device");
  g_assert_cmpstr(after((const char *const *)argv, "-virtfs")[1], ==,
                  "vhost-vsock-pci,guest-cid=1000");
  g_assert_false(g_strv_contains((const char *const *)argv, "tdx-guest,id=tdx"));
}

static void
test_paths_are_named_when_no_fd_is_passed_and_commas_are_escaped(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.kernel_fd = spec.initrd_fd = spec.bios_fd = -1;
  spec.rootfs_fd = -1;
  spec.data_disk_fd = -1;
  spec.data_disk_ro_fd = -1;
  spec.data_disk = "/srv/a,b/hda.img";
  spec.shared_dir = "/srv/a,b/shared";
  spec.shared_ro = FALSE;
  g_auto(GStrv) argv = build_ok(&spec);
  g_assert_cmpstr(after((const char *const *)argv, "-virtfs")[-1], ==,
                  "local,path=/srv/a,,b/shared,mount_tag=host-shared,readonly=off,"
                  "security_model=mapped,id=virtfs0");
  const char *disks[] = { "-drive",
                          "file=" IMG "/rootfs.img.verity,if=none,id=virtio-disk0,"
                          "format=raw,readonly=on",
                          "-device",
                          "virtio-blk-pci,drive=virtio-disk0",
                          "-drive",
                          "file=/srv/a,,b/hda.img,if=none,id=virtio-disk1,format=qcow2",
                          "-device",
                          "virtio-blk-pci,drive=virtio-disk1",
                          NULL };
  const char *const *at = after((const char *const *)argv, "-device");
  for (guint i = 0; disks[i]; i++)
    g_assert_cmpstr(at[i], ==, disks[i]);
  guint add_fds = 0;
  for (guint i = 0; argv[i]; i++)
    add_fds += g_str_equal(argv[i], "-add-fd");
  g_assert_cmpuint(add_fds, ==, 1); /* the serial log's only */
  const char *image[] = { "-kernel", IMG "/bzImage", "-initrd", IMG "/initramfs.cpio.gz",
                          "-bios",   IMG "/ovmf.fd", NULL };
  const char *const *kernel = after((const char *const *)argv, "-kernel") - 2;
  for (guint i = 0; image[i]; i++)
    g_assert_cmpstr(kernel[i], ==, image[i]);
}

static void
test_img_rootfs_is_a_cdrom(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.rootfs = IMG "/rootfs.img";
  spec.rootfs_fd = -1;
  g_auto(GStrv) argv = build_ok(&spec);
  const char *const *at = after((const char *const *)argv, "-device");
  g_assert_cmpstr(at[0], ==, "-cdrom");
  g_assert_cmpstr(at[1], ==, IMG "/rootfs.img");
  g_assert_cmpstr(at[2], ==, "-add-fd");
}

static void
test_inconsistent_specs_are_refused(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.accel = "tcg";
  assert_refused(&spec, "TDX guest needs accel=kvm");
  spec = base_spec();
  spec.vsock_cid = 0;
  assert_refused(&spec, "needs a vsock CID");
  spec.tee = FALSE;
  spec.vsock_cid = 2;
  assert_refused(&spec, "reserved");
  spec = base_spec();
  spec.rootfs = IMG "/rootfs.iso";
  assert_refused(&spec, "unsupported rootfs image format");
  spec = base_spec();
  spec.qmp_fd = -1;
  assert_refused(&spec, "QMP socket fd");
  spec = base_spec();
  spec.data_disk_fd = 1;
  assert_refused(&spec, "disk fds");
  spec = base_spec();
  spec.data_disk_ro_fd = -1;
  assert_refused(&spec, "both its read-write and its read-only fd");
  spec = base_spec();
  spec.kernel = "bzImage";
  assert_refused(&spec, "absolute paths");
  spec = base_spec();
  spec.bios_fd = -1;
  assert_refused(&spec, "all three as fds");
  spec = base_spec();
  spec.initrd_fd = 2;
  assert_refused(&spec, "all three as fds");
  spec = base_spec();
  spec.pin_cpulist = "0-3; rm -rf /";
  spec.taskset_path = "/usr/bin/taskset";
  assert_refused(&spec, "cpulist");
  spec = base_spec();
  spec.forwards = (const LcvmQemuForward[]){ { "tcp", "0.0.0.0,guestfwd=x", 1, 2 } };
  assert_refused(&spec, "not an IP address");
  spec.forwards = (const LcvmQemuForward[]){ { "sctp", "0.0.0.0", 1, 2 } };
  assert_refused(&spec, "tcp or udp");
  spec.forwards = (const LcvmQemuForward[]){ { "tcp", "::1", 2200, 22 } };
  assert_refused(&spec, "IPv4 addresses only");
  spec = base_spec();
  spec.gpus = (const LcvmQemuDevice[]){ { "0000:18:00.0,x-foo=1", 0 } };
  spec.n_gpus = 1;
  assert_refused(&spec, "PCI slot");
  spec = base_spec();
  spec.vcpus = 0;
  assert_refused(&spec, "at least one vCPU");
}

static void
test_iommufd_starts_at_qemu_10(void)
{
  LcvmQemuSpec spec = base_spec();
  spec.qemu_version = version(9, 2, 1);
  g_assert_false(lcvm_qemu_spec_uses_iommufd(&spec));
  spec.qemu_version = version(9, 99, 99);
  g_assert_false(lcvm_qemu_spec_uses_iommufd(&spec));
  spec.qemu_version = version(10, 0, 0);
  g_assert_true(lcvm_qemu_spec_uses_iommufd(&spec));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/qemu-argv/tdx-guest-without-gpu-is-the-reference-argv",
                  test_tdx_guest_without_gpu_is_the_reference_argv);
  g_test_add_func("/qemu-argv/one-gpu-root-port-legacy-container-before-qemu-10",
                  test_one_gpu_gets_a_root_port_and_the_legacy_container_before_qemu_10);
  g_test_add_func("/qemu-argv/eight-gpus-then-four-nvswitches-on-9.2.1",
                  test_eight_gpus_then_four_nvswitches_on_qemu_9_2_1);
  g_test_add_func("/qemu-argv/qemu-10-attaches-every-device-through-iommufd",
                  test_qemu_10_attaches_every_device_through_iommufd);
  g_test_add_func("/qemu-argv/qemu-10-passes-iommu-and-vfio-cdev-fds",
                  test_qemu_10_passes_iommu_and_vfio_cdev_fds);
  g_test_add_func("/qemu-argv/vfio-fds-before-qemu-10-are-refused",
                  test_vfio_fds_before_qemu_10_are_refused);
  g_test_add_func("/qemu-argv/qemu-10-without-devices-has-no-iommufd-object",
                  test_qemu_10_without_devices_has_no_iommufd_object);
  g_test_add_func("/qemu-argv/iommufd-starts-at-qemu-10", test_iommufd_starts_at_qemu_10);
  g_test_add_func("/qemu-argv/hugepages-on-two-numa-nodes", test_hugepages_on_two_numa_nodes);
  g_test_add_func("/qemu-argv/hugepages-without-gpu-use-node-zero",
                  test_hugepages_without_gpu_use_node_zero);
  g_test_add_func("/qemu-argv/pin-numa-prefixes-taskset-and-changes-nothing-else",
                  test_pin_numa_prefixes_taskset_and_changes_nothing_else);
  g_test_add_func("/qemu-argv/many-forwards-are-one-netdev-in-manifest-order",
                  test_many_forwards_are_one_netdev_in_manifest_order);
  g_test_add_func("/qemu-argv/no-forward-is-a-bare-user-netdev",
                  test_no_forward_is_a_bare_user_netdev);
  g_test_add_func("/qemu-argv/512m-memory-is-written-in-mib", test_512m_memory_is_written_in_mib);
  g_test_add_func("/qemu-argv/no-tee-tcg-guest", test_no_tee_tcg_guest);
  g_test_add_func("/qemu-argv/no-tee-on-kvm-keeps-vsock-and-host-cpu",
                  test_no_tee_on_kvm_keeps_vsock_and_host_cpu);
  g_test_add_func("/qemu-argv/paths-named-without-fds-and-commas-escaped",
                  test_paths_are_named_when_no_fd_is_passed_and_commas_are_escaped);
  g_test_add_func("/qemu-argv/img-rootfs-is-a-cdrom", test_img_rootfs_is_a_cdrom);
  g_test_add_func("/qemu-argv/inconsistent-specs-are-refused", test_inconsistent_specs_are_refused);
  return g_test_run();
}
