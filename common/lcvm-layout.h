/* SPDX-License-Identifier: MIT */
/* The layout of the two roots of lium-cvm.conf [paths]: every name below state_dir and
 * runtime_dir, and the paths built from them. Helper, frontend and tests name these places
 * only through here, so the tree cannot drift apart between writer and reader. The layout is
 * what existing installs hold on disk: a name here never changes.
 *
 *   state_dir/                      root 0755 (tmpfiles)
 *     gpu-modes.json                helper, 0644: the GPU mode cache (lcvm-gpu-modes.h);
 *                                   read by the frontend too
 *     uid-cursor                    helper, 0644: the reservation round (helper-uid-cursor.h)
 *     key-provider.pin              helper: the key provider's image ids, pinned at its first start
 *     key-provider.mrenclave        helper, 0644: the MRENCLAVE the key provider printed last
 *     images/                       root:lium-cvm 2775: the OS image store (lcvm-image.h)
 *       NAME/                       frontend (download), 2775, files 0644: dstack's layout
 *                                   (metadata.json, sha256sum.txt, digest.txt and the artefacts
 *                                   metadata.json names: firmware, kernel, initrd, rootfs)
 *       .NAME.verified              frontend: the stamp of the last full hash check
 *       .NAME.lock                  frontend: flock'ed while NAME is installed or removed
 *       .NAME.extract-XXXXXX/ .NAME.tar.partial .NAME.removing-XXXXXXXX   temporaries
 *     vms/                          root:lium-cvm 2770: the definitions (lcvm-manifest.h)
 *       NAME/                       frontend (`new`), 2770, files 0640: vm-manifest.json,
 *                                   app-compose.json, .user-config, init_script.sh,
 *                                   pre_launch_script.sh; never written by the helper
 *       .NAME.new-XXXXXXXX/ .NAME.removing-XXXXXXXX   the frontend's temporaries
 *     instances/                    root 0711: helper only; operators reach known names
 *       NAME/                       root 0711 (helper-instance.h)
 *         hda.img                   the VM's uid, 0600: the data disk (qemu-img, first start)
 *         shared/                   the guest's 9p share: 0700 the VM's uid after assembly,
 *                                   02770 QEMU uid:bridge uid while it runs; holds copies of
 *                                   app-compose.json, .user-config, .encrypted-env, and
 *                                   .sys-config.json, .instance_info (written by the guest)
 *         serial.log qemu.log       root:lium-cvm 0640, written by QEMU (O_APPEND fds)
 *         last-exit                 root 0600: the record of an unexpected exit (helper-crash.h)
 *         key-provider.mrenclave    0644: the key provider the data disk was made with
 *   runtime_dir/                    root 0700 (helper-runtime-record.h)
 *     NAME/                         root 0700: one running VM
 *       record                      the runtime record (re-adoption after a helper restart)
 *       qmp.sock                    QEMU's QMP listening socket
 *       events                      root 0600: the guest events the bridge appends
 *     vfio/                         root 0700: SLOT, a device's driver before vfio-pci
 *                                   (helper-vfio.c)
 *
 * runtime_dir/vfio shares runtime_dir with the VMs' runtime dirs: re-adoption skips it
 * (helper_runtime_names) and lcvm_vm_name_valid refuses "vfio" as a VM name; the directory
 * keeps the name installs have.
 *
 * Every function that builds a path from a VM name refuses a name that is not valid
 * (lcvm_vm_name_valid), so no caller can reach outside its VM's directory through it. */
#pragma once
#include <glib.h>

#include "lcvm-config.h"

/* ---- state_dir ---- */
#define LCVM_STATE_IMAGES                "images"
#define LCVM_STATE_VMS                   "vms"
#define LCVM_STATE_INSTANCES             "instances"
#define LCVM_GPU_MODES_FILE              "gpu-modes.json"
#define LCVM_UID_CURSOR_FILE             "uid-cursor"
#define LCVM_KEY_PROVIDER_PIN_FILE       "key-provider.pin"
#define LCVM_KEY_PROVIDER_MRENCLAVE_FILE "key-provider.mrenclave"

