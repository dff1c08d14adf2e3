/* SPDX-License-Identifier: MIT */
/* Host check, passthrough area: IOMMU active, vfio modules, the vfio DMA entry limit (now and
 * at the next module load), and every NVIDIA GPU and NVSwitch with its driver and IOMMU
 * group, from the one PCI inventory (lcvm-pci). Binding and module loading are the helper's
 * job; here we only say what is missing and how to fix it. */
#include "lcvm-grub.h"
#include "lcvm-hostcheck-private.h"
#include "lcvm-pci.h"
#include <string.h>

static void
check_iommu(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "iommu.active", "IOMMU active (VT-d)",
                        "an entry in /sys/class/iommu (e.g. dmar0)");
  g_autofree char *path = lcvm_config_path(ctx->config->sysfs_root, "class/iommu");
  g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
  const char *first = dir ? g_dir_read_name(dir) : NULL;
  if (first != NULL) {
    hc_set(c, LCVM_CHECK_OK, "%s", first);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s is empty or missing", path);
  hc_remedy(
      c,
      "in BIOS enable Intel VT-d (Virtualization Technology for Directed I/O), and " HC_GRUB_REMEDY(
          "intel_iommu=on"));
}

static void
check_vfio_modules(HostCtx *ctx)
{
  LcvmCheck *c =
      hc_add(ctx, "vfio.modules", "vfio modules loaded", "vfio, vfio_pci, vfio_iommu_type1");
  const char *sys = ctx->config->sysfs_root;
  g_autoptr(GPtrArray) missing = g_ptr_array_new();
  if (!hc_exists(sys, "module/vfio"))
    g_ptr_array_add(missing, "vfio");
  if (!hc_exists(sys, "module/vfio_pci") && !hc_exists(sys, "bus/pci/drivers/vfio-pci"))
    g_ptr_array_add(missing, "vfio_pci");
  if (!hc_exists(sys, "module/vfio_iommu_type1"))
    g_ptr_array_add(missing, "vfio_iommu_type1");
  if (missing->len == 0) {
    hc_set(c, LCVM_CHECK_OK, "all loaded");
    return;
  }
  g_ptr_array_add(missing, NULL);
  g_autofree char *list = g_strjoinv(", ", (char **)missing->pdata);
  hc_set(c, LCVM_CHECK_FAIL, "not loaded: %s", list);
  hc_remedy(c,
            "lium-cvm load-modules --persist (or: sudo modprobe vfio-pci vfio_iommu_type1, "
            "and list vfio_pci and vfio_iommu_type1 in %s/vfio.conf)",
            ctx->config->modules_load_dir);
  c->fix = LCVM_FIX_LOAD_VFIO_MODULES;
}

#define DMA_REMEDY_RUNTIME "lium-cvm gpu dma-limit 16777216 --persist (or: lium-cvm check --fix)"

static void
check_dma_runtime(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "vfio.dma_entry_limit", "vfio DMA entry limit",
                        ">= 16777216 (TDX shared/private conversions exhaust 65535)");
  g_autoptr(GError) error = NULL;
  g_autofree char *value = hc_read_value(
      ctx->config->sysfs_root, "module/vfio_iommu_type1/parameters/dma_entry_limit", &error);
  if (value == NULL && !hc_exists(ctx->config->sysfs_root, "module/vfio_iommu_type1")) {
    hc_set(c, LCVM_CHECK_SKIP,
           "vfio_iommu_type1 not loaded (see vfio.modules and "
           "vfio.dma_entry_limit.persisted)");
    return;
  }
  if (value == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", error->message);
    return;
  }
  guint64 limit = g_ascii_strtoull(value, NULL, 10);
  if (limit >= LCVM_DMA_ENTRY_LIMIT_DEFAULT) {
    hc_set(c, LCVM_CHECK_OK, "%s", value);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s: QEMU dies with 'VFIO_MAP_DMA failed: No space left on device'",
         value);
  hc_remedy(c, DMA_REMEDY_RUNTIME);
  c->fix = LCVM_FIX_DMA_ENTRY_LIMIT;
}

/* dma_entry_limit from "options vfio_iommu_type1 … dma_entry_limit=N" in modprobe_dir. */
static char *
modprobe_dma_limit(HostCtx *ctx, char **file)
{
  g_autoptr(GDir) dir = g_dir_open(ctx->config->modprobe_dir, 0, NULL);
  const char *name;
  char *found = NULL;
  while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
    if (!g_str_has_suffix(name, ".conf"))
      continue;
    g_autofree char *text = hc_read(ctx->config->modprobe_dir, name, NULL);
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
      g_auto(GStrv) w = g_strsplit_set(g_strstrip(lines[i]), " \t", -1);
      if (g_strv_length(w) < 3 || !g_str_equal(w[0], "options") ||
          !g_str_equal(w[1], "vfio_iommu_type1"))
        continue;
      for (guint k = 2; w[k] != NULL; k++)
        if (g_str_has_prefix(w[k], "dma_entry_limit=")) {
          g_free(found);
          found = g_strdup(w[k] + strlen("dma_entry_limit="));
          g_free(*file);
          *file = g_build_filename(ctx->config->modprobe_dir, name, NULL);
        }
    }
  }
  return found;
}

