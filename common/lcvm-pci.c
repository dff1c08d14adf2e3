/* SPDX-License-Identifier: MIT */
/* PCI inventory (see the header). libpci reads sysfs_root/bus/pci through its sysfs access
 * method with "sysfs.path" redirected, so tests point it at a fake tree. libpci reports a
 * fatal error through a callback that must not return: it jumps back to the scan, which
 * turns it into a GError instead of exiting the process. */
#include "lcvm-pci.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include "lcvm-sysfs.h"
#include "lcvm-validate.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pci/pci.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  guint16 device_id;
  const char *model;
  const char *arch;
} ModelEntry;

/* NVIDIA ids of confidential-computing capable parts (gpu-admin-tools gpu/devid_names.py,
 * reference/gpu-and-host.md A.5) and the Hopper NVSwitch (10de:22a3). */
static const ModelEntry models[] = {
  { 0x22a3, "GH100 [H100 NVSwitch]", "hopper" }, { 0x2309, "GH100 [H20]", "hopper" },
  { 0x230c, "GH100 [H20]", "hopper" },           { 0x230e, "GH100 [H20]", "hopper" },
  { 0x2313, "GH100 [H100 CNX]", "hopper" },      { 0x2321, "GH100 [H100]", "hopper" },
  { 0x2322, "GH100 [H800 PCIe]", "hopper" },     { 0x2324, "GH100 [H800]", "hopper" },
  { 0x2328, "GH100 [H20]", "hopper" },           { 0x2329, "GH100 [H20]", "hopper" },
  { 0x232c, "GH100 [H20]", "hopper" },           { 0x2330, "GH100 [H100 SXM5 80GB]", "hopper" },
  { 0x2331, "GH100 [H100 PCIe]", "hopper" },     { 0x2335, "GH100 [H200 SXM 141GB]", "hopper" },
  { 0x2336, "GH100 [H100]", "hopper" },          { 0x2337, "GH100 [H100]", "hopper" },
  { 0x2338, "GH100 [H100]", "hopper" },          { 0x2339, "GH100 [H100]", "hopper" },
  { 0x233a, "GH100 [H800]", "hopper" },          { 0x233b, "GH100 [H200 NVL]", "hopper" },
  { 0x233d, "GH100 [H100]", "hopper" },          { 0x2342, "GH100 [GH200]", "hopper" },
  { 0x2343, "GH100 [GH200]", "hopper" },         { 0x2345, "GH100 [GH200]", "hopper" },
  { 0x2348, "GH100 [GH200]", "hopper" },         { 0x2901, "GB100 [B200]", "blackwell" },
  { 0x2941, "GB100 [GB200]", "blackwell" },
};

/* Device-id ranges gpu-admin-tools treats as Hopper (gh100) and Blackwell (gpu/devid_chips.py). */
static const struct {
  guint16 first, last;
  const char *arch;
} arch_ranges[] = {
  { 0x22f0, 0x237f, "hopper" },    { 0x2900, 0x29ff, "blackwell" }, { 0x2b80, 0x2c7f, "blackwell" },
  { 0x2d00, 0x2dff, "blackwell" }, { 0x2f00, 0x2f7f, "blackwell" }, { 0x3180, 0x327f, "blackwell" },
};

const char *
lcvm_pci_model_name(guint16 vendor_id, guint16 device_id)
{
  if (vendor_id != LCVM_PCI_VENDOR_NVIDIA)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS(models); i++)
    if (models[i].device_id == device_id)
      return models[i].model;
  return NULL;
}

const char *
lcvm_pci_arch(guint16 vendor_id, guint16 device_id, LcvmPciKind kind)
{
  if (vendor_id != LCVM_PCI_VENDOR_NVIDIA)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS(models); i++)
    if (models[i].device_id == device_id)
      return models[i].arch;
  if (kind != LCVM_PCI_GPU)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS(arch_ranges); i++)
    if (device_id >= arch_ranges[i].first && device_id <= arch_ranges[i].last)
      return arch_ranges[i].arch;
  return NULL;
}

const char *
lcvm_pci_kind_name(LcvmPciKind kind)
{
  return kind == LCVM_PCI_GPU ? "gpu" : "nvswitch";
}

char *
lcvm_pci_device_dir(const char *sysfs_root, const char *slot)
{
  g_assert(lcvm_slot_is_canonical(slot));
  return g_build_filename(sysfs_root, "bus", "pci", "devices", slot, NULL);
}

gboolean
lcvm_pci_iommu_active(const char *sysfs_root)
{
  g_autofree char *dir = g_build_filename(sysfs_root, "class", "iommu", NULL);
  g_auto(GStrv) names = lcvm_sysfs_list(dir);
  return names[0] != NULL;
}

