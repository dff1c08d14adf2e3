/* SPDX-License-Identifier: MIT */
/* What a VM's QEMU sees of the host (helper-sandbox-ns.h): the base view plus exactly what its
 * spec needs — the QEMU (and taskset) installation when it lives outside /usr, the guest share,
 * the hugepage mount, the device nodes of its accelerator and vsock (nodes of its own, owned by
 * the VM's uid) and, for legacy VFIO, the container and IOMMU group nodes (the host's, which
 * the launch hands to the VM's uid). The kernel, initrd, firmware, disks and iommufd nodes are
 * not in it: QEMU gets them as fds. */
#pragma once
#include "helper-sandbox-ns.h"
#include "lcvm-config.h"
#include "lcvm-qemu-argv.h"

/* dev_nodes: the passed-through devices' IOMMU group nodes below config->dev_root (legacy
 * VFIO), as collected for the launch; with iommufd QEMU gets /dev/iommu and the vfio cdevs
 * as fds and sees neither. */
HelperSandbox *helper_qemu_view(const LcvmConfig *config, const LcvmQemuSpec *spec, uid_t uid,
                                const GPtrArray *dev_nodes, GError **error);