/* ---- state_dir/images/NAME (dstack's own names) ---- */
#define LCVM_IMAGE_METADATA_FILE  "metadata.json"
#define LCVM_IMAGE_SHA256SUM_FILE "sha256sum.txt"
#define LCVM_IMAGE_DIGEST_FILE    "digest.txt"

/* ---- state_dir/vms/NAME ---- */
#define LCVM_MANIFEST_FILE          "vm-manifest.json"
#define LCVM_APP_COMPOSE_FILE       "app-compose.json"
#define LCVM_USER_CONFIG_FILE       ".user-config"
#define LCVM_INIT_SCRIPT_FILE       "init_script.sh"
#define LCVM_PRE_LAUNCH_SCRIPT_FILE "pre_launch_script.sh"

/* ---- state_dir/instances/NAME ---- */
#define LCVM_INSTANCE_DATA_DISK      "hda.img"
#define LCVM_INSTANCE_SHARED_DIR     "shared"
#define LCVM_INSTANCE_SERIAL_LOG     "serial.log"
#define LCVM_INSTANCE_QEMU_LOG       "qemu.log"
#define LCVM_INSTANCE_LAST_EXIT      "last-exit"
#define LCVM_INSTANCE_MRENCLAVE_FILE "key-provider.mrenclave"
/* ... and of its shared/ (besides the copies of the definition's files) */
#define LCVM_SHARED_SYS_CONFIG    ".sys-config.json"
#define LCVM_SHARED_ENCRYPTED_ENV ".encrypted-env"
#define LCVM_SHARED_INSTANCE_INFO ".instance_info"

/* ---- runtime_dir ---- */
#define LCVM_RUNTIME_VFIO_DIR "vfio"
/* ... and runtime_dir/NAME */
#define LCVM_RUNTIME_RECORD "record"
#define LCVM_RUNTIME_QMP    "qmp.sock"
#define LCVM_RUNTIME_EVENTS "events"

/* state_dir/images, state_dir/vms, state_dir/instances. */
char *lcvm_layout_images_dir(const LcvmConfig *config);
char *lcvm_layout_vms_dir(const LcvmConfig *config);
char *lcvm_layout_instances_dir(const LcvmConfig *config);

/* state_dir/images/NAME, refusing an image name lcvm_image_name_is_valid refuses (with
 * G_IO_ERROR_INVALID_ARGUMENT, what lcvm_image_load has always answered); the other
 * functions refuse with LCVM_ERROR_INVALID_ARGUMENT. */
char *lcvm_layout_image_dir(const LcvmConfig *config, const char *image, GError **error);
/* The store's entries beside image NAME: ".NAME.verified" and ".NAME.lock" (names, not
 * paths: the store opens them beneath its dirfd). */
char *lcvm_layout_image_stamp(const char *image);
char *lcvm_layout_image_lock(const char *image);

/* state_dir/vms/NAME. */
char *lcvm_layout_vm_dir(const LcvmConfig *config, const char *name, GError **error);

/* state_dir/instances/NAME, and state_dir/instances/NAME/FILE (file: one of the names above). */
char *lcvm_layout_instance_dir(const LcvmConfig *config, const char *name, GError **error);
char *lcvm_layout_instance_file(const LcvmConfig *config, const char *name, const char *file,
                                GError **error);
/* "instances/NAME" (file NULL) or "instances/NAME/FILE": relative to state_dir, for code that
 * walks beneath a state_dir fd without following a link. */
char *lcvm_layout_instance_rel(const char *name, const char *file, GError **error);

/* runtime_dir/NAME and runtime_dir/NAME/FILE. */
char *lcvm_layout_runtime_dir(const LcvmConfig *config, const char *name, GError **error);
char *lcvm_layout_runtime_file(const LcvmConfig *config, const char *name, const char *file,
                               GError **error);

/* runtime_dir/vfio, and the record runtime_dir/vfio/SLOT of a canonical PCI slot. */
char *lcvm_layout_vfio_records_dir(const LcvmConfig *config);
char *lcvm_layout_vfio_record(const LcvmConfig *config, const char *slot, GError **error);
