/* SPDX-License-Identifier: MIT */
/* GPU sanitize before attach (reference/field-2026.md §1): a secondary bus reset of each
 * passed GPU's dedicated upstream bridge, before every VM start and on `gpu reset --bus`.
 *
 * Mechanism: the kernel-mediated sysfs path of §1.5 — write `bus` to the GPU's reset_method,
 * write 1 to its reset, write `default` back — not the VFIO hot reset of §1.4, because:
 * - the kernel saves and restores the device's config state around the reset and waits for
 *   the bus to come back (a hand-rolled SBR left au1's GPU with its link down, §1.1);
 * - the kernel itself refuses a device that is not alone on its bus or carries
 *   PCI_DEV_FLAGS_NO_BUS_RESET (NVIDIA 0x2340–0x237F), so its rules back up ours;
 * - the helper is root already and holds no vfio fd for it: the hot reset needs the legacy
 *   container and group fds (one process only), which would have to be closed again before a
 *   legacy QEMU opens the group, and a different cdev/iommufd flow for QEMU >= 10;
 * - the test kernel simulator can act on sysfs writes; it cannot act on vfio ioctls.
 * Its costs, handled here: the method list persists, so `default` is written back whatever
 * happened; and it must not run while a process holds the GPU's vfio node (callers check).
 *
 * Rules (§1.2): NVSwitches are never reset; the GPU must sit directly below a PCI bridge with
 * no other downstream function; every device below that bridge must be in the GPU's IOMMU
 * group; one reset per bridge; the bridge's Bridge Control ends as it was (without the SBR
 * bit); all checks pass for every GPU before the first reset. Writes go only to the fixed
 * attributes reset_method and reset of a validated slot and to the Bridge Control word of its
 * parent bridge's config space; never to a path a caller named. */
#include "helper-sanitize.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include "lcvm-pci.h"
#include "lcvm-sysfs.h"
#include "lcvm-validate.h"

#include <gio/gio.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_HEADER_TYPE      0x0e
#define CFG_BRIDGE_CONTROL   0x3e
#define BRIDGE_CTL_BUS_RESET 0x40
#define HEADER_TYPE_BRIDGE   0x01
#define CLASS_NVSWITCH       0x0680
#define SCOPE_MAX_DEPTH      6

/* One GPU to reset: its sysfs directory and its bridge's. */
typedef struct {
  char *slot;
  char *dir;
  char *bridge;
  char *bridge_dir;
} Target;

static void
target_free(gpointer p)
{
  Target *t = p;
  g_free(t->slot);
  g_free(t->dir);
  g_free(t->bridge);
  g_free(t->bridge_dir);
  g_free(t);
}

static void say(HelperActStep step, gpointer data, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
say(HelperActStep step, gpointer data, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_message("%s", msg);
  if (step != NULL)
    step(data, -1, TRUE, msg);
}

static gboolean refuse(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean
refuse(GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "%s; the GPU was not reset and nothing was changed (a host where this cannot "
              "work can turn it off: [gpu] sanitize_on_attach=false)",
              msg);
  return FALSE;
}

/* The remedy for a GPU that a reset attempt may have left unusable (§1.6, lium.md §5.4). */
static char *
recovery(const LcvmConfig *c, const char *slot)
{
  return g_strdup_printf("recover it with a PCIe remove and rescan (as root: echo 1 > "
                         "%s/bus/pci/devices/%s/remove; sleep 2; echo 1 > %s/bus/pci/rescan; "
                         "sleep 3), then 'lium-cvm gpu bind %s' and start the VM again",
                         c->sysfs_root, slot, c->sysfs_root, slot);
}

/* ---- config space (the sysfs `config` file) ---- */

static gboolean
config_read16(const char *dir, guint offset, guint16 *out, GError **error)
{
  g_autofree char *path = g_build_filename(dir, "config", NULL);
  lcvm_autofd int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  guint8 b[2];
  ssize_t n = fd >= 0 ? pread(fd, b, sizeof b, offset) : -1;
  if (n != (ssize_t)sizeof b) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "cannot read %s at 0x%x: %s", path, offset,
                n < 0 ? g_strerror(errno) : "short read");
    return FALSE;
  }
  *out = (guint16)(b[0] | b[1] << 8);
  return TRUE;
}

