/* SPDX-License-Identifier: MIT */
/* The QEMU argv builder (see the header for the rules). Emission order is the reference
 * launcher's; every guest-invisible addition is marked where it is emitted. Never reads the
 * file system: what the guest gets is decided by the spec alone. */
#include "lcvm-qemu-argv.h"
#include "lcvm-error.h"
#include "lcvm-layout.h"

#include <gio/gio.h>
#include <string.h>

#define TDX_MACHINE   "q35,kernel_irqchip=split,confidential-guest-support=tdx,hpet=off,smm=off"
#define PLAIN_MACHINE "q35,kernel_irqchip=split,hpet=off,smm=off"
#define SANDBOX       "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

/* The NUMA nodes of the hugepage layout: the GPUs' host nodes in order of first appearance,
 * each with its GPU count, or node 0 alone when there is no GPU. */
typedef struct {
  guint host_node;
  guint n_gpus;
} NumaNode;

static GArray *
numa_layout(const LcvmQemuSpec *spec)
{
  GArray *nodes = g_array_new(FALSE, TRUE, sizeof(NumaNode));
  for (guint i = 0; i < spec->n_gpus; i++) {
    guint j = 0;
    while (j < nodes->len && g_array_index(nodes, NumaNode, j).host_node != spec->gpus[i].numa_node)
      j++;
    if (j == nodes->len) {
      NumaNode node = { spec->gpus[i].numa_node, 0 };
      g_array_append_val(nodes, node);
    }
    g_array_index(nodes, NumaNode, j).n_gpus++;
  }
  if (nodes->len == 0) {
    NumaNode node0 = { 0, 0 };
    g_array_append_val(nodes, node0);
  }
  return nodes;
}

static guint
lcvm_qemu_spec_numa_node_count(const LcvmQemuSpec *spec)
{
  if (!spec->hugepages)
    return 1;
  g_autoptr(GArray) nodes = numa_layout(spec);
  return nodes->len;
}

static guint64
round_up(guint64 value, guint64 multiple)
{
  return (value + multiple - 1) / multiple * multiple;
}

guint
lcvm_qemu_spec_effective_vcpus(const LcvmQemuSpec *spec)
{
  return (guint)round_up(spec->vcpus, lcvm_qemu_spec_numa_node_count(spec));
}

/* Hugepage backends are sized in whole GiB per node, so memory is rounded up to that. */
guint64
lcvm_qemu_spec_effective_memory_mib(const LcvmQemuSpec *spec)
{
  if (!spec->hugepages)
    return spec->memory_mib;
  guint64 gib = round_up(spec->memory_mib, 1024) / 1024;
  return round_up(gib, lcvm_qemu_spec_numa_node_count(spec)) * 1024;
}

gboolean
lcvm_qemu_spec_uses_iommufd(const LcvmQemuSpec *spec)
{
  return lcvm_qemu_version_at_least(&spec->qemu_version, 10, 0, 0);
}

/* QEMU option values are comma-separated; a literal comma is written twice. */
static char *
opt_escape(const char *value)
{
  g_auto(GStrv) parts = g_strsplit(value, ",", -1);
  return g_strjoinv(",,", parts);
}

static void G_GNUC_PRINTF(2, 3) add(GPtrArray *argv, const char *format, ...)
{
  va_list ap;
  va_start(ap, format);
  g_ptr_array_add(argv, g_strdup_vprintf(format, ap));
  va_end(ap);
}

static void
add2(GPtrArray *argv, const char *option, const char *value)
{
  g_ptr_array_add(argv, g_strdup(option));
  g_ptr_array_add(argv, g_strdup(value));
}

/* --- spec checks: the builder refuses what would silently build a different machine --- */

static gboolean fail(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

static gboolean
fail(GError **error, const char *format, ...)
{
  va_list ap;
  va_start(ap, format);
  g_autofree char *message = g_strdup_vprintf(format, ap);
  va_end(ap);
  g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT, message);
  return FALSE;
}

static gboolean
is_absolute(const char *path)
{
  return path && path[0] == '/';
}

static gboolean
fd_ok(int fd, gboolean optional)
{
  return fd >= 3 || (optional && fd == -1);
}

static gboolean
cpulist_ok(const char *list)
{
  return list[0] != '\0' && strspn(list, "0123456789,-") == strlen(list);
}

