/* SPDX-License-Identifier: MIT */
/* The check of a definition before it may start (see helper-instance.h), shared by DryRun and
 * StartVm. Reads the operator-writable definition without following a symlink and asks the
 * kernel about the host (PCI devices, CPUs, ports) and the helper's GPU mode cache (Lium's
 * mode policy); it never writes, reserves or spawns anything except the confined QEMU version
 * probe. */
#include "helper-instance.h"
#include "helper-instance-private.h"
#include "helper-qemu.h"
#include "lcvm-board-policy.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-layout.h"
#include "lcvm-pci.h"
#include "lcvm-resources.h"
#include "lcvm-safe-io.h"
#include "lcvm-sha256.h"
#include "lcvm-sysfs.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <unistd.h>

void
helper_definition_free(HelperDefinition *def)
{
  if (def == NULL)
    return;
  lcvm_manifest_free(def->manifest);
  lcvm_image_free(def->image);
  g_free(def->qemu_path);
  g_free(def);
}

/* ---- the definition ---- */

int
helper_instance_open_definition(const LcvmConfig *config, const char *name, GError **error)
{
  g_autofree char *vms = lcvm_layout_vms_dir(config);
  g_autoptr(GError) local = NULL;
  lcvm_autofd int vms_fd = lcvm_open_dir_at(AT_FDCWD, vms, &local);
  int vm_fd = vms_fd < 0 ? -1 : lcvm_open_dir_at(vms_fd, name, &local);
  if (vm_fd >= 0)
    return vm_fd;
  if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "VM %s is not defined (%s); `lium-cvm list` shows the definitions, "
                "`lium-cvm new %s` creates it",
                name, local->message, name);
  else
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "VM %s: refusing its definition directory (%s); it must be a directory, not a "
                "symlink — define the VM again",
                name, local->message);
  return -1;
}

static LcvmManifest *
load_manifest(int vm_fd, const char *name, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(LcvmManifest) manifest = lcvm_manifest_load_at(vm_fd, &local);
  if (manifest == NULL) {
    g_set_error(error, LCVM_ERROR,
                g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)
                    ? LCVM_ERROR_NOT_FOUND
                    : LCVM_ERROR_INVALID_ARGUMENT,
                "VM %s: %s", name, local->message);
    return NULL;
  }
  if (!g_str_equal(manifest->name, name)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "VM %s: %s names the VM '%s'; define the VM again", name, LCVM_MANIFEST_FILE,
                manifest->name);
    return NULL;
  }
  return g_steal_pointer(&manifest);
}

GStrv
helper_instance_devices_of(const LcvmManifest *manifest)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  g_strv_builder_addv(b, (const char **)manifest->gpus);
  g_strv_builder_addv(b, (const char **)manifest->nvswitches);
  return g_strv_builder_end(b);
}

GStrv
helper_instance_devices(const LcvmConfig *config, const char *name, GError **error)
{
  lcvm_autofd int vm_fd = helper_instance_open_definition(config, name, error);
  if (vm_fd < 0)
    return NULL;
  g_autoptr(LcvmManifest) manifest = load_manifest(vm_fd, name, error);
  return manifest != NULL ? helper_instance_devices_of(manifest) : NULL;
}

/* ---- the measured compose file ---- */

gboolean
helper_instance_check_compose(const LcvmManifest *manifest, const char *bytes, gsize len,
                              GError **error)
{
  g_autofree char *hash = lcvm_sha256_data(bytes, len);
  if (g_str_equal(hash, manifest->compose_hash))
    return TRUE;
  /* The guest measures app-compose.json into RTMR3 and the validator whitelists the hash
   * `new` recorded: a changed file would boot a VM that can never attest. */
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "VM %s: app-compose.json hashes to %s but the definition recorded compose hash %s; "
              "the measured file was changed — restore it or define the VM again",
              manifest->name, hash, manifest->compose_hash);
  return FALSE;
}

char *
helper_instance_read_definition_file(int vm_fd, const LcvmManifest *manifest, const char *file,
                                     gsize max, gsize *len, GError **error)
{
  char *bytes = NULL;
  g_autoptr(GError) local = NULL;
  if (lcvm_read_untrusted_file_at(vm_fd, file, max, &bytes, len, &local))
    return bytes;
  if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    g_propagate_error(error, g_steal_pointer(&local));
  else
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "VM %s: refusing %s of the definition (%s); it must be a regular file of at most "
                "%" G_GSIZE_FORMAT " bytes, never a symlink or a hard link — define the VM again",
                manifest->name, file, local->message, max);
  return NULL;
}

static gboolean
check_compose_file(int vm_fd, const LcvmManifest *manifest, GError **error)
{
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  g_autofree char *bytes = helper_instance_read_definition_file(
      vm_fd, manifest, LCVM_APP_COMPOSE_FILE, LCVM_APP_COMPOSE_MAX_SIZE, &len, &local);
  if (bytes == NULL && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "VM %s: the definition has no %s; define the VM again", manifest->name,
                LCVM_APP_COMPOSE_FILE);
    return FALSE;
  }
  if (bytes == NULL) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  return helper_instance_check_compose(manifest, bytes, len, error);
}

