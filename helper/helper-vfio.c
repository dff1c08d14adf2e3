/* SPDX-License-Identifier: MIT */
/* vfio-pci binding (reference/gpu-and-host.md E.6) and the DMA entry limit.
 *
 * Writes go only to fixed attribute names: driver_override and driver/unbind of a validated
 * slot under sysfs_root/bus/pci/devices/, sysfs_root/bus/pci/drivers_probe, the bind file of
 * the driver a device had before (a recorded, validated name) and the vfio_iommu_type1
 * parameter. Never to a path a caller named. What a device had before a bind is recorded
 * under runtime_dir/vfio/ before it is changed, so an unbind restores it even after a helper
 * restart; a failure midway moves every device it changed back. The kernel acts after a write
 * returns, so each step waits for its effect (the driver link, the vfio-dev node). */
#include "helper-vfio.h"
#include "helper-job.h"
#include "helper-modules.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"
#include "lcvm-layout.h"
#include "lcvm-text.h"
#include "lcvm-pci.h"
#include "lcvm-safe-io.h"
#include "lcvm-sysfs.h"
#include "lcvm-validate.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define SLOTS_MAX       64
#define RECORD_MAX      1024
#define RECORD_GROUP    "device"
#define DRIVER_NAME_MAX 64

/* A device's driver binding: the driver (NULL: none) and driver_override (NULL: none). */
typedef struct {
  char *slot;
  char *driver;
  char *override;
  gboolean reprobe; /* no record of the state before: let the kernel pick a driver */
} Binding;

static void
binding_free(gpointer p)
{
  Binding *b = p;
  g_free(b->slot);
  g_free(b->driver);
  g_free(b->override);
  g_free(b);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Binding, binding_free)

static Binding *
binding_new(const char *slot, const char *driver, const char *override)
{
  Binding *b = g_new0(Binding, 1);
  b->slot = g_strdup(slot);
  b->driver = g_strdup(driver);
  b->override = g_strdup(override);
  return b;
}

static guint
timeout_ms(const LcvmConfig *c)
{
  return (guint)MIN(MAX(c->bind_timeout, 1), 3600) * 1000;
}

/* ---- slot validation ---- */

static void
set_not_nvidia(const LcvmConfig *c, const char *slot, GError **error)
{
  g_autofree char *dir = lcvm_pci_device_dir(c->sysfs_root, slot);
  g_autofree char *vendor = lcvm_sysfs_read(dir, "vendor", NULL);
  g_autofree char *device = lcvm_sysfs_read(dir, "device", NULL);
  g_autofree char *class_code = lcvm_sysfs_read(dir, "class", NULL);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
              "%s is not an NVIDIA GPU or NVSwitch (vendor %s, device %s, class %s): the helper "
              "binds only those ('lium-cvm lsgpu' lists them)",
              slot, vendor ? vendor : "?", device ? device : "?", class_code ? class_code : "?");
}

gboolean
helper_vfio_slot_shape_ok(const char *slot, GError **error)
{
  if (lcvm_slot_is_canonical(slot))
    return TRUE;
  g_autofree char *shown = lcvm_text_for_message(slot);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
              "'%s' is not a PCI slot: send DDDD:BB:DD.F in lower-case hex (such as "
              "0000:19:00.0), or the single word 'all'",
              shown);
  return FALSE;
}

static gboolean
check_slot(const LcvmConfig *c, LcvmPciInventory *inv, const char *slot, GError **error)
{
  if (!helper_vfio_slot_shape_ok(slot, error))
    return FALSE;
  g_autofree char *dir = lcvm_pci_device_dir(c->sysfs_root, slot);
  if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "there is no PCI device %s on this host ('lium-cvm lsgpu' lists the GPUs)", slot);
    return FALSE;
  }
  if (lcvm_pci_inventory_find(inv, slot) == NULL) {
    set_not_nvidia(c, slot, error);
    return FALSE;
  }
  return TRUE;
}

