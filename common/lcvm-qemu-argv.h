/* SPDX-License-Identifier: MIT */
/* The ONE QEMU argv builder: what `run --dry-run` prints is exactly what `run` executes.
 *
 * Everything the guest can see follows the reference launcher (Lium's dstack.py `run`)
 * option for option and in order, because the device layout ends up in the ACPI tables that
 * are measured into RTMR0. Only guest-invisible plumbing differs: the serial console goes to
 * a passed fd, QMP listens on a passed socket, disks come in through `-add-fd`, the kernel,
 * initrd and firmware through passed fds named /proc/self/fd/N, `-m` is in MiB,
 * the data disk names its format, QEMU's own `-sandbox` is on, and the 9p share is read-only
 * when the image asks for it.
 *
 * The builder is pure: it reads nothing, opens nothing and trusts nothing it was not given.
 * Its input is a plain spec whose paths were already resolved and confined by the caller; it
 * never decides which file QEMU may open, only how to say it. */
#pragma once
#include <glib.h>

#include "lcvm-qemu-probe.h"

/* 0x100000000000 (16 TiB): the `-global q35-pcihost.pci-hole64-size` and vm_config value. */
#define LCVM_QEMU_PCI_HOLE64_SIZE G_GUINT64_CONSTANT(0x100000000000)

/* Child-side descriptor numbers the spawner installs before exec (dup2 onto exactly these),
 * so a dry run prints the same argv a start executes. */
#define LCVM_QEMU_FD_QMP          3
#define LCVM_QEMU_FD_SERIAL       4
#define LCVM_QEMU_FD_ROOTFS       5
#define LCVM_QEMU_FD_DATA_DISK    6
#define LCVM_QEMU_FD_DATA_DISK_RO 7
#define LCVM_QEMU_FD_KERNEL       8
#define LCVM_QEMU_FD_INITRD       9
#define LCVM_QEMU_FD_BIOS         10
/* iommufd (QEMU >= 10, reference/field-2026.md §7.2): QEMU runs as the VM's uid and cannot
 * open /dev/iommu or the vfio cdevs, so the helper passes them: /dev/iommu at FD_IOMMUFD, the
 * k-th passed device's /dev/vfio/devices/vfioN (GPUs first, then NVSwitches) at
 * FD_VFIO_FIRST + k. */
#define LCVM_QEMU_FD_IOMMUFD    11
#define LCVM_QEMU_FD_VFIO_FIRST 12
#define LCVM_QEMU_DEVICES_MAX   64
#define LCVM_QEMU_FD_LIMIT      (LCVM_QEMU_FD_VFIO_FIRST + LCVM_QEMU_DEVICES_MAX)

typedef struct {
  const char *protocol; /* "tcp" or "udp" */
  const char *address;  /* host bind address, an IPv4 or IPv6 literal */
  guint16 host_port;
  guint16 guest_port;
} LcvmQemuForward;

typedef struct {
  const char *slot; /* host PCI slot, DDDD:BB:DD.F */
  guint numa_node;  /* host NUMA node of the device (a kernel -1 is passed as 0) */
  int vfio_fd;      /* iommufd: child fd of its vfio cdev; 0: QEMU opens the device itself */
} LcvmQemuDevice;

typedef struct {
  /* The process. */
  const char *qemu_path;
  LcvmQemuVersion qemu_version;
  const char *taskset_path; /* with pin_cpulist: the taskset binary */
  const char *pin_cpulist;  /* pin_numa: a NUMA node's cpulist ("0-31,64-95"); NULL: none */
  /* The machine. */
  gboolean tee;      /* TDX guest; FALSE only under allow_no_tee */
  const char *accel; /* "kvm", or "tcg" without a TEE */
  guint vcpus;
  guint64 memory_mib;
  /* The OS image: absolute paths inside the image directory, cmdline from metadata.json. */
  const char *kernel;
  const char *initrd;
  const char *bios;
  /* Child fds of kernel, initrd and bios, opened by the caller beneath the image dir, or -1
   * (all three) to name the paths. QEMU's loaders for -kernel, -initrd and -bios open a path
   * with plain open()/fopen() and know no /dev/fdset (checked on QEMU 7.2 and in QEMU 10's
   * hw/i386/x86-common.c), so the argv names /proc/self/fd/N: the open file itself, never a
   * path an operator could swap afterwards. */
  int kernel_fd;
  int initrd_fd;
  int bios_fd;
  const char *rootfs; /* "*.verity" (read-only virtio disk) or "*.img" (cdrom) */
  int rootfs_fd;      /* child fd for -add-fd, or -1 to name the path */
  const char *cmdline;
  /* The instance. */
  const char *shared_dir; /* exported to the guest as 9p tag host-shared */
  gboolean shared_ro;     /* metadata.json shared_ro */
  const char *data_disk;  /* the qcow2 hda.img */
  int data_disk_fd;       /* child fd (O_RDWR) for -add-fd, or -1 to name the path */
  int data_disk_ro_fd;    /* with data_disk_fd: the same file O_RDONLY, because QEMU
                           * opens an image read-only first and then reopens it
                           * read-write, and an fdset only hands out matching modes */
  int qmp_fd;             /* child fd of the listening QMP socket */
  int serial_fd;          /* child fd of serial.log, opened O_WRONLY|O_APPEND */
  guint vsock_cid;        /* 0: no vhost-vsock device (no-TEE without /dev/vhost-vsock) */
  const LcvmQemuForward *forwards;
  guint n_forwards;
  /* Passthrough: GPUs first, then NVSwitches, each behind its own pcie-root-port. */
  const LcvmQemuDevice *gpus;
  guint n_gpus;
  const LcvmQemuDevice *nvswitches;
  guint n_nvswitches;
  int iommufd_fd;            /* iommufd: child fd of /dev/iommu; 0: QEMU opens it itself */
  gboolean hugepages;        /* one hugepage-backed NUMA node per GPU NUMA node */
  const char *hugepages_dir; /* mem-path of the hugepage backends */
} LcvmQemuSpec;

/* What the guest is given once hugepages round vCPUs and memory up to the NUMA layout:
 * vCPUs to a multiple of the node count, memory to whole GiB, a multiple of the node count.
 * Without hugepages the spec's own values. vm_config reports these numbers. */
guint lcvm_qemu_spec_effective_vcpus(const LcvmQemuSpec *spec);
guint64 lcvm_qemu_spec_effective_memory_mib(const LcvmQemuSpec *spec);

/* Whether the VFIO devices attach through iommufd (QEMU >= 10) or the legacy type1 container. */
gboolean lcvm_qemu_spec_uses_iommufd(const LcvmQemuSpec *spec);

/* The argv, starting with taskset or QEMU. NULL with an error when the spec is inconsistent
 * (a TEE without KVM or vsock, an unknown rootfs kind, a missing fd, ...). */
GStrv lcvm_qemu_argv_build(const LcvmQemuSpec *spec, GError **error);