static int
group_of(const char *devdir)
{
  g_autofree char *name = lcvm_sysfs_link_name(devdir, "iommu_group");
  guint64 group;
  if (name == NULL || !g_ascii_string_to_unsigned(name, 10, 0, G_MAXINT, &group, NULL))
    return -1;
  return (int)group;
}

void
lcvm_pci_state_read(const char *sysfs_root, const char *slot, LcvmPciState *state)
{
  g_autofree char *dir = lcvm_pci_device_dir(sysfs_root, slot);
  g_autofree char *vfio_dir = g_build_filename(dir, "vfio-dev", NULL);
  g_auto(GStrv) nodes = lcvm_sysfs_list(vfio_dir);
  char *override = lcvm_sysfs_read(dir, "driver_override", NULL);

  state->driver = lcvm_sysfs_link_name(dir, "driver");
  if (override != NULL && (override[0] == '\0' || g_str_equal(override, "(null)")))
    g_clear_pointer(&override, g_free);
  state->driver_override = override;
  state->iommu_group = group_of(dir);
  state->vfio_dev = nodes[0] != NULL ? g_strdup(nodes[0]) : NULL;
}

void
lcvm_pci_state_clear(LcvmPciState *state)
{
  g_clear_pointer(&state->driver, g_free);
  g_clear_pointer(&state->driver_override, g_free);
  g_clear_pointer(&state->vfio_dev, g_free);
  state->iommu_group = -1;
}

static void
holder_free(gpointer p)
{
  LcvmPciHolder *h = p;
  g_free(h->command);
  g_free(h->path);
  g_free(h);
}

static void
device_free(gpointer p)
{
  LcvmPciDevice *d = p;
  g_free(d->model);
  lcvm_pci_state_clear(&d->state);
  g_ptr_array_unref(d->holders);
  g_free(d);
}

void
lcvm_pci_inventory_free(LcvmPciInventory *inv)
{
  if (inv == NULL)
    return;
  g_ptr_array_unref(inv->devices);
  g_free(inv);
}

LcvmPciDevice *
lcvm_pci_inventory_find(LcvmPciInventory *inv, const char *slot)
{
  for (guint i = 0; i < inv->devices->len; i++) {
    LcvmPciDevice *d = inv->devices->pdata[i];
    if (g_str_equal(d->slot, slot))
      return d;
  }
  return NULL;
}

/* ---- libpci scan ---- */

static __thread jmp_buf *scan_escape;
static __thread char scan_message[256];

static G_NORETURN void
on_pci_error(char *msg, ...)
{
  va_list ap;
  va_start(ap, msg);
  vsnprintf(scan_message, sizeof scan_message, msg, ap);
  va_end(ap);
  longjmp(*scan_escape, 1);
}

static void
on_pci_quiet(char *msg, ...)
{
}

static gboolean
kind_of(const struct pci_dev *p, LcvmPciKind *kind)
{
  if (p->vendor_id != LCVM_PCI_VENDOR_NVIDIA)
    return FALSE;
  if (p->device_class == 0x0300 || p->device_class == 0x0302)
    *kind = LCVM_PCI_GPU;
  else if (p->device_class == 0x0680)
    *kind = LCVM_PCI_NVSWITCH;
  else
    return FALSE;
  return TRUE;
}

static char *
model_of(struct pci_access *acc, const struct pci_dev *p)
{
  const char *known = lcvm_pci_model_name(p->vendor_id, p->device_id);
  if (known != NULL)
    return g_strdup(known);
  char buf[256];
  const char *name = pci_lookup_name(
      acc, buf, sizeof buf, PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS, p->vendor_id, p->device_id);
  if (name != NULL)
    return g_strdup(name);
  return g_strdup_printf("Device %04x:%04x", p->vendor_id, p->device_id);
}

static LcvmPciDevice *
device_new(struct pci_access *acc, struct pci_dev *p, LcvmPciKind kind, const char *sysfs_root)
{
  pci_fill_info(p, PCI_FILL_CLASS_EXT | PCI_FILL_SUBSYS | PCI_FILL_NUMA_NODE);
  LcvmPciDevice *d = g_new0(LcvmPciDevice, 1);
  g_snprintf(d->slot, sizeof d->slot, "%04x:%02x:%02x.%x", (unsigned)p->domain, p->bus, p->dev,
             p->func);
  d->vendor_id = p->vendor_id;
  d->device_id = p->device_id;
  d->subsys_vendor_id = p->subsys_vendor_id;
  d->subsys_id = p->subsys_id;
  d->class_code = ((guint32)p->device_class << 8) | p->prog_if;
  d->revision = p->rev_id;
  d->kind = kind;
  d->model = model_of(acc, p);
  d->arch = lcvm_pci_arch(p->vendor_id, p->device_id, kind);
  d->numa_node = (p->known_fields & PCI_FILL_NUMA_NODE) ? p->numa_node : -1;
  d->holders = g_ptr_array_new_with_free_func(holder_free);
  lcvm_pci_state_read(sysfs_root, d->slot, &d->state);
  return d;
}