static gboolean
check_machine(const LcvmQemuSpec *spec, GError **error)
{
  if (g_strcmp0(spec->accel, "kvm") != 0 && g_strcmp0(spec->accel, "tcg") != 0)
    return fail(error, "unknown accelerator '%s': use kvm or tcg", spec->accel ? spec->accel : "");
  if (spec->tee && !g_str_equal(spec->accel, "kvm"))
    return fail(error, "a TDX guest needs accel=kvm; tcg is only for allow_no_tee");
  if (spec->tee && spec->vsock_cid == 0)
    return fail(error, "a TDX guest needs a vsock CID (its device layout is measured)");
  if (spec->vsock_cid != 0 && spec->vsock_cid < 3)
    return fail(error, "vsock CID %u is reserved; CIDs start at 3", spec->vsock_cid);
  if (spec->vcpus == 0 || spec->memory_mib == 0)
    return fail(error, "the guest needs at least one vCPU and 1 MiB of memory");
  if (spec->hugepages && !is_absolute(spec->hugepages_dir))
    return fail(error, "hugepages need an absolute hugepages_dir");
  if (spec->pin_cpulist && (!cpulist_ok(spec->pin_cpulist) || !is_absolute(spec->taskset_path)))
    return fail(error, "pin_numa needs a cpulist like '0-31,64-95' and an absolute taskset path");
  return TRUE;
}

static gboolean
check_files(const LcvmQemuSpec *spec, GError **error)
{
  const char *paths[] = { spec->qemu_path, spec->kernel,     spec->initrd,   spec->bios,
                          spec->rootfs,    spec->shared_dir, spec->data_disk };
  for (guint i = 0; i < G_N_ELEMENTS(paths); i++)
    if (!is_absolute(paths[i]))
      return fail(error, "QEMU, the image files, the share and the data disk need absolute paths");
  if (!spec->cmdline)
    return fail(error, "the image metadata has no kernel cmdline");
  if (!fd_ok(spec->qmp_fd, FALSE) || !fd_ok(spec->serial_fd, FALSE))
    return fail(error, "QEMU needs a QMP socket fd and a serial log fd (3 or above)");
  if (!fd_ok(spec->rootfs_fd, TRUE) || !fd_ok(spec->data_disk_fd, TRUE) ||
      !fd_ok(spec->data_disk_ro_fd, TRUE))
    return fail(error, "disk fds must be 3 or above, or -1 for a path");
  if (!fd_ok(spec->kernel_fd, TRUE) || !fd_ok(spec->initrd_fd, TRUE) ||
      !fd_ok(spec->bios_fd, TRUE) || (spec->kernel_fd < 0) != (spec->initrd_fd < 0) ||
      (spec->kernel_fd < 0) != (spec->bios_fd < 0))
    return fail(error, "kernel, initrd and bios come all three as fds (3 or above) or all "
                       "three as paths");
  if ((spec->data_disk_fd < 0) != (spec->data_disk_ro_fd < 0))
    return fail(error, "the data disk needs both its read-write and its read-only fd");
  if (!g_str_has_suffix(spec->rootfs, ".verity") && !g_str_has_suffix(spec->rootfs, ".img"))
    return fail(error, "unsupported rootfs image format: %s (expected *.verity or *.img)",
                spec->rootfs);
  return TRUE;
}

static gboolean
check_forwards(const LcvmQemuSpec *spec, GError **error)
{
  for (guint i = 0; i < spec->n_forwards; i++) {
    const LcvmQemuForward *f = &spec->forwards[i];
    g_autoptr(GInetAddress) address =
        f->address ? g_inet_address_new_from_string(f->address) : NULL;
    if (!g_strcmp0(f->protocol, "tcp") == !g_strcmp0(f->protocol, "udp"))
      return fail(error, "forward %u: protocol must be tcp or udp", i + 1);
    if (!address)
      return fail(error, "forward %u: '%s' is not an IP address", i + 1,
                  f->address ? f->address : "");
    /* hostfwd= parses an IPv4 host address only ("Bad host address" otherwise). */
    if (g_inet_address_get_family(address) != G_SOCKET_FAMILY_IPV4)
      return fail(error,
                  "forward %u: QEMU's user network forwards IPv4 addresses only; use "
                  "0.0.0.0 or 127.0.0.1 instead of %s",
                  i + 1, f->address);
    if (f->host_port == 0 || f->guest_port == 0)
      return fail(error, "forward %u: ports must be 1-65535", i + 1);
  }
  return TRUE;
}