static gboolean
config_write16(const char *dir, guint offset, guint16 value, GError **error)
{
  g_autofree char *path = g_build_filename(dir, "config", NULL);
  int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  guint8 b[2] = { value & 0xff, value >> 8 };
  ssize_t n = fd >= 0 ? pwrite(fd, b, sizeof b, offset) : -1;
  int err = errno;
  if (fd >= 0 && close(fd) < 0 && n == (ssize_t)sizeof b) {
    n = -1;
    err = errno;
  }
  if (n != (ssize_t)sizeof b) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "cannot write %s at 0x%x: %s", path, offset,
                n < 0 ? g_strerror(err) : "short write");
    return FALSE;
  }
  return TRUE;
}

/* ---- topology and scope ---- */

/* The PCI devices directly in dir (entries named like a slot that are directories). */
static GStrv
functions_in(const char *dir)
{
  g_auto(GStrv) names = lcvm_sysfs_list(dir);
  g_autoptr(GStrvBuilder) out = g_strv_builder_new();
  for (guint i = 0; names[i] != NULL; i++) {
    g_autofree char *path = g_build_filename(dir, names[i], NULL);
    struct stat st;
    if (lcvm_slot_is_canonical(names[i]) && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
      g_strv_builder_add(out, names[i]);
  }
  return g_strv_builder_end(out);
}

/* Every device below dir (never through a symlink) must be in IOMMU group `group`. */
static gboolean
scope_in_group(const Target *t, const char *dir, const char *group, int depth, GError **error)
{
  g_auto(GStrv) below = functions_in(dir);
  for (guint i = 0; below[i] != NULL; i++) {
    g_autofree char *path = g_build_filename(dir, below[i], NULL);
    g_autofree char *theirs = lcvm_sysfs_link_name(path, "iommu_group");
    if (g_strcmp0(theirs, group) != 0)
      return refuse(error,
                    "a bus reset of bridge %s would also reset %s, which is %s%s, not in IOMMU "
                    "group %s of GPU %s",
                    t->bridge, below[i], theirs ? "in IOMMU group " : "in no IOMMU group",
                    theirs ? theirs : "", group, t->slot);
    if (depth < SCOPE_MAX_DEPTH && !scope_in_group(t, path, group, depth + 1, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
check_kind(const LcvmConfig *c, const Target *t, GError **error)
{
  guint64 class_code = 0;
  if (!lcvm_sysfs_read_uint(t->dir, "class", &class_code, error))
    return FALSE;
  if ((class_code >> 8) == CLASS_NVSWITCH) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is an NVSwitch: NVSwitches are never bus-reset (only the GPUs of a VM are)",
                t->slot);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_bridge(const Target *t, GError **error)
{
  if (!lcvm_slot_is_canonical(t->bridge))
    return refuse(error,
                  "GPU %s sits on a root bus (%s), not below a PCI bridge of its own: a bus "
                  "reset would reach every device of that bus",
                  t->slot, t->bridge);
  guint16 header = 0;
  if (!config_read16(t->bridge_dir, CFG_HEADER_TYPE, &header, error))
    return FALSE;
  if ((header & 0x7f) != HEADER_TYPE_BRIDGE)
    return refuse(error, "the device above GPU %s, %s, is not a PCI bridge (header type 0x%02x)",
                  t->slot, t->bridge, header & 0x7f);
  g_auto(GStrv) functions = functions_in(t->bridge_dir);
  g_autofree char *others = NULL;
  for (guint i = 0; functions[i] != NULL; i++)
    if (!g_str_equal(functions[i], t->slot)) {
      char *more = g_strconcat(others ? others : "", others ? ", " : "", functions[i], NULL);
      g_free(others);
      others = more;
    }
  if (others != NULL)
    return refuse(error,
                  "GPU %s shares its bridge %s with %s: a bus reset would reset %s too, so "
                  "%s is reset only on a bridge of its own",
                  t->slot, t->bridge, others, others, t->slot);
  return TRUE;
}

static Target *
target_new(const LcvmConfig *c, const char *slot, GError **error)
{
  g_autofree char *link = lcvm_pci_device_dir(c->sysfs_root, slot);
  char real[PATH_MAX];
  if (realpath(link, real) == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND, "there is no PCI device %s on this host",
                slot);
    return NULL;
  }
  Target *t = g_new0(Target, 1);
  t->slot = g_strdup(slot);
  t->dir = g_strdup(real);
  t->bridge_dir = g_path_get_dirname(real);
  t->bridge = g_path_get_basename(t->bridge_dir);
  g_autofree char *group = lcvm_sysfs_link_name(t->dir, "iommu_group");
  if (!check_kind(c, t, error) || !check_bridge(t, error) ||
      (group == NULL &&
       !refuse(error,
               "GPU %s is in no IOMMU group (is the IOMMU on?), so the scope of its "
               "reset cannot be checked",
               slot)) ||
      (group != NULL && !scope_in_group(t, t->bridge_dir, group, 0, error))) {
    target_free(t);
    return NULL;
  }
  return t;
}

/* ---- the reset ---- */

/* The attribute's raw text: the kernel shows reset_method with a trailing newline. */
static char *
read_raw(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &text, &len, NULL) || len > LCVM_SYSFS_ATTR_MAX) {
    g_free(text);
    return NULL;
  }
  return text;
}

typedef struct {
  const char *dir;
} Shown;

static gboolean
method_shown(gpointer p)
{
  const Shown *s = p;
  g_autofree char *text = read_raw(s->dir, "reset_method");
  return text != NULL && g_str_has_suffix(text, "\n");
}

/* Writes a reset_method value (no newline, so what the kernel shows, with its newline, tells
 * that it has acted) and waits until the kernel shows its list. */
static gboolean
set_method(const LcvmConfig *c, const Target *t, const char *value, GError **error)
{
  if (!lcvm_sysfs_write(t->dir, "reset_method", value, error))
    return FALSE;
  Shown s = { t->dir };
  guint timeout_ms = (guint)MIN(MAX(c->bind_timeout, 1), 3600) * 1000;
  if (lcvm_sysfs_wait(method_shown, &s, timeout_ms))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "the kernel did not show %s's reset methods within %u s after '%s' was written",
              t->slot, timeout_ms / 1000, value);
  return FALSE;
}

static void
append_refusal_reason(const Target *t, GError **error)
{
  if (error == NULL || *error == NULL)
    return;
  g_autofree char *vendor = lcvm_sysfs_read(t->dir, "vendor", NULL);
  g_autofree char *device = lcvm_sysfs_read(t->dir, "device", NULL);
  char *m = g_strdup_printf(
      "the kernel refused a bus reset of GPU %s (%s:%s): %s; it refuses one for a device it "
      "flags NO_BUS_RESET (NVIDIA 0x2340-0x237f, such as GH200) and for one that is not alone "
      "on its bus (see 'dmesg'); the GPU was not reset and nothing was changed (a host where "
      "this cannot work can turn it off: [gpu] sanitize_on_attach=false)",
      t->slot, vendor ? vendor : "?", device ? device : "?", (*error)->message);
  g_free((*error)->message);
  (*error)->message = m;
}

/* Selects the bus method; a refusal leaves the kernel's list as it was. */
static gboolean
select_bus_method(const LcvmConfig *c, const Target *t, GError **error)
{
  if (!set_method(c, t, "bus", error)) {
    if (error != NULL && g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
      g_prefix_error(error,
                     "this kernel has no reset_method attribute (Linux 5.15 or later "
                     "has it), so GPU %s cannot be bus-reset: ",
                     t->slot);
      return FALSE;
    }
    append_refusal_reason(t, error);
    return FALSE;
  }
  g_autofree char *now = lcvm_sysfs_read(t->dir, "reset_method", NULL);
  if (g_strcmp0(now, "bus") == 0)
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "its reset methods stayed '%s'",
              now ? now : "?");
  append_refusal_reason(t, error);
  return FALSE;
}

