/* SPDX-License-Identifier: MIT */
/* Host.BindVfio, Host.UnbindVfio and Host.SetDmaEntryLimit: moving NVIDIA GPUs and NVSwitches
 * to and from vfio-pci, and the vfio_iommu_type1 DMA entry limit. */
#pragma once
#include "helper-act.h"
#include "helper-dispatch.h"

#define HELPER_DMA_LIMIT_PERSIST (1u << 0)
/* The file SetDmaEntryLimit writes under modprobe_dir with the persist flag. */
#define HELPER_DMA_LIMIT_FILE "lium-cvm-vfio.conf"

/* The steps of BindVfio/UnbindVfio (the slots validated, their device locks, the jobs) and of
 * SetDmaEntryLimit, named in the method table (helper-methods.c). */
gboolean helper_vfio_slots_validate(HelperCall *call, GError **error);
GStrv helper_vfio_slots_locks(HelperCall *call);
gboolean helper_vfio_bind_job(HelperJob *job, gpointer data, GError **error);
gboolean helper_vfio_unbind_job(HelperJob *job, gpointer data, GError **error);
gboolean helper_vfio_dma_limit_validate(HelperCall *call, GError **error);
GVariant *helper_vfio_dma_limit(HelperDaemon *d, gpointer data, GError **error);

/* The slots a Bind/UnbindVfio call names, validated against the host: the single word "all"
 * (every GPU and NVSwitch), or canonical DDDD:BB:DD.F slots that exist under sysfs_root and
 * are NVIDIA GPUs or NVSwitches. Returns them de-duplicated, in the order given. */
GStrv helper_vfio_resolve_slots(const LcvmConfig *config, const char *const *slots, GError **error);
/* The caller's slot is a canonical DDDD:BB:DD.F (no look at the host); else InvalidArgument. */
gboolean helper_vfio_slot_shape_ok(const char *slot, GError **error);

/* The two job bodies, callable without a bus (tests): bind moves every slot to vfio-pci and
 * waits for vfio-dev; unbind gives each back the driver and driver_override it had before. On
 * a failure every device already moved is moved back. step (may be NULL) reports progress. */
gboolean helper_vfio_bind(const LcvmConfig *config, const char *const *slots, HelperActStep step,
                          gpointer step_data, GError **error);
gboolean helper_vfio_unbind(const LcvmConfig *config, const char *const *slots, HelperActStep step,
                            gpointer step_data, GError **error);

/* For gpu-admin-tools, whose mode changes silently do nothing while vfio-pci holds a device
 * (reference/lium.md §8.12): takes slot off its driver and clears driver_override, keeping
 * the record of what it had before its bind, so helper_vfio_rebind() and a later unbind still
 * restore that. rebind puts it back on vfio-pci and waits for vfio-dev. */
gboolean helper_vfio_release(const LcvmConfig *config, const char *slot, GError **error);
gboolean helper_vfio_rebind(const LcvmConfig *config, const char *slot, GError **error);

/* Writes the limit to sysfs (loading vfio_iommu_type1 if needed) and, with persist, to
 * modprobe_dir/lium-cvm-vfio.conf. */
gboolean helper_vfio_set_dma_limit(const LcvmConfig *config, guint64 limit, guint64 flags,
                                   GError **error);