static gboolean
check_devices(const LcvmQemuSpec *spec, const LcvmQemuDevice *devices, guint n, GError **error)
{
  gboolean iommufd = lcvm_qemu_spec_uses_iommufd(spec);
  for (guint i = 0; i < n; i++) {
    if (!devices[i].slot || !devices[i].slot[0] || strpbrk(devices[i].slot, ",="))
      return fail(error, "passthrough device %u has no valid PCI slot", i + 1);
    if (devices[i].vfio_fd != 0 && (!iommufd || devices[i].vfio_fd < 3))
      return fail(error, "a vfio cdev fd (%d) needs QEMU >= 10 (iommufd) and must be 3 or above",
                  devices[i].vfio_fd);
  }
  return TRUE;
}

static gboolean
check_iommufd(const LcvmQemuSpec *spec, GError **error)
{
  if (spec->n_gpus + spec->n_nvswitches > LCVM_QEMU_DEVICES_MAX)
    return fail(error, "at most %d passthrough devices", LCVM_QEMU_DEVICES_MAX);
  if (spec->iommufd_fd != 0 && (!lcvm_qemu_spec_uses_iommufd(spec) || spec->iommufd_fd < 3))
    return fail(error, "an iommufd fd (%d) needs QEMU >= 10 and must be 3 or above",
                spec->iommufd_fd);
  return TRUE;
}

static gboolean
check_spec(const LcvmQemuSpec *spec, GError **error)
{
  return check_machine(spec, error) && check_files(spec, error) && check_forwards(spec, error) &&
         check_iommufd(spec, error) && check_devices(spec, spec->gpus, spec->n_gpus, error) &&
         check_devices(spec, spec->nvswitches, spec->n_nvswitches, error);
}

/* --- emission, in the reference launcher's order --- */

static void
emit_base(GPtrArray *argv, const LcvmQemuSpec *spec)
{
  if (spec->pin_cpulist) {
    g_ptr_array_add(argv, g_strdup(spec->taskset_path));
    add2(argv, "-c", spec->pin_cpulist);
  }
  g_ptr_array_add(argv, g_strdup(spec->qemu_path));
  add2(argv, "-accel", spec->accel);
  g_ptr_array_add(argv, g_strdup("-m"));
  add(argv, "%" G_GUINT64_FORMAT "M", lcvm_qemu_spec_effective_memory_mib(spec));
  g_ptr_array_add(argv, g_strdup("-smp"));
  add(argv, "%u", lcvm_qemu_spec_effective_vcpus(spec));
  /* TCG cannot model `host`; 48 physical address bits make room for the 16 TiB PCI hole. */
  add2(argv, "-cpu", g_str_equal(spec->accel, "tcg") ? "max,phys-bits=48" : "host");
  add2(argv, "-machine", spec->tee ? TDX_MACHINE : PLAIN_MACHINE);
  if (spec->tee)
    add2(argv, "-object", "tdx-guest,id=tdx");
  g_ptr_array_add(argv, g_strdup("-nographic"));
  g_ptr_array_add(argv, g_strdup("-nodefaults"));
}

/* Guest-invisible: QEMU's own seccomp policy, what QEMU does when the guest resets or
 * panics, QMP on the helper's listening socket, and the console written to the helper's
 * O_APPEND fd (the reference uses stdio). A TD cannot reset: a guest reboot must end QEMU
 * (and be reported as a stop, never restarted), and a panic (a pvpanic-less guest with
 * panic=1 resets, a TD's fatal-error report is a GUEST_PANICKED) must exit non-zero, so the
 * helper shows it as a crash (reference/field-2026.md §3.4, §5.2). */
static void
emit_host_plumbing(GPtrArray *argv, const LcvmQemuSpec *spec)
{
  add2(argv, "-sandbox", SANDBOX);
  add2(argv, "-action", "reboot=shutdown,panic=exit-failure");
  g_ptr_array_add(argv, g_strdup("-chardev"));
  add(argv, "socket,id=qmp,fd=%d,server=on,wait=off", spec->qmp_fd);
  add2(argv, "-mon", "chardev=qmp,mode=control");
  g_ptr_array_add(argv, g_strdup("-add-fd"));
  add(argv, "set=%d,fd=%d,opaque=" LCVM_INSTANCE_SERIAL_LOG, spec->serial_fd, spec->serial_fd);
  g_ptr_array_add(argv, g_strdup("-chardev"));
  add(argv, "file,id=ser0,path=/dev/fdset/%d,append=on", spec->serial_fd);
  add2(argv, "-serial", "chardev:ser0");
}