/* Runs the libpci part; every libpci call that may fail sits between setjmp and the return. */
static gboolean
scan(struct pci_access *acc, const char *sysfs_root, GPtrArray *out)
{
  jmp_buf escape;
  scan_escape = &escape;
  if (setjmp(escape) != 0)
    return FALSE;
  pci_init(acc);
  pci_scan_bus(acc);
  for (struct pci_dev *p = acc->devices; p != NULL; p = p->next) {
    LcvmPciKind kind;
    pci_fill_info(p, PCI_FILL_IDENT | PCI_FILL_CLASS);
    if (p->domain >= 0 && p->domain <= 0xffff && kind_of(p, &kind))
      g_ptr_array_add(out, device_new(acc, p, kind, sysfs_root));
  }
  return TRUE;
}

static gint
compare_slots(gconstpointer a, gconstpointer b)
{
  const LcvmPciDevice *x = *(LcvmPciDevice *const *)a;
  const LcvmPciDevice *y = *(LcvmPciDevice *const *)b;
  return strcmp(x->slot, y->slot);
}

LcvmPciInventory *
lcvm_pci_inventory_new(const char *sysfs_root, GError **error)
{
  g_autofree char *bus = g_build_filename(sysfs_root, "bus", "pci", NULL);
  g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(device_free);
  struct pci_access *acc = pci_alloc();
  acc->method = PCI_ACCESS_SYS_BUS_PCI;
  acc->error = on_pci_error;
  acc->warning = on_pci_quiet;
  acc->debug = on_pci_quiet;
  pci_set_param(acc, "sysfs.path", bus);
  pci_set_param(acc, "hwdb.disable", "1");
  gboolean ok = scan(acc, sysfs_root, devices);
  pci_cleanup(acc);
  if (!ok) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "cannot list PCI devices under %s: %s (is sysfs mounted?)", bus, scan_message);
    return NULL;
  }
  g_ptr_array_sort(devices, compare_slots);
  LcvmPciInventory *inv = g_new0(LcvmPciInventory, 1);
  inv->devices = g_steal_pointer(&devices);
  inv->iommu_active = lcvm_pci_iommu_active(sysfs_root);
  inv->holders_complete = TRUE;
  return inv;
}

/* ---- holders ---- */

/* /proc/driver/nvidia/gpus/SLOT/information has "Device Minor:  N" → /dev/nvidiaN. */
static char *
nvidia_node(const char *proc_root, const char *dev_root, const char *slot)
{
  g_autofree char *dir = g_build_filename(proc_root, "driver", "nvidia", "gpus", slot, NULL);
  g_autofree char *info = NULL;
  g_autofree char *path = g_build_filename(dir, "information", NULL);
  if (!g_file_get_contents(path, &info, NULL, NULL))
    return NULL;
  const char *line = strstr(info, "Device Minor:");
  guint minor;
  if (line == NULL || sscanf(line, "Device Minor: %u", &minor) != 1)
    return NULL;
  g_autofree char *node = g_strdup_printf("nvidia%u", minor);
  return g_build_filename(dev_root, node, NULL);
}

/* Only nodes that exist can be held open: with none, /proc is not scanned at all. */
static void
watch(GHashTable *targets, char *path, LcvmPciDevice *d)
{
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_free(path);
    return;
  }
  GPtrArray *list = g_hash_table_lookup(targets, path);
  if (list == NULL) {
    list = g_ptr_array_new();
    g_hash_table_insert(targets, g_strdup(path), list);
  }
  g_ptr_array_add(list, d);
  g_free(path);
}

static GHashTable *
holder_targets(LcvmPciInventory *inv, const char *dev_root, const char *proc_root)
{
  GHashTable *targets =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
  for (guint i = 0; i < inv->devices->len; i++) {
    LcvmPciDevice *d = inv->devices->pdata[i];
    if (d->state.iommu_group >= 0) {
      g_autofree char *group = g_strdup_printf("%d", d->state.iommu_group);
      watch(targets, g_build_filename(dev_root, "vfio", group, NULL), d);
    }
    if (d->state.vfio_dev != NULL)
      watch(targets, g_build_filename(dev_root, "vfio", "devices", d->state.vfio_dev, NULL), d);
    if (g_strcmp0(d->state.driver, "nvidia") == 0) {
      char *node = nvidia_node(proc_root, dev_root, d->slot);
      if (node != NULL)
        watch(targets, node, d);
    }
  }
  return targets;
}