GStrv
helper_vfio_resolve_slots(const LcvmConfig *config, const char *const *slots, GError **error)
{
  guint n = slots ? g_strv_length((char **)slots) : 0;
  if (n == 0 || n > SLOTS_MAX) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "give between 1 and %d PCI slots, or the single word 'all' (got %u)", SLOTS_MAX, n);
    return NULL;
  }
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(config->sysfs_root, error);
  if (inv == NULL)
    return NULL;
  g_autoptr(GStrvBuilder) out = g_strv_builder_new();
  if (n == 1 && g_str_equal(slots[0], "all")) {
    if (inv->devices->len == 0) {
      g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                          "there is no NVIDIA GPU or NVSwitch on this host");
      return NULL;
    }
    for (guint i = 0; i < inv->devices->len; i++)
      g_strv_builder_add(out, ((LcvmPciDevice *)inv->devices->pdata[i])->slot);
    return g_strv_builder_end(out);
  }
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++) {
    if (!check_slot(config, inv, slots[i], error))
      return NULL;
    if (g_hash_table_add(seen, (gpointer)slots[i]))
      g_strv_builder_add(out, slots[i]);
  }
  return g_strv_builder_end(out);
}

/* ---- the record of what a device had before it was bound ---- */

static gboolean
driver_name_valid(const char *name)
{
  gsize len = name ? strlen(name) : 0;
  if (len == 0 || len > DRIVER_NAME_MAX || name[0] == '.')
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
      return FALSE;
  return TRUE;
}

static int
open_record_dir(const LcvmConfig *c, GError **error)
{
  g_autofree char *path = lcvm_layout_vfio_records_dir(c);
  if (g_mkdir_with_parents(path, 0700) < 0) {
    lcvm_set_errno(error, errno, "cannot create %s", path);
    return -1;
  }
  return lcvm_open_dir_at(AT_FDCWD, path, error);
}

static gboolean
record_save(const LcvmConfig *c, const LcvmPciDevice *d, GError **error)
{
  lcvm_autofd int dirfd = open_record_dir(c, error);
  if (dirfd < 0)
    return FALSE;
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_key_file_set_string(kf, RECORD_GROUP, "slot", d->slot);
  g_key_file_set_string(kf, RECORD_GROUP, "driver", d->state.driver ? d->state.driver : "");
  g_key_file_set_string(kf, RECORD_GROUP, "driver_override",
                        d->state.driver_override ? d->state.driver_override : "");
  gsize len = 0;
  g_autofree char *text = g_key_file_to_data(kf, &len, NULL);
  return lcvm_write_file_atomic_at(dirfd, d->slot, text, len, 0600, error);
}

/* The binding to restore for slot; a missing or unreadable record means "let the kernel pick". */
static Binding *
record_load(const LcvmConfig *c, const char *slot)
{
  Binding *b = binding_new(slot, NULL, NULL);
  b->reprobe = TRUE;
  lcvm_autofd int dirfd = open_record_dir(c, NULL);
  if (dirfd < 0)
    return b;
  g_autofree char *text = NULL;
  gboolean read = lcvm_read_file_at(dirfd, slot, RECORD_MAX, &text, NULL, NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!read || !g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, NULL))
    return b;
  g_autofree char *driver = g_key_file_get_string(kf, RECORD_GROUP, "driver", NULL);
  g_autofree char *override = g_key_file_get_string(kf, RECORD_GROUP, "driver_override", NULL);
  if (driver == NULL || override == NULL || (driver[0] && !driver_name_valid(driver)) ||
      (override[0] && !driver_name_valid(override)))
    return b;
  b->driver = driver[0] ? g_steal_pointer(&driver) : NULL;
  b->override = override[0] ? g_steal_pointer(&override) : NULL;
  b->reprobe = FALSE;
  return b;
}

static void
record_remove(const LcvmConfig *c, const char *slot)
{
  g_autofree char *path = lcvm_layout_vfio_record(c, slot, NULL);
  if (path != NULL && unlink(path) < 0 && errno != ENOENT)
    g_warning("cannot remove %s: %s", path, g_strerror(errno));
}

/* ---- moving one device ---- */