static void
check_dma_persisted(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "vfio.dma_entry_limit.persisted", "vfio DMA entry limit at boot",
                        ">= 16777216 on the kernel command line or in modprobe.d");
  g_autofree char *cmd =
      ctx->cmdline ? lcvm_cmdline_lookup(ctx->cmdline, "vfio_iommu_type1.dma_entry_limit") : NULL;
  g_autofree char *file = NULL;
  g_autofree char *conf = modprobe_dma_limit(ctx, &file);
  const char *value = cmd ? cmd : conf;
  g_autofree char *where = cmd ? g_strdup("kernel command line") : g_strdup(file);
  if (value != NULL && g_ascii_strtoull(value, NULL, 10) >= LCVM_DMA_ENTRY_LIMIT_DEFAULT) {
    hc_set(c, LCVM_CHECK_OK, "%s (%s)", value, where);
    return;
  }
  if (value != NULL)
    hc_set(c, LCVM_CHECK_WARN, "%s (%s)", value, where);
  else
    hc_set(c, LCVM_CHECK_WARN, "not set: the default 65535 returns after a reboot");
  hc_remedy(c,
            "lium-cvm gpu dma-limit 16777216 --persist (or write 'options vfio_iommu_type1 "
            "dma_entry_limit=16777216' to %s/lium-cvm-vfio.conf)%s",
            ctx->config->modprobe_dir,
            cmd ? " and raise vfio_iommu_type1.dma_entry_limit= in /etc/default/grub" : "");
  c->fix = LCVM_FIX_DMA_ENTRY_LIMIT;
}

void
hc_check_vfio(HostCtx *ctx)
{
  check_iommu(ctx);
  check_vfio_modules(ctx);
  check_dma_runtime(ctx);
  check_dma_persisted(ctx);
}

/* ---- NVIDIA devices ---- */

/* The vfio-pci.ids= token this host needs (never narrower than the running one). */
static char *
vfio_ids_token(HostCtx *ctx, const LcvmPciInventory *inv)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = g_ptr_array_index(inv->devices, i);
    g_autofree char *id = g_strdup_printf("%04x:%04x", d->vendor_id, d->device_id);
    if (!g_ptr_array_find_with_equal_func(ids, id, g_str_equal, NULL))
      g_ptr_array_add(ids, g_steal_pointer(&id));
  }
  g_ptr_array_add(ids, NULL);
  g_autofree char *tokens = lcvm_grub_tokens((const char *const *)ids->pdata, ctx->cmdline);
  g_auto(GStrv) words = g_strsplit(tokens, " ", -1);
  for (guint i = 0; words[i] != NULL; i++)
    if (g_str_has_prefix(words[i], "vfio-pci.ids="))
      return g_strdup(words[i]);
  return g_strdup("vfio-pci.ids=");
}

static const char *
kind_title(const LcvmPciDevice *d)
{
  return d->kind == LCVM_PCI_GPU ? "GPU" : "NVSwitch";
}

static void
check_device_driver(HostCtx *ctx, const LcvmPciDevice *d, const char *ids_token)
{
  g_autofree char *id = g_strdup_printf("%s.%s.driver", lcvm_pci_kind_name(d->kind), d->slot);
  g_autofree char *title = g_strdup_printf("%s %s driver", kind_title(d), d->slot);
  LcvmCheck *c = hc_add(ctx, id, title, LCVM_VFIO_DRIVER);
  const char *driver = d->state.driver;
  if (g_strcmp0(driver, LCVM_VFIO_DRIVER) == 0) {
    hc_set(c, LCVM_CHECK_OK, "vfio-pci (%s, NUMA node %d)", d->model, d->numa_node);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s (%s, %04x:%04x)", driver ? driver : "no driver", d->model,
         d->vendor_id, d->device_id);
  hc_remedy(c,
            "stop what uses it (nvidia-persistenced, DCGM, a VM), then: lium-cvm gpu bind %s; "
            "to bind at every boot, " HC_GRUB_REMEDY("%s"),
            d->slot, ids_token);
}

static void
check_device_group(HostCtx *ctx, const LcvmPciDevice *d)
{
  g_autofree char *id = g_strdup_printf("%s.%s.iommu_group", lcvm_pci_kind_name(d->kind), d->slot);
  g_autofree char *title = g_strdup_printf("%s %s IOMMU group", kind_title(d), d->slot);
  LcvmCheck *c = hc_add(ctx, id, title, "an IOMMU group");
  if (d->state.iommu_group >= 0) {
    hc_set(c, LCVM_CHECK_OK, "group %d", d->state.iommu_group);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "none: the IOMMU is off");
  hc_remedy(c, "see iommu.active: enable VT-d in BIOS and boot with intel_iommu=on");
}

void
hc_check_gpus(HostCtx *ctx)
{
  LcvmCheck *c =
      hc_add(ctx, "gpu.present", "NVIDIA GPUs", "at least one NVIDIA GPU (10de, class 0300/0302)");
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(ctx->config->sysfs_root, &error);
  if (inv == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", error->message);
    return;
  }
  guint gpus = 0;
  for (guint i = 0; i < inv->devices->len; i++)
    gpus += ((LcvmPciDevice *)g_ptr_array_index(inv->devices, i))->kind == LCVM_PCI_GPU;
  if (gpus == 0) {
    hc_set(c, LCVM_CHECK_FAIL, "no NVIDIA GPU on the PCI bus");
    hc_remedy(c, "check 'lspci -nn | grep -i nvidia'; a GPU hidden from the OS is usually "
                 "disabled in BIOS or not seated/powered");
    return;
  }
  hc_set(c, LCVM_CHECK_OK, "%u GPU(s), %u NVSwitch(es)", gpus, inv->devices->len - gpus);
  g_autofree char *ids_token = vfio_ids_token(ctx, inv);
  for (guint i = 0; i < inv->devices->len; i++) {
    check_device_driver(ctx, g_ptr_array_index(inv->devices, i), ids_token);
    check_device_group(ctx, g_ptr_array_index(inv->devices, i));
  }
}