/* Bridge Control as it was before, without the SBR bit (§1.2 register hygiene). */
static gboolean
restore_bridge_control(const Target *t, guint16 before, HelperActStep step, gpointer data,
                       GError **error)
{
  guint16 want = before & ~BRIDGE_CTL_BUS_RESET, now = 0;
  if (!config_read16(t->bridge_dir, CFG_BRIDGE_CONTROL, &now, error))
    return FALSE;
  if (now == want)
    return TRUE;
  say(step, data, "restoring Bridge Control of %s from 0x%04x to 0x%04x", t->bridge, now, want);
  return config_write16(t->bridge_dir, CFG_BRIDGE_CONTROL, want, error);
}

static gboolean
answers(const Target *t, GError **error)
{
  guint16 vendor = 0;
  if (!config_read16(t->dir, 0, &vendor, error))
    return FALSE;
  if (vendor != 0xffff)
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "GPU %s does not answer after its bus reset (its config space reads 0xffff: the "
              "link is down)",
              t->slot);
  return FALSE;
}

static gboolean
bus_reset(const LcvmConfig *c, const Target *t, HelperActStep step, gpointer data, GError **error)
{
  guint16 ctl = 0;
  if (!config_read16(t->bridge_dir, CFG_BRIDGE_CONTROL, &ctl, error) ||
      !select_bus_method(c, t, error))
    return FALSE;
  say(step, data, "bus reset of GPU %s through its bridge %s", t->slot, t->bridge);
  g_autoptr(GError) reset_error = NULL;
  gboolean reset = lcvm_sysfs_write(t->dir, "reset", "1", &reset_error);
  /* Whatever happened: the method list persists, and every later function reset of the GPU
   * (vfio-pci's at open and close) would become a bus reset. */
  g_autoptr(GError) default_error = NULL;
  gboolean restored = set_method(c, t, "default", &default_error);
  g_autoptr(GError) bridge_error = NULL;
  gboolean bridge = restore_bridge_control(t, ctl, step, data, &bridge_error);
  if (reset && restored && bridge && answers(t, error))
    return TRUE;
  GError *first = !reset ? reset_error : !restored ? default_error : bridge_error;
  if (first != NULL)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "the bus reset of GPU %s failed: %s", t->slot,
                first->message);
  if (error != NULL && *error != NULL) {
    g_autofree char *remedy = recovery(c, t->slot);
    char *m = g_strdup_printf("%s; %s", (*error)->message, remedy);
    g_free((*error)->message);
    (*error)->message = m;
  }
  return FALSE;
}