typedef struct {
  const char *sysfs_root;
  const char *slot;
  const char *driver; /* the driver link must name this (NULL: no link) */
  gboolean vfio_dev;  /* and vfio-dev/ must have a node */
} Effect;

static gboolean
effect_reached(gpointer p)
{
  const Effect *e = p;
  g_auto(LcvmPciState) st = { 0 };
  lcvm_pci_state_read(e->sysfs_root, e->slot, &st);
  return g_strcmp0(st.driver, e->driver) == 0 && (!e->vfio_dev || st.vfio_dev != NULL);
}

static gboolean
release_driver(const LcvmConfig *c, const char *dir, const char *slot, const char *driver,
               GError **error)
{
  g_autofree char *driver_dir = g_build_filename(dir, "driver", NULL);
  if (!lcvm_sysfs_write(driver_dir, "unbind", slot, error))
    return FALSE;
  Effect gone = { c->sysfs_root, slot, NULL, FALSE };
  if (lcvm_sysfs_wait(effect_reached, &gone, timeout_ms(c)))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "%s did not let go of %s within %u s: stop whatever still uses the device (see "
              "'dmesg') and try again",
              driver, slot, timeout_ms(c) / 1000);
  return FALSE;
}

static gboolean
attach_driver(const LcvmConfig *c, const char *slot, const char *driver, GError **error)
{
  g_autofree char *bus = g_build_filename(c->sysfs_root, "bus", "pci", NULL);
  gboolean vfio = g_str_equal(driver, LCVM_VFIO_DRIVER);
  if (vfio) {
    if (!lcvm_sysfs_write(bus, "drivers_probe", slot, error))
      return FALSE;
  } else {
    g_autofree char *driver_dir = g_build_filename(bus, "drivers", driver, NULL);
    if (!g_file_test(driver_dir, G_FILE_TEST_IS_DIR)) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                  "driver %s, which %s had before, is not loaded any more: load it (modprobe "
                  "%s) and run 'lium-cvm gpu unbind %s' again",
                  driver, slot, driver, slot);
      return FALSE;
    }
    if (!lcvm_sysfs_write(driver_dir, "bind", slot, error))
      return FALSE;
  }
  Effect e = { c->sysfs_root, slot, driver, vfio };
  if (lcvm_sysfs_wait(effect_reached, &e, timeout_ms(c)))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s did not %s within %u s%s", slot,
              vfio ? "bind to vfio-pci with a vfio-dev node" : "bind to its driver again",
              timeout_ms(c) / 1000, vfio ? " (see 'dmesg' for vfio-pci's reason)" : "");
  g_prefix_error(error, "%s: ", driver);
  return FALSE;
}

/* Moves the device to the binding `to`: driver_override first (it decides which driver may
 * take the device), then away from its current driver, then to the wanted one. */
static gboolean
move_device(const LcvmConfig *c, const Binding *to, GError **error)
{
  g_autofree char *dir = lcvm_pci_device_dir(c->sysfs_root, to->slot);
  g_auto(LcvmPciState) st = { 0 };
  lcvm_pci_state_read(c->sysfs_root, to->slot, &st);

  if (g_strcmp0(st.driver_override, to->override) != 0 &&
      !lcvm_sysfs_write(dir, "driver_override", to->override ? to->override : "\n", error))
    return FALSE;
  if (st.driver != NULL && g_strcmp0(st.driver, to->driver) != 0 &&
      !release_driver(c, dir, to->slot, st.driver, error))
    return FALSE;
  if (to->driver != NULL && g_strcmp0(st.driver, to->driver) != 0)
    return attach_driver(c, to->slot, to->driver, error);
  if (to->reprobe) {
    g_autofree char *bus = g_build_filename(c->sysfs_root, "bus", "pci", NULL);
    return lcvm_sysfs_write(bus, "drivers_probe", to->slot, error);
  }
  return TRUE;
}

/* Moves each device of `changed` (the bindings they had) back, last first; returns a report
 * to append to the error that caused it. */
