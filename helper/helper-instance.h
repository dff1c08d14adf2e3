/* SPDX-License-Identifier: MIT */
/* A VM's instance: the full check of its definition before it may start, and the assembly of
 * state_dir/instances/NAME/ (DESIGN §5). DryRun and StartVm run the SAME validation; only
 * StartVm prepares the instance. The definition lives in state_dir/vms/NAME/, which operators
 * can write: it is read with openat/O_NOFOLLOW from a verified dirfd, size-capped, and its bytes
 * are COPIED into the root-owned instance directory — never linked, never followed. Nothing
 * here writes into an operator-writable directory, runs anything as root or touches the
 * instance directory during validation.
 *
 * A start, in order (StartVm):
 *   def  = helper_instance_validate(config, name, &error);           refusals name the fix
 *   spec = helper_instance_spec(config, def, reserved_cid, &error);  the argv's one input
 *   helper_instance_prepare(config, def, spec, vm_uid, hostapi_port, &error);
 *   argv = lcvm_qemu_argv_build(spec, &error);                        then spawn it
 * The caller holds the VM's and its devices' locks across all of it; validation only checks
 * that the host resources are free right now. */
#pragma once
#include <glib.h>
#include <sys/types.h>

#include "lcvm-config.h"
#include "lcvm-image.h"
#include "lcvm-layout.h"
#include "lcvm-manifest.h"
#include "lcvm-qemu-spec.h"

/* Guest-side size limits of shared/ files (dstack-util HostShared::copy). */
#define HELPER_INSTANCE_ENCRYPTED_ENV_MAX (256u * 1024)

/* A definition that passed every check of helper_instance_validate. */
typedef struct {
  LcvmManifest *manifest;       /* the validated vm-manifest.json */
  LcvmImage *image;             /* its OS image from the store (artefacts confined to its dir) */
  char *qemu_path;              /* the trusted QEMU binary (helper_qemu_resolve) */
  LcvmQemuVersion qemu_version; /* its probed version */
} HelperDefinition;

void helper_definition_free(HelperDefinition *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperDefinition, helper_definition_free)

/* Everything that must hold before VM `name` may start; the first failure is the error, saying
 * what to do next. First what the argv is made of (a failure here leaves nothing to show):
 *  - the definition exists and its manifest is valid                  NOT_FOUND / INVALID_ARGUMENT
 *  - app-compose.json hashes to the manifest's compose_hash           FAILED (both hashes named)
 *  - the image is in the store, its artefacts confined to its dir     NOT_FOUND / FAILED
 *  - the QEMU binary is trusted (root-owned path), its version probed  FAILED / NOT_FOUND
 * then what this host says (host facts from sysfs_root, like everywhere):
 *  - [limits] max_vcpus, max_memory; each forward inside port_range,
 *    not in reserved_ports, not in hostapi_port_range                INVALID_ARGUMENT
 *  - vCPUs ≤ the host's online CPUs, memory ≤ the host's memory      INVALID_ARGUMENT / FAILED
 *  - each GPU/NVSwitch exists, is an NVIDIA GPU (gpus) or NVSwitch
 *    (nvswitches), is bound to vfio-pci ("lium-cvm gpu bind SLOT")    NOT_FOUND / INVALID_ARGUMENT
 *    and no process holds its vfio nodes open                        DEVICE_IN_USE
 *  - each forward's host address:port can be bound now               BUSY / INVALID_ARGUMENT
 * Reads only; an absolute image_path (or any unknown manifest key) is refused by the manifest
 * validator, and no path ever comes from the definition. A VM that is running holds its own
 * ports and devices, so StartVm answers "already running" before calling this. Thread-safe. */
HelperDefinition *helper_instance_validate(const LcvmConfig *config, const char *name,
                                           GError **error);
/* The same for DryRun: a failure of the first group is the error (NULL); then EVERY refusal of
 * the second group is appended to refusals (GError *, owned by the array), and the definition
 * is returned so the argv can still be shown. */
HelperDefinition *helper_instance_validate_all(const LcvmConfig *config, const char *name,
                                               GPtrArray *refusals, GError **error);

/* The devices (GPUs, then NVSwitches) VM name's definition passes through, read from its
 * manifest alone, so a start can lock them before validating anything else. The same errors
 * as validation for a missing or invalid definition. Thread-safe. */
GStrv helper_instance_devices(const LcvmConfig *config, const char *name, GError **error);
GStrv helper_instance_devices_of(const LcvmManifest *manifest);

/* The spec the argv builder and .sys-config.json are made from: def (QEMU, definition, image)
 * and vsock_cid (a start passes the CID it reserved; a dry run the first of cid_range). Refuses
 * an image whose digest is not the definition's os_image_hash. The spec borrows from def and
 * config: free it first. */
LcvmQemuSpec *helper_instance_spec(const LcvmConfig *config, const HelperDefinition *def,
                                   guint vsock_cid, GError **error);

/* Assembles state_dir/instances/NAME/ for a start, as root:
 *  - instances/NAME/ (root, 0711) is created when absent; no component below state_dir may be
 *    a symlink, and an existing one must be a root-owned directory;
 *  - a new shared/ is built next to the old one and swapped in atomically: COPIES of the
 *    definition's app-compose.json (its sha256 recomputed on the copied bytes must equal the
 *    manifest's compose_hash, else FAILED naming both), .user-config and .encrypted-env when
 *    present (the init and pre-launch scripts travel inside app-compose.json, as the reference
 *    launcher passes them), the guest's own .instance_info carried over from the old shared/,
 *    and .sys-config.json (lcvm_sys_config_json of spec, host_api_url
 *    http://10.0.2.2:HOSTAPI_PORT/api) — written whole at every start;
 *  - hda.img is created on the first start only, by `qemu-img create -f qcow2` ([tools]
 *    qemu_img, root-owned) confined as vm_uid through helper_spawn; an existing one is kept;
 *  - shared/, its files and hda.img are handed to vm_uid:vm_uid (shared/ 0700, files 0600).
 * On failure nothing this call created is left: a new instance directory is removed whole,
 * a new data disk is removed, and an existing instance keeps its previous shared/ untouched.
 * serial.log is the start's business. vm_uid must not be 0. Thread-safe per VM name (the
 * caller holds the VM's lock). */
gboolean helper_instance_prepare(const LcvmConfig *config, const HelperDefinition *def,
                                 const LcvmQemuSpec *spec, uid_t vm_uid, guint16 hostapi_port,
                                 GError **error);