/* Guest-invisible: the file a loader opens is the passed fd itself (see the header). */
static void
emit_loaded_file(GPtrArray *argv, const char *option, const char *path, int fd)
{
  g_ptr_array_add(argv, g_strdup(option));
  if (fd < 0)
    g_ptr_array_add(argv, g_strdup(path));
  else
    add(argv, "/proc/self/fd/%d", fd);
}

static void
emit_image_and_share(GPtrArray *argv, const LcvmQemuSpec *spec)
{
  emit_loaded_file(argv, "-kernel", spec->kernel, spec->kernel_fd);
  emit_loaded_file(argv, "-initrd", spec->initrd, spec->initrd_fd);
  emit_loaded_file(argv, "-bios", spec->bios, spec->bios_fd);
  g_autofree char *share = opt_escape(spec->shared_dir);
  g_ptr_array_add(argv, g_strdup("-virtfs"));
  add(argv, "local,path=%s,mount_tag=host-shared,readonly=%s,security_model=mapped,id=virtfs0",
      share, spec->shared_ro ? "on" : "off");
  if (spec->vsock_cid != 0) {
    g_ptr_array_add(argv, g_strdup("-device"));
    add(argv, "vhost-vsock-pci,guest-cid=%u", spec->vsock_cid);
  }
}

/* The file name QEMU opens: the fdset of the passed fds (guest-invisible; the set is named
 * after its first fd) or the path itself. */
static char *
disk_file(GPtrArray *argv, const char *path, int fd, int second_fd)
{
  g_autofree char *escaped = opt_escape(path);
  if (fd < 0)
    return g_steal_pointer(&escaped);
  g_ptr_array_add(argv, g_strdup("-add-fd"));
  add(argv, "set=%d,fd=%d,opaque=%s", fd, fd, escaped);
  if (second_fd >= 0) {
    g_ptr_array_add(argv, g_strdup("-add-fd"));
    add(argv, "set=%d,fd=%d,opaque=%s", fd, second_fd, escaped);
  }
  return g_strdup_printf("/dev/fdset/%d", fd);
}

static void
emit_disks(GPtrArray *argv, const LcvmQemuSpec *spec)
{
  g_autofree char *rootfs = disk_file(argv, spec->rootfs, spec->rootfs_fd, -1);
  if (g_str_has_suffix(spec->rootfs, ".verity")) {
    g_ptr_array_add(argv, g_strdup("-drive"));
    add(argv, "file=%s,if=none,id=virtio-disk0,format=raw,readonly=on", rootfs);
    add2(argv, "-device", "virtio-blk-pci,drive=virtio-disk0");
  } else {
    add2(argv, "-cdrom", rootfs);
  }
  /* format=qcow2 is guest-invisible and keeps QEMU from probing a guest-written image. */
  g_autofree char *data =
      disk_file(argv, spec->data_disk, spec->data_disk_fd, spec->data_disk_ro_fd);
  g_ptr_array_add(argv, g_strdup("-drive"));
  add(argv, "file=%s,if=none,id=virtio-disk1,format=qcow2", data);
  add2(argv, "-device", "virtio-blk-pci,drive=virtio-disk1");
  add2(argv, "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off");
  g_ptr_array_add(argv, g_strdup("-global"));
  add(argv, "q35-pcihost.pci-hole64-size=0x%" G_GINT64_MODIFIER "x", LCVM_QEMU_PCI_HOLE64_SIZE);
}

static void
emit_network(GPtrArray *argv, const LcvmQemuSpec *spec)
{
  add2(argv, "-device", "virtio-net-pci,netdev=nic0_td");
  GString *netdev = g_string_new("user,id=nic0_td");
  for (guint i = 0; i < spec->n_forwards; i++) {
    const LcvmQemuForward *f = &spec->forwards[i];
    g_string_append_printf(netdev, ",hostfwd=%s:%s:%u-:%u", f->protocol, f->address, f->host_port,
                           f->guest_port);
  }
  g_ptr_array_add(argv, g_strdup("-netdev"));
  g_ptr_array_add(argv, g_string_free(netdev, FALSE));
}