gboolean
helper_sanitize_gpus(const LcvmConfig *config, const char *const *slots, HelperActStep step,
                     gpointer data, GError **error)
{
  g_autoptr(GPtrArray) targets = g_ptr_array_new_with_free_func(target_free);
  g_autoptr(GHashTable) bridges = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; slots[i] != NULL; i++) {
    Target *t = target_new(config, slots[i], error);
    if (t == NULL)
      return FALSE;
    g_ptr_array_add(targets, t);
  }
  for (guint i = 0; i < targets->len; i++) {
    const Target *t = targets->pdata[i];
    /* One reset per bridge (the topology check already forbids a shared one). */
    if (!g_hash_table_add(bridges, t->bridge))
      continue;
    if (!bus_reset(config, t, step, data, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
helper_sanitize_before_start(const LcvmConfig *config, const char *name, const LcvmQemuSpec *spec,
                             GError **error)
{
  if (!config->sanitize_on_attach || spec->n_gpus == 0)
    return TRUE;
  g_autoptr(GPtrArray) slots = g_ptr_array_new();
  for (guint i = 0; i < spec->n_gpus; i++)
    g_ptr_array_add(slots, (gpointer)spec->gpus[i].slot);
  g_ptr_array_add(slots, NULL);
  if (helper_sanitize_gpus(config, (const char *const *)slots->pdata, NULL, NULL, error))
    return TRUE;
  g_prefix_error(error, "VM %s was not started: ", name);
  return FALSE;
}