/* ---- the host's limits, CPUs and memory ---- */

/* Each refusal is one GError in refusals; every check adds what it finds and goes on. */
static void
refuse(GPtrArray *refusals, GError *error)
{
  g_ptr_array_add(refusals, error);
}

static void
check_limits(const LcvmConfig *config, const LcvmManifest *manifest, GPtrArray *refusals)
{
  guint first = refusals->len;
  lcvm_manifest_limit_refusals(manifest, config, refusals);
  for (guint i = first; i < refusals->len; i++)
    g_prefix_error((GError **)&refusals->pdata[i], "VM %s cannot start here: ", manifest->name);
}

static void
check_host_cpus(const LcvmConfig *config, const LcvmManifest *manifest, GPtrArray *refusals)
{
  GError *error = NULL;
  guint cpus = 0;
  if (!lcvm_host_cpu_count(config->sysfs_root, &cpus, &error)) {
    g_prefix_error(&error, "VM %s: the host's CPUs are unknown: ", manifest->name);
    refuse(refusals, error);
  } else if (manifest->vcpus > cpus) {
    refuse(refusals, g_error_new(LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                                 "VM %s cannot start here: %u vCPUs exceed the %u CPUs this host "
                                 "has online; define the VM again with CVM_VCPUS=%u or fewer",
                                 manifest->name, manifest->vcpus, cpus, cpus));
  }
}

static void
check_host_memory(const LcvmConfig *config, const LcvmManifest *manifest, GPtrArray *refusals)
{
  GError *error = NULL;
  guint64 memory = 0;
  if (!lcvm_host_memory(config->sysfs_root, &memory, &error)) {
    g_prefix_error(&error, "VM %s: the host's memory is unknown: ", manifest->name);
    refuse(refusals, error);
  } else if (manifest->memory > memory) {
    refuse(refusals,
           g_error_new(LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                       "VM %s cannot start here: %" G_GUINT64_FORMAT " MiB of memory exceed the "
                       "%" G_GUINT64_FORMAT " MiB this host has; define the VM again with "
                       "CVM_MEMORY=%" G_GUINT64_FORMAT "G or less",
                       manifest->name, manifest->memory >> 20, memory >> 20, memory >> 30));
  }
}

/* ---- the image and QEMU ---- */

static LcvmImage *
load_image(const LcvmConfig *config, const LcvmManifest *manifest, GError **error)
{
  g_autoptr(GError) local = NULL;
  LcvmImage *image = lcvm_image_load(config, manifest->image, &local);
  if (image == NULL)
    g_set_error(error, LCVM_ERROR,
                g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ? LCVM_ERROR_NOT_FOUND
                                                                         : LCVM_ERROR_FAILED,
                "VM %s: %s", manifest->name, local->message);
  return image;
}

/* ---- the passed-through devices ---- */

static const char *
kind_name(LcvmPciKind kind)
{
  return kind == LCVM_PCI_NVSWITCH ? "NVSwitch" : "GPU";
}

static gboolean
device_missing(const LcvmConfig *config, const char *vm, const char *slot, LcvmPciKind kind,
               GError **error)
{
  g_autofree char *dir = lcvm_pci_device_dir(config->sysfs_root, slot);
  if (g_file_test(dir, G_FILE_TEST_IS_DIR)) {
    g_autofree char *vendor = lcvm_sysfs_read(dir, "vendor", NULL);
    g_autofree char *class_code = lcvm_sysfs_read(dir, "class", NULL);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "VM %s: %s is not an NVIDIA GPU or NVSwitch (vendor %s, class %s), so it cannot "
                "be passed through; define the VM again with slots `lium-cvm lsgpu` lists",
                vm, slot, vendor ? vendor : "?", class_code ? class_code : "?");
    return FALSE;
  }
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
              "VM %s: %s %s is not on this host's PCI bus; `lium-cvm lsgpu` lists the GPUs — "
              "define the VM again with those",
              vm, kind_name(kind), slot);
  return FALSE;
}

static gboolean
check_device(const LcvmConfig *config, LcvmPciInventory *inv, const char *vm, const char *slot,
             LcvmPciKind kind, GError **error)
{
  const LcvmPciDevice *d = lcvm_pci_inventory_find(inv, slot);
  if (d == NULL)
    return device_missing(config, vm, slot, kind, error);
  if (d->kind != kind) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "VM %s lists %s as a %s, but it is an %s; define the VM again", vm, slot,
                kind_name(kind), kind_name(d->kind));
    return FALSE;
  }
  if (g_strcmp0(d->state.driver, LCVM_VFIO_DRIVER) != 0) {
    g_autofree char *now = d->state.driver ? g_strdup_printf("is bound to %s", d->state.driver)
                                           : g_strdup("has no driver");
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "VM %s: %s %s %s, not vfio-pci, so it cannot be passed through; run "
                "`lium-cvm gpu bind %s` first",
                vm, kind_name(kind), slot, now, slot);
    return FALSE;
  }
  if (d->holders->len > 0) {
    const LcvmPciHolder *h = d->holders->pdata[0];
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_DEVICE_IN_USE,
                "VM %s: %s %s is in use: process %d (%s) holds %s open; stop the VM or process "
                "using it first (`lium-cvm list` shows the running VMs)",
                vm, kind_name(kind), slot, h->pid, h->command, h->path);
    return FALSE;
  }
  return TRUE;
}