static char *
roll_back(const LcvmConfig *c, GPtrArray *changed, gboolean forget_records)
{
  GString *report = g_string_new("");
  for (guint i = changed->len; i-- > 0;) {
    const Binding *b = changed->pdata[i];
    g_autoptr(GError) e = NULL;
    if (move_device(c, b, &e)) {
      if (forget_records)
        record_remove(c, b->slot);
      g_string_append_printf(report, "%s %s", report->len ? "," : "; restored", b->slot);
    } else {
      g_string_append_printf(report, "; could not restore %s: %s", b->slot, e->message);
    }
  }
  return g_string_free(report, FALSE);
}

/* ---- bind and unbind ---- */

static gboolean
vfio_driver_present(gpointer path)
{
  return g_file_test(path, G_FILE_TEST_IS_DIR);
}

static gboolean
ensure_vfio_driver(const LcvmConfig *c, GError **error)
{
  g_autofree char *dir = g_build_filename(c->sysfs_root, "bus", "pci", "drivers", "vfio-pci", NULL);
  if (g_file_test(dir, G_FILE_TEST_IS_DIR))
    return TRUE;
  const char *const modules[] = { "vfio_pci", NULL };
  if (!helper_modules_load(c, modules, error))
    return FALSE;
  if (lcvm_sysfs_wait(vfio_driver_present, dir, timeout_ms(c)))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "module vfio_pci is loaded but there is no %s: see 'dmesg' for why vfio-pci did "
              "not register",
              dir);
  return FALSE;
}

static void
set_iommu_off(const LcvmConfig *c, const char *slot, GError **error)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "the IOMMU is off (%s/class/iommu is empty%s%s%s), so vfio-pci cannot take the "
              "device and the kernel creates no vfio-dev node: boot with the IOMMU on "
              "('lium-cvm gpu bind' and 'lium-cvm check' print the kernel command line to set)",
              c->sysfs_root, slot ? " and " : "", slot ? slot : "",
              slot ? " has no IOMMU group" : "");
}

static void
set_in_use(const LcvmPciDevice *d, gboolean binding, GError **error)
{
  const LcvmPciHolder *h = d->holders->pdata[0];
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_DEVICE_IN_USE,
              "%s is in use: process %d (%s) holds %s open; %s", d->slot, h->pid, h->command,
              h->path,
              binding ? "stop that process first (for nvidia-persistenced: systemctl stop "
                        "nvidia-persistenced)"
                      : "stop the VM that uses it first (lium-cvm stop NAME)");
}

/* The devices of `slots` that are not yet where they should be; refuses held devices. */
static GPtrArray *
plan(const LcvmConfig *c, LcvmPciInventory *inv, const char *const *slots, gboolean binding,
     GError **error)
{
  g_autoptr(GPtrArray) todo = g_ptr_array_new();
  for (guint i = 0; slots[i] != NULL; i++) {
    LcvmPciDevice *d = lcvm_pci_inventory_find(inv, slots[i]);
    if (d == NULL) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND, "%s is gone from the PCI bus", slots[i]);
      return NULL;
    }
    gboolean on_vfio = g_strcmp0(d->state.driver, LCVM_VFIO_DRIVER) == 0;
    if (binding ? (on_vfio && d->state.vfio_dev != NULL) : !on_vfio)
      continue;
    if (binding && d->state.iommu_group < 0) {
      set_iommu_off(c, d->slot, error);
      return NULL;
    }
    if (d->holders->len > 0) {
      set_in_use(d, binding, error);
      return NULL;
    }
    g_ptr_array_add(todo, d);
  }
  return g_steal_pointer(&todo);
}

