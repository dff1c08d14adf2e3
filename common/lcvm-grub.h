/* SPDX-License-Identifier: MIT */
/* The kernel command line a TDX + GPU passthrough host needs (the seed's troubleshooting,
 * reference/lium.md §5.3 and §8.14), computed from the NVIDIA devices present. Shared by
 * `check` and `gpu bind`; it only computes text and never edits GRUB. */
#pragma once
#include <glib.h>

/* The dma_entry_limit large guests need with the type1 backend (reference/lium.md §8.2). */
#define LCVM_DMA_ENTRY_LIMIT_DEFAULT 16777216

/* "kvm_intel.tdx=on intel_iommu=on iommu=pt nohibernate vfio-pci.ids=<ids>
 * vfio_iommu_type1.dma_entry_limit=16777216": ids are the lower-case vendor:device ids in
 * device_ids, plus every id of a vfio-pci.ids= already on cmdline (never narrowed: a wedged GPU
 * missing from the bus keeps its id), in that order, without duplicates. */
char *lcvm_grub_tokens(const char *const *device_ids, const char *cmdline);

/* The same for this host: ids of the GPUs and NVSwitches under sysfs_root and the running
 * kernel's proc_root/cmdline. */
char *lcvm_grub_tokens_for_host(const char *sysfs_root, const char *proc_root, GError **error);

/* Operator instructions: the GRUB_CMDLINE_LINUX_DEFAULT line to add to and the commands to
 * run, several lines, each ending in a newline. */
char *lcvm_grub_advice(const char *sysfs_root, const char *proc_root, GError **error);