/* Lium's GPU mode policy (lcvm-board-policy.h) by the modes the helper cached. */
static void
check_mode_policy(const LcvmConfig *config, LcvmPciInventory *inv, const LcvmManifest *manifest,
                  GPtrArray *refusals)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_load(config->state_dir, &local);
  if (modes == NULL) {
    g_warning("VM %s: GPU modes not judged: %s", manifest->name, local->message);
    return;
  }
  g_autoptr(GPtrArray) issues = lcvm_board_policy_vm(
      inv, modes, (const char *const *)manifest->gpus, (const char *const *)manifest->nvswitches);
  if (issues->len == 0)
    return;
  g_autofree char *text = lcvm_board_policy_text(issues);
  refuse(refusals, g_error_new(LCVM_ERROR, LCVM_ERROR_FAILED,
                               "VM %s breaks the GPU mode policy: %s", manifest->name, text));
}

static void
check_device_list(const LcvmConfig *config, LcvmPciInventory *inv, const LcvmManifest *manifest,
                  char **slots, LcvmPciKind kind, GPtrArray *refusals)
{
  for (guint i = 0; slots[i] != NULL; i++) {
    GError *error = NULL;
    if (!check_device(config, inv, manifest->name, slots[i], kind, &error))
      refuse(refusals, error);
  }
}

static void
check_devices(const LcvmConfig *config, const LcvmManifest *manifest, GPtrArray *refusals)
{
  if (manifest->gpus[0] == NULL && manifest->nvswitches[0] == NULL)
    return;
  GError *error = NULL;
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(config->sysfs_root, &error);
  if (inv == NULL) {
    refuse(refusals, error);
    return;
  }
  lcvm_pci_find_holders(inv, config->dev_root, config->proc_root);
  check_device_list(config, inv, manifest, manifest->gpus, LCVM_PCI_GPU, refusals);
  check_device_list(config, inv, manifest, manifest->nvswitches, LCVM_PCI_NVSWITCH, refusals);
  check_mode_policy(config, inv, manifest, refusals);
}

/* ---- the forwarded ports ---- */

static void
check_ports_free(const LcvmManifest *manifest, GPtrArray *refusals)
{
  for (guint i = 0; i < manifest->ports->len; i++) {
    GError *error = NULL;
    if (!lcvm_port_check_free(&g_array_index(manifest->ports, LcvmPortForward, i), &error)) {
      g_prefix_error(&error, "VM %s cannot start: ", manifest->name);
      refuse(refusals, error);
    }
  }
}

/* ---- the whole check ---- */

static gboolean
check_definition(const LcvmConfig *config, const char *name, HelperDefinition *def, GError **error)
{
  lcvm_autofd int vm_fd = helper_instance_open_definition(config, name, error);
  if (vm_fd < 0)
    return FALSE;
  def->manifest = load_manifest(vm_fd, name, error);
  return def->manifest != NULL && check_compose_file(vm_fd, def->manifest, error);
}

/* What this host says to the definition now. */
static void
check_host(const LcvmConfig *config, const LcvmManifest *manifest, GPtrArray *refusals)
{
  check_limits(config, manifest, refusals);
  check_host_cpus(config, manifest, refusals);
  check_host_memory(config, manifest, refusals);
  check_devices(config, manifest, refusals); /* and Lium's GPU mode policy */
  check_ports_free(manifest, refusals);
}

HelperDefinition *
helper_instance_validate_all(const LcvmConfig *config, const char *name, GPtrArray *refusals,
                             GError **error)
{
  g_autoptr(HelperDefinition) def = g_new0(HelperDefinition, 1);
  if (!check_definition(config, name, def, error))
    return NULL;
  def->image = load_image(config, def->manifest, error);
  if (def->image == NULL ||
      !helper_qemu_resolve(config, &def->qemu_path, &def->qemu_version, error))
    return NULL;
  check_host(config, def->manifest, refusals);
  return g_steal_pointer(&def);
}

HelperDefinition *
helper_instance_validate(const LcvmConfig *config, const char *name, GError **error)
{
  g_autoptr(GPtrArray) refusals = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  g_autoptr(HelperDefinition) def = helper_instance_validate_all(config, name, refusals, error);
  if (def == NULL)
    return NULL;
  if (refusals->len > 0) {
    g_propagate_error(error, g_ptr_array_steal_index(refusals, 0));
    return NULL;
  }
  return g_steal_pointer(&def);
}

LcvmQemuSpec *
helper_instance_spec(const LcvmConfig *config, const HelperDefinition *def, guint vsock_cid,
                     GError **error)
{
  LcvmQemuHost host = { def->qemu_path, def->qemu_version, vsock_cid };
  return lcvm_qemu_spec_from(def->manifest, def->image, config, &host, error);
}
