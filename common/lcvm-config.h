/* SPDX-License-Identifier: MIT */
/* lium-cvm.conf: one GKeyFile read by the helper (--config, root-owned) and by the frontend
 * (LIUM_CVM_CONFIG / --config). Every filesystem root either side touches comes from here,
 * so tests redirect the whole program with one file. Unknown groups or keys are errors:
 * a typo must not silently fall back to a default. */
#pragma once
#include <glib.h>

typedef struct {
  guint64 min;
  guint64 max;
} LcvmRange;

typedef struct {
  /* [paths] */
  char *state_dir;
  char *runtime_dir;
  char *hugepages_dir;
  char *sysfs_root;
  char *dev_root;
  char *proc_root;
  char *modules_load_dir;
  char *modprobe_dir;
  char *dstack_client_conf; /* dstack's client.conf: its [qemu] path is the QEMU fallback */
  char *qcnl_conf; /* Intel's QCNL settings (PCCS URL) that qgsd and the key provider use */
  /* [qemu] */
  char *qemu_path; /* empty: /etc/dstack/client.conf [qemu] path, then PATH */
  LcvmRange uid_range;
  gboolean allow_no_tee;
  char *accel; /* "kvm" or "tcg" */
  /* [limits] */
  guint64 max_vcpus;  /* 0: no limit beyond the host's */
  guint64 max_memory; /* bytes; 0: no limit */
  LcvmRange port_range;
  LcvmRange hostapi_port_range;
  LcvmRange cid_range;
  GArray *reserved_ports; /* guint16 */
  /* [tools] */
  char *gpu_admin_tools;
  guint64 gpu_admin_tools_timeout; /* seconds one run may take; then it is killed */
  char *docker;
  char *taskset;    /* prefixes QEMU when a definition asks for pin_numa */
  char *qemu_img;   /* creates a VM's data disk, confined as the VM's uid */
  char *journalctl; /* check --deep reads qgsd's journal with it */
  char *mpa_manage; /* check --deep asks it for the SGX registration status */
  char *hostapi;    /* lium-cvm-hostapi, spawned confined per VM as its bridge uid */
  /* [gpu] */
  gboolean sanitize_on_attach; /* bus-reset each passed GPU before every start */
  /* [key-provider] */
  char *key_provider_address; /* host:port */
  char *key_provider_compose_dir;
  /* [images] */
  char *default_image;
  char *image_url;    /* pattern; "%s" stands for the image name. Empty: the dstack release URL */
  char *image_sha256; /* archive sha256 of default_image when fetched from the default URL */
  guint64 download_connect_timeout; /* seconds */
  guint64 download_low_speed_limit; /* bytes/s; below it for low_speed_time seconds: retry */
  guint64 download_low_speed_time;  /* seconds */
  guint64 download_retries;         /* retries of a transient failure, with backoff */
  /* [attestation] */
  char *known_good; /* the known-good list; empty: /etc/lium-cvm, then the shipped one */
  gboolean attestation_enforce; /* refuse (not only warn) what validators will reject */
  char *qgsd_unit;              /* the quote generation service's systemd unit */
  /* [inventory] */
  char *lium_registry; /* Lium's registry of VM roots (cvm_upgrade_guard.sh) */
  char *sweep_roots;   /* space-separated directories searched for Lium checkouts' disks */
  /* [network] */
  GStrv guest_allow; /* CIDR prefixes a VM's QEMU uid may reach past the loopback guard */
  /* [helper] */
  guint64 idle_timeout; /* seconds; 0: never exit */
  guint64 bind_timeout; /* seconds the kernel gets to bind or release a device */
  /* [testing] — seams for the test suite, root-configured like everything else here */
  char *guest_agent_socket_dir; /* empty: the guest agent over AF_VSOCK (the real path);
                                 * else a directory of unix sockets CID.sock standing in
                                 * for it (a machine without vhost-vsock) */
} LcvmConfig;

LcvmConfig *lcvm_config_new_default(void);
LcvmConfig *lcvm_config_load(const char *path, GError **error);
LcvmConfig *lcvm_config_load_data(const char *data, GError **error);
void lcvm_config_free(LcvmConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmConfig, lcvm_config_free)

/* A path below a configured root: root + "/" + rel (rel is relative, never from a caller). */
char *lcvm_config_path(const char *root, const char *rel);

/* The effective configuration as (group.key → string) pairs, for GetInfo and `version`. */
GHashTable *lcvm_config_summary(const LcvmConfig *config);

/* A plain decimal number 0..max: digits only, no sign, no spaces. */
gboolean lcvm_parse_uint(const char *text, guint64 max, guint64 *out);

/* Size with an optional K/M/G/T suffix (binary units). */
gboolean lcvm_parse_size(const char *text, guint64 *out, GError **error);
