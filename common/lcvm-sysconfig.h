/* SPDX-License-Identifier: MIT */
/* The guest's node config: shared/.sys-config.json and the `vm_config` JSON string inside it,
 * byte for byte as the reference launcher writes them (Python json.dump/json.dumps). The
 * verifier rebuilds RTMR0 from vm_config, so its numbers come from the same spec the argv
 * builder uses — never from a second computation — and `hugepages` is the real value.
 * Pure: returns bytes; the helper writes the file (whole, at every start). */
#pragma once
#include <glib.h>

#include "lcvm-qemu-argv.h"

typedef struct {
  guint16 host_api_port;       /* the guest reaches http://10.0.2.2:PORT/api (slirp gateway) */
  const char *os_image_hash;   /* the image's digest.txt */
  const char *image;           /* image directory name */
  const char *ovmf_variant;    /* metadata.json ovmf_variant; NULL: absent from vm_config */
  const char *docker_registry; /* client.conf [docker] registry; NULL: absent */
} LcvmGuestConfig;

/* json.dumps of {spec_version, os_image_hash, cpu_count, memory_size, qemu_single_pass_add_pages,
 * pic, pci_hole64_size, num_gpus, num_nvswitches, hugepages, hotplug_off, qemu_version, image
 * [, ovmf_variant]}, one line. */
char *lcvm_vm_config_json(const LcvmQemuSpec *spec, const LcvmGuestConfig *guest, GError **error);

/* json.dump(indent=4) of {[docker_registry,] host_api_url, host_vsock_port, vm_config}. */
char *lcvm_sys_config_json(const LcvmQemuSpec *spec, const LcvmGuestConfig *guest, gsize *len,
                           GError **error);