static void
add_holder(LcvmPciDevice *d, int pid, const char *proc_root, const char *path)
{
  for (guint i = 0; i < d->holders->len; i++) {
    LcvmPciHolder *h = d->holders->pdata[i];
    if (h->pid == pid && g_str_equal(h->path, path))
      return;
  }
  g_autofree char *pid_dir = g_strdup_printf("%s/%d", proc_root, pid);
  LcvmPciHolder *h = g_new0(LcvmPciHolder, 1);
  h->pid = pid;
  h->command = lcvm_sysfs_read(pid_dir, "comm", NULL);
  if (h->command == NULL)
    h->command = g_strdup("?");
  h->path = g_strdup(path);
  g_ptr_array_add(d->holders, h);
}

/* Returns FALSE when the process's fds could not be read (another user's process). */
static gboolean
scan_process(LcvmPciInventory *inv, GHashTable *targets, const char *proc_root, int proc_fd,
             const char *pid_name)
{
  g_autofree char *fd_path = g_strdup_printf("%s/fd", pid_name);
  lcvm_autofd int dfd = openat(proc_fd, fd_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return errno != EACCES && errno != EPERM;
  DIR *dir = fdopendir(dfd);
  if (dir == NULL)
    return TRUE;
  lcvm_steal_fd(&dfd); /* closedir closes it */
  struct dirent *e;
  char target[4096];
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    ssize_t n = readlinkat(dirfd(dir), e->d_name, target, sizeof target - 1);
    if (n <= 0)
      continue;
    target[n] = '\0';
    GPtrArray *devs = g_hash_table_lookup(targets, target);
    for (guint i = 0; devs != NULL && i < devs->len; i++)
      add_holder(devs->pdata[i], atoi(pid_name), proc_root, target);
  }
  closedir(dir);
  return TRUE;
}

static gboolean
all_digits(const char *s)
{
  if (*s == '\0')
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isdigit(*s))
      return FALSE;
  return TRUE;
}

void
lcvm_pci_find_holders(LcvmPciInventory *inv, const char *dev_root, const char *proc_root)
{
  /* fd links show canonical paths: compare against the canonical dev_root. */
  char *real = realpath(dev_root, NULL);
  g_autofree char *dev = g_strdup(real ? real : dev_root);
  free(real);
  g_autoptr(GHashTable) targets = holder_targets(inv, dev, proc_root);
  inv->holders_complete = TRUE;
  if (g_hash_table_size(targets) == 0)
    return;
  lcvm_autofd int proc_fd = open(proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = proc_fd >= 0 ? fdopendir(proc_fd) : NULL;
  if (dir == NULL) {
    inv->holders_complete = FALSE;
    return;
  }
  lcvm_steal_fd(&proc_fd); /* closedir closes it */
  struct dirent *e;
  while ((e = readdir(dir)) != NULL)
    if (all_digits(e->d_name) && !scan_process(inv, targets, proc_root, dirfd(dir), e->d_name))
      inv->holders_complete = FALSE;
  closedir(dir);
}

/* ---- IOMMU group viability ---- */

static gboolean
is_bridge(const char *devdir)
{
  guint64 class_code = 0;
  if (lcvm_sysfs_read_uint(devdir, "class", &class_code, NULL) &&
      ((class_code >> 8) == 0x0604 || (class_code >> 8) == 0x0609))
    return TRUE;
  g_autofree char *path = g_build_filename(devdir, "config", NULL);
  guint8 header = 0;
  lcvm_autofd int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return FALSE;
  gboolean ok = pread(fd, &header, 1, 0x0e) == 1;
  return ok && ((header & 0x7f) == 1 || (header & 0x7f) == 2);
}

static gboolean
vfio_safe_driver(const char *driver)
{
  return driver == NULL || g_str_equal(driver, "pci-stub") || strstr(driver, "vfio") != NULL;
}

gboolean
lcvm_pci_group_viable(const char *sysfs_root, int group, const char *const *binding, GError **error)
{
  g_autofree char *name = g_strdup_printf("%d", group);
  g_autofree char *dir =
      g_build_filename(sysfs_root, "kernel", "iommu_groups", name, "devices", NULL);
  g_auto(GStrv) members = lcvm_sysfs_list(dir);
  for (guint i = 0; members[i] != NULL; i++) {
    const char *slot = members[i];
    if (binding != NULL && g_strv_contains(binding, slot))
      continue;
    g_autofree char *devdir = g_build_filename(dir, slot, NULL);
    g_autofree char *driver = lcvm_sysfs_link_name(devdir, "driver");
    if (vfio_safe_driver(driver) || is_bridge(devdir))
      continue;
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_DEVICE_IN_USE,
                "IOMMU group %d is not viable for vfio: its device %s is bound to %s. Bind that "
                "device to vfio-pci as well or unbind it from %s, or put the GPU in a slot with "
                "its own IOMMU group (ACS)",
                group, slot, driver, driver);
    return FALSE;
  }
  return TRUE;
}
