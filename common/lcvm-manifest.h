/* SPDX-License-Identifier: MIT */
/* vm-manifest.json: the one model of a VM definition (state_dir/vms/NAME/) and its one
 * validator. The frontend writes it at `new`; the helper reads it from a directory operators
 * can write, so loading never follows a symlink, is size-capped, refuses unknown keys and
 * checks every field before anything uses it. No path is ever taken from a manifest: the
 * image is a name resolved in the image store, the slots and ports are checked values.
 *
 * File format (written with Python json.dump(indent=4) bytes, keys in this order):
 *   {"manifest_version": 1, "name": "vm1", "image": "dstack-nvidia-0.5.11", "vcpus": 4,
 *    "memory": <bytes>, "disk": <bytes>, "gpu_attach": "listed"|"all",
 *    "gpus": ["0000:19:00.0", ...], "nvswitches": ["0000:05:00.0", ...],
 *    "ports": [{"protocol": "tcp", "address": "0.0.0.0", "host_port": 2200, "guest_port": 22}],
 *    "hugepages": false, "pin_numa": false,
 *    "compose_hash": "<64 hex>", "os_image_hash": "<64 hex>", "created_at_ms": <u64>} */
#pragma once
#include <glib.h>
#include <sys/types.h>

#include "lcvm-config.h"
#include "lcvm-layout.h" /* the definition's file names */

#define LCVM_MANIFEST_VERSION 1

/* Size caps for files read from a definition directory. */
#define LCVM_MANIFEST_MAX_SIZE    (1u * 1024 * 1024)
#define LCVM_APP_COMPOSE_MAX_SIZE (50u * 1024 * 1024) /* the guest's own limit */
#define LCVM_USER_CONFIG_MAX_SIZE (50u * 1024 * 1024)

/* Field limits the validator enforces. */
#define LCVM_MANIFEST_MAX_VCPUS   1024
#define LCVM_MANIFEST_MIN_MEMORY  (G_GUINT64_CONSTANT(64) << 20)
#define LCVM_MANIFEST_MIN_DISK    (G_GUINT64_CONSTANT(1) << 30)
#define LCVM_MANIFEST_MAX_DEVICES 64
/* QEMU takes every forward in one -netdev argument, and one argument may not exceed
 * 128 KiB (MAX_ARG_STRLEN); 1024 forwards stay well below that. */
#define LCVM_MANIFEST_MAX_PORTS 1024

typedef enum {
  LCVM_PROTOCOL_TCP,
  LCVM_PROTOCOL_UDP,
} LcvmProtocol;

typedef struct {
  LcvmProtocol protocol;
  char *address; /* host bind address: an IPv4 literal in canonical dotted-quad form (it goes
                  * into QEMU's hostfwd= text, where ',' or ':' would change the option) */
  guint16 host_port;
  guint16 guest_port;
} LcvmPortForward;

typedef enum {
  LCVM_GPU_ATTACH_LISTED, /* the slots the operator listed (possibly none) */
  LCVM_GPU_ATTACH_ALL,    /* CVM_GPUS=all, resolved at `new` to every GPU and NVSwitch */
} LcvmGpuAttach;

typedef struct {
  char *name;  /* VM name (lcvm_vm_name_valid), equal to its directory's name */
  char *image; /* image directory name in state_dir/images (lcvm_image_name_is_valid rules) */
  guint vcpus;
  guint64 memory; /* bytes, a multiple of 1 MiB */
  guint64 disk;   /* bytes, a multiple of 1 MiB */
  LcvmGpuAttach gpu_attach;
  GStrv gpus;       /* canonical DDDD:BB:DD.F; passed through first, in this order */
  GStrv nvswitches; /* canonical DDDD:BB:DD.F; passed through after the GPUs */
  GArray *ports;    /* LcvmPortForward, in hostfwd order */
  gboolean hugepages;
  gboolean pin_numa;
  char *compose_hash;  /* sha256 of app-compose.json, 64 lower-case hex */
  char *os_image_hash; /* the image's digest.txt, 64 lower-case hex */
  guint64 created_at_ms;
} LcvmManifest;

/* An empty manifest (ports array and empty GPU lists allocated), for building one. */
LcvmManifest *lcvm_manifest_new(void);
void lcvm_manifest_free(LcvmManifest *manifest);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmManifest, lcvm_manifest_free)

/* Appends a forward (copies address). */
void lcvm_manifest_add_port(LcvmManifest *manifest, LcvmProtocol protocol, const char *address,
                            guint16 host_port, guint16 guest_port);
const char *lcvm_protocol_name(LcvmProtocol protocol);

/* Checks every field: name, image name, vCPU/memory/disk bounds, canonical and distinct slots
 * (no slot in both lists), at most LCVM_MANIFEST_MAX_PORTS ports 1-65535 with a protocol, an IPv4
 * address and no two forwards on the same protocol and host port, both hashes 64 lower-case hex,
 * created_at_ms > 0. */
gboolean lcvm_manifest_validate(const LcvmManifest *manifest, GError **error);

/* Checks the definition against the host's configured limits: max_vcpus, max_memory, host
 * ports inside port_range and outside reserved_ports and hostapi_port_range. The first
 * violation is the error. */
gboolean lcvm_manifest_check_limits(const LcvmManifest *manifest, const LcvmConfig *config,
                                    GError **error);
/* The same checks, every violation appended to refusals (GError *, INVALID_ARGUMENT). */
void lcvm_manifest_limit_refusals(const LcvmManifest *manifest, const LcvmConfig *config,
                                  GPtrArray *refusals);

/* Parses and validates; unknown keys, wrong types and missing keys are errors. */
LcvmManifest *lcvm_manifest_parse(const char *data, gsize len, GError **error);

/* Reads LCVM_MANIFEST_FILE in the directory dirfd (O_NOFOLLOW, LCVM_MANIFEST_MAX_SIZE) and
 * parses it. The caller must still compare manifest->name with the directory it opened —
 * lcvm_manifest_load_vm does both. */
LcvmManifest *lcvm_manifest_load_at(int dirfd, GError **error);

/* Opens vms_dirfd/name (O_DIRECTORY|O_NOFOLLOW), loads its manifest and checks that the
 * manifest names the directory it is in. On success *vm_dirfd (if not NULL) receives the
 * opened directory, which the caller closes. */
LcvmManifest *lcvm_manifest_load_vm(int vms_dirfd, const char *name, int *vm_dirfd, GError **error);

/* The file's bytes (validates first; NULL and error when invalid). */
char *lcvm_manifest_to_json(const LcvmManifest *manifest, gsize *len, GError **error);

/* Validates and writes LCVM_MANIFEST_FILE into dirfd atomically with the given mode. */
gboolean lcvm_manifest_write_at(int dirfd, const LcvmManifest *manifest, mode_t mode,
                                GError **error);