static void
emit_hugepages(GPtrArray *argv, const LcvmQemuSpec *spec)
{
  g_autoptr(GArray) nodes = numa_layout(spec);
  guint vcpus_per_node = lcvm_qemu_spec_effective_vcpus(spec) / nodes->len;
  guint64 gib_per_node = lcvm_qemu_spec_effective_memory_mib(spec) / 1024 / nodes->len;
  g_autofree char *mem_path = opt_escape(spec->hugepages_dir);
  guint bus_nr = 5;
  for (guint i = 0; i < nodes->len; i++) {
    const NumaNode *node = &g_array_index(nodes, NumaNode, i);
    g_ptr_array_add(argv, g_strdup("-numa"));
    add(argv, "node,nodeid=%u,cpus=%u-%u,memdev=mem%u", i, i * vcpus_per_node,
        (i + 1) * vcpus_per_node - 1, i);
    g_ptr_array_add(argv, g_strdup("-object"));
    add(argv,
        "memory-backend-file,id=mem%u,size=%" G_GUINT64_FORMAT "G,mem-path=%s,share=on,"
        "prealloc=yes,host-nodes=%u,policy=bind",
        i, gib_per_node, mem_path, node->host_node);
    /* addr is 0xA + i printed in decimal, exactly as the reference formats it. */
    g_ptr_array_add(argv, g_strdup("-device"));
    add(argv, "pxb-pcie,id=pcie.node%u,bus=pcie.0,addr=%u,numa_node=%u,bus_nr=%u", node->host_node,
        10 + i, i, bus_nr);
    bus_nr += node->n_gpus + 1;
  }
}

/* With iommufd, `fd=` hands QEMU the vfio cdev the helper opened (host= still names the
 * device for people and logs; QEMU does not open it when fd= is given). */
static void
emit_device(GPtrArray *argv, guint n, const char *bus, const LcvmQemuDevice *device,
            gboolean iommufd)
{
  g_ptr_array_add(argv, g_strdup("-device"));
  add(argv, "pcie-root-port,id=pci.%u,bus=%s,chassis=%u", n, bus, n);
  g_autofree char *fd = device->vfio_fd > 0 ? g_strdup_printf(",fd=%d", device->vfio_fd) : NULL;
  g_ptr_array_add(argv, g_strdup("-device"));
  add(argv, "vfio-pci,host=%s,bus=pci.%u%s%s", device->slot, n, iommufd ? ",iommufd=iommufd0" : "",
      fd ? fd : "");
}

static void
emit_passthrough(GPtrArray *argv, const LcvmQemuSpec *spec)
{
  gboolean iommufd = lcvm_qemu_spec_uses_iommufd(spec);
  guint n = 1;
  if (spec->n_gpus + spec->n_nvswitches > 0 && iommufd) {
    g_ptr_array_add(argv, g_strdup("-object"));
    if (spec->iommufd_fd > 0)
      add(argv, "iommufd,id=iommufd0,fd=%d", spec->iommufd_fd);
    else
      g_ptr_array_add(argv, g_strdup("iommufd,id=iommufd0"));
  }
  for (guint i = 0; i < spec->n_gpus; i++, n++) {
    g_autofree char *bus = spec->hugepages ? g_strdup_printf("pcie.node%u", spec->gpus[i].numa_node)
                                           : g_strdup("pcie.0");
    emit_device(argv, n, bus, &spec->gpus[i], iommufd);
  }
  for (guint i = 0; i < spec->n_nvswitches; i++, n++)
    emit_device(argv, n, "pcie.0", &spec->nvswitches[i], iommufd);
}

GStrv
lcvm_qemu_argv_build(const LcvmQemuSpec *spec, GError **error)
{
  if (!check_spec(spec, error))
    return NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
  emit_base(argv, spec);
  emit_host_plumbing(argv, spec);
  emit_image_and_share(argv, spec);
  emit_disks(argv, spec);
  emit_network(argv, spec);
  if (spec->hugepages)
    emit_hugepages(argv, spec);
  emit_passthrough(argv, spec);
  add2(argv, "-append", spec->cmdline);
  g_ptr_array_add(argv, NULL);
  return (GStrv)g_ptr_array_free(g_steal_pointer(&argv), FALSE);
}