gboolean
helper_vfio_bind(const LcvmConfig *config, const char *const *slots, HelperActStep step_fn,
                 gpointer step_data, GError **error)
{
  if (!ensure_vfio_driver(config, error))
    return FALSE;
  if (!lcvm_pci_iommu_active(config->sysfs_root)) {
    set_iommu_off(config, NULL, error);
    return FALSE;
  }
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(config->sysfs_root, error);
  if (inv == NULL)
    return FALSE;
  lcvm_pci_find_holders(inv, config->dev_root, config->proc_root);
  g_autoptr(GPtrArray) todo = plan(config, inv, slots, TRUE, error);
  if (todo == NULL)
    return FALSE;
  for (guint i = 0; i < todo->len; i++) {
    const LcvmPciDevice *d = todo->pdata[i];
    if (!lcvm_pci_group_viable(config->sysfs_root, d->state.iommu_group, slots, error))
      return FALSE;
  }

  g_autoptr(GPtrArray) changed = g_ptr_array_new_with_free_func(binding_free);
  for (guint i = 0; i < todo->len; i++) {
    const LcvmPciDevice *d = todo->pdata[i];
    helper_act_step(step_fn, step_data, (double)i / todo->len, FALSE,
                    "binding %s (%s, on %s) to vfio-pci", d->slot, d->model,
                    d->state.driver ? d->state.driver : "no driver");
    if (!record_save(config, d, error)) {
      g_autofree char *report = roll_back(config, changed, TRUE);
      helper_act_append_error(error, "%s", report);
      return FALSE;
    }
    g_ptr_array_add(changed, binding_new(d->slot, d->state.driver, d->state.driver_override));
    Binding to = { .slot = (char *)d->slot,
                   .driver = LCVM_VFIO_DRIVER,
                   .override = LCVM_VFIO_DRIVER };
    if (!move_device(config, &to, error)) {
      g_autofree char *report = roll_back(config, changed, TRUE);
      helper_act_append_error(error, "%s", report);
      return FALSE;
    }
  }
  guint already = g_strv_length((char **)slots) - todo->len;
  helper_act_step(step_fn, step_data, 1.0, FALSE, "bound %u device%s to vfio-pci%s", todo->len,
                  todo->len == 1 ? "" : "s", already ? " (the others already were)" : "");
  return TRUE;
}

gboolean
helper_vfio_unbind(const LcvmConfig *config, const char *const *slots, HelperActStep step_fn,
                   gpointer step_data, GError **error)
{
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(config->sysfs_root, error);
  if (inv == NULL)
    return FALSE;
  lcvm_pci_find_holders(inv, config->dev_root, config->proc_root);
  g_autoptr(GPtrArray) todo = plan(config, inv, slots, FALSE, error);
  if (todo == NULL)
    return FALSE;

  g_autoptr(GPtrArray) changed = g_ptr_array_new_with_free_func(binding_free);
  for (guint i = 0; i < todo->len; i++) {
    const LcvmPciDevice *d = todo->pdata[i];
    g_autoptr(Binding) to = record_load(config, d->slot);
    helper_act_step(step_fn, step_data, (double)i / todo->len, FALSE, "giving %s back to %s",
                    d->slot,
                    to->driver    ? to->driver
                    : to->reprobe ? "the driver the kernel picks"
                                  : "no driver");
    g_ptr_array_add(changed, binding_new(d->slot, d->state.driver, d->state.driver_override));
    if (!move_device(config, to, error)) {
      g_autofree char *report = roll_back(config, changed, FALSE);
      helper_act_append_error(error, "%s", report);
      return FALSE;
    }
  }
  for (guint i = 0; i < todo->len; i++)
    record_remove(config, ((LcvmPciDevice *)todo->pdata[i])->slot);
  helper_act_step(step_fn, step_data, 1.0, FALSE, "released %u device%s from vfio-pci", todo->len,
                  todo->len == 1 ? "" : "s");
  return TRUE;
}

gboolean
helper_vfio_release(const LcvmConfig *config, const char *slot, GError **error)
{
  Binding none = { .slot = (char *)slot };
  return move_device(config, &none, error);
}

gboolean
helper_vfio_rebind(const LcvmConfig *config, const char *slot, GError **error)
{
  if (!ensure_vfio_driver(config, error))
    return FALSE;
  Binding to = { .slot = (char *)slot, .driver = LCVM_VFIO_DRIVER, .override = LCVM_VFIO_DRIVER };
  return move_device(config, &to, error);
}

/* ---- DMA entry limit ---- */

gboolean
helper_vfio_set_dma_limit(const LcvmConfig *config, guint64 limit, guint64 flags, GError **error)
{
  g_autofree char *dir =
      g_build_filename(config->sysfs_root, "module", "vfio_iommu_type1", "parameters", NULL);
  g_autofree char *path = g_build_filename(dir, "dma_entry_limit", NULL);
  const char *const modules[] = { "vfio_iommu_type1", NULL };
  if (!g_file_test(path, G_FILE_TEST_EXISTS) && !helper_modules_load(config, modules, error))
    return FALSE;
  g_autofree char *value = g_strdup_printf("%" G_GUINT64_FORMAT, limit);
  if (!lcvm_sysfs_write(dir, "dma_entry_limit", value, error))
    return FALSE;
  if (!(flags & HELPER_DMA_LIMIT_PERSIST))
    return TRUE;
  g_autofree char *text = g_strdup_printf(
      "# Written by lium-cvm-helper (lium-cvm gpu dma-limit --persist). Large guests with GPUs\n"
      "# need more DMA mappings than the default 65535 when QEMU uses the type1 backend.\n"
      "options vfio_iommu_type1 dma_entry_limit=%s\n",
      value);
  return helper_persist_write(config->modprobe_dir, HELPER_DMA_LIMIT_FILE, text, error);
}

/* ---- the method table's steps ---- */

typedef struct {
  const LcvmConfig *config;
  GStrv slots;
} VfioCall;

static void
vfio_call_free(gpointer p)
{
  VfioCall *c = p;
  g_strfreev(c->slots);
  g_free(c);
}

gboolean
helper_vfio_slots_validate(HelperCall *call, GError **error)
{
  g_autofree const char **slots = NULL;
  g_variant_get_child(call->args, 0, "^a&s", &slots);
  g_auto(GStrv) valid = helper_vfio_resolve_slots(call->daemon->config, slots, error);
  if (valid == NULL)
    return FALSE;
  VfioCall *c = g_new0(VfioCall, 1);
  c->config = call->daemon->config;
  c->slots = g_steal_pointer(&valid);
  call->data = c;
  call->destroy = vfio_call_free;
  return TRUE;
}

GStrv
helper_vfio_slots_locks(HelperCall *call)
{
  VfioCall *c = call->data;
  g_autoptr(GStrvBuilder) locks = g_strv_builder_new();
  for (guint i = 0; c->slots[i] != NULL; i++) {
    g_autofree char *key = helper_device_lock_key(c->slots[i]);
    g_strv_builder_add(locks, key);
  }
  return g_strv_builder_end(locks);
}

gboolean
helper_vfio_bind_job(HelperJob *job, gpointer data, GError **error)
{
  VfioCall *c = data;
  return helper_vfio_bind(c->config, (const char *const *)c->slots, helper_act_job_step, job,
                          error);
}

gboolean
helper_vfio_unbind_job(HelperJob *job, gpointer data, GError **error)
{
  VfioCall *c = data;
  return helper_vfio_unbind(c->config, (const char *const *)c->slots, helper_act_job_step, job,
                            error);
}

typedef struct {
  guint64 limit;
  guint64 flags;
} DmaLimitCall;

gboolean
helper_vfio_dma_limit_validate(HelperCall *call, GError **error)
{
  guint64 limit = 0;
  g_variant_get_child(call->args, 0, "t", &limit);
  if (limit == 0 || limit > G_MAXUINT32) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "a DMA entry limit is between 1 and %u (got %" G_GUINT64_FORMAT ")", G_MAXUINT32,
                limit);
    return FALSE;
  }
  DmaLimitCall *c = g_new0(DmaLimitCall, 1);
  c->limit = limit;
  c->flags = call->flags;
  call->data = c;
  call->destroy = g_free;
  return TRUE;
}

GVariant *
helper_vfio_dma_limit(HelperDaemon *d, gpointer data, GError **error)
{
  DmaLimitCall *c = data;
  if (!helper_vfio_set_dma_limit(d->config, c->limit, c->flags, error))
    return NULL;
  return g_variant_new("()");
}
