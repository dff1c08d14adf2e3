/* SPDX-License-Identifier: MIT */
/* Definition + image + config → LcvmQemuSpec (see the header). Reads sysfs and dev_root only;
 * never writes, never follows a path out of a definition. */
#include "lcvm-qemu-spec.h"
#include "lcvm-error.h"
#include "lcvm-layout.h"
#include "lcvm-pci.h"
#include "lcvm-sysfs.h"

#include <unistd.h>

/* The public pointer is the address of `spec`; the rest owns what it points into. */
typedef struct {
  LcvmQemuSpec spec;
  GPtrArray *strings;
  GArray *forwards;   /* LcvmQemuForward */
  GArray *gpus;       /* LcvmQemuDevice */
  GArray *nvswitches; /* LcvmQemuDevice */
} OwnedSpec;

void
lcvm_qemu_spec_free(LcvmQemuSpec *spec)
{
  OwnedSpec *o = (OwnedSpec *)spec;
  if (!o)
    return;
  g_ptr_array_unref(o->strings);
  g_array_unref(o->forwards);
  g_array_unref(o->gpus);
  g_array_unref(o->nvswitches);
  g_free(o);
}

static const char *
keep(OwnedSpec *o, char *text)
{
  g_ptr_array_add(o->strings, text);
  return text;
}

static gboolean
host_has_vhost_vsock(const LcvmConfig *config)
{
  g_autofree char *path = lcvm_config_path(config->dev_root, "vhost-vsock");
  return access(path, F_OK) == 0;
}

/* The kernel's numa_node of a device; -1 (no affinity) counts as node 0, as in the reference. */
static gboolean
device_numa_node(const LcvmConfig *config, const char *slot, guint *node, GError **error)
{
  g_autofree char *dir = lcvm_pci_device_dir(config->sysfs_root, slot);
  g_autoptr(GError) local = NULL;
  g_autofree char *text = lcvm_sysfs_read(dir, "numa_node", &local);
  gint64 value = 0;
  if (!text || !g_ascii_string_to_signed(text, 10, -1, G_MAXINT16, &value, &local)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "cannot read the NUMA node of %s (%s); is the device still present? "
                "Check `lium-cvm lsgpu`",
                slot, local->message);
    return FALSE;
  }
  *node = value < 0 ? 0 : (guint)value;
  return TRUE;
}

/* NUMA nodes are needed only when hugepages or pin_numa use them; otherwise a device that
 * vanished is reported by the start's own device checks, not here. */
static gboolean
add_devices(GArray *out, GStrv slots, gboolean numa, const LcvmConfig *config, GError **error)
{
  for (guint i = 0; slots && slots[i]; i++) {
    LcvmQemuDevice device = { slots[i], 0, 0 };
    if (numa && !device_numa_node(config, slots[i], &device.numa_node, error))
      return FALSE;
    g_array_append_val(out, device);
  }
  return TRUE;
}

/* With QEMU >= 10 the helper passes /dev/iommu and each device's vfio cdev at the child fds
 * lcvm-qemu-argv.h fixes, so a dry run prints the numbers a start uses. */
static void
number_vfio_fds(LcvmQemuSpec *s, OwnedSpec *o)
{
  guint n = o->gpus->len + o->nvswitches->len;
  if (n == 0 || n > LCVM_QEMU_DEVICES_MAX || !lcvm_qemu_spec_uses_iommufd(s))
    return;
  s->iommufd_fd = LCVM_QEMU_FD_IOMMUFD;
  int fd = LCVM_QEMU_FD_VFIO_FIRST;
  for (guint i = 0; i < o->gpus->len; i++)
    g_array_index(o->gpus, LcvmQemuDevice, i).vfio_fd = fd++;
  for (guint i = 0; i < o->nvswitches->len; i++)
    g_array_index(o->nvswitches, LcvmQemuDevice, i).vfio_fd = fd++;
}

static void
add_forwards(OwnedSpec *o, const LcvmManifest *manifest)
{
  for (guint i = 0; i < manifest->ports->len; i++) {
    const LcvmPortForward *p = &g_array_index(manifest->ports, LcvmPortForward, i);
    LcvmQemuForward f = { lcvm_protocol_name(p->protocol), p->address, p->host_port,
                          p->guest_port };
    g_array_append_val(o->forwards, f);
  }
}

/* taskset's cpulist: the node of the first GPU, or node 0 without one. */
static const char *
pin_cpulist(OwnedSpec *o, const LcvmConfig *config, GError **error)
{
  guint node = o->gpus->len ? g_array_index(o->gpus, LcvmQemuDevice, 0).numa_node : 0;
  g_autofree char *dir = g_strdup_printf("%s/devices/system/node/node%u", config->sysfs_root, node);
  g_autoptr(GError) local = NULL;
  char *cpus = lcvm_sysfs_read(dir, "cpulist", &local);
  if (!cpus) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "pin_numa: cannot read the CPUs of NUMA node %u (%s); recreate the definition "
                "without pin_numa on a host without NUMA information",
                node, local->message);
    return NULL;
  }
  return keep(o, cpus);
}

static gboolean
check_image(const LcvmManifest *manifest, const LcvmImage *image, GError **error)
{
  const char *missing = !image->kernel    ? "kernel"
                        : !image->initrd  ? "initrd"
                        : !image->bios    ? "bios"
                        : !image->rootfs  ? "rootfs"
                        : !image->cmdline ? "cmdline"
                                          : NULL;
  if (missing) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "image %s has no \"%s\" in metadata.json; download the image again", image->name,
                missing);
    return FALSE;
  }
  if (g_strcmp0(image->digest, manifest->os_image_hash) != 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "image %s has os_image_hash %s but VM %s was defined with %s; its data disk is "
                "bound to the old image — restore that image or create the VM again",
                image->name, image->digest ? image->digest : "(none)", manifest->name,
                manifest->os_image_hash);
    return FALSE;
  }
  return TRUE;
}

static void
fill_image(OwnedSpec *o, const LcvmImage *image)
{
  LcvmQemuSpec *s = &o->spec;
  s->kernel = keep(o, g_build_filename(image->dir, image->kernel, NULL));
  s->initrd = keep(o, g_build_filename(image->dir, image->initrd, NULL));
  s->bios = keep(o, g_build_filename(image->dir, image->bios, NULL));
  s->rootfs = keep(o, g_build_filename(image->dir, image->rootfs, NULL));
  s->kernel_fd = LCVM_QEMU_FD_KERNEL;
  s->initrd_fd = LCVM_QEMU_FD_INITRD;
  s->bios_fd = LCVM_QEMU_FD_BIOS;
  s->rootfs_fd = LCVM_QEMU_FD_ROOTFS;
  s->cmdline = image->cmdline;
  s->shared_ro = image->shared_ro;
}

static void
fill_instance(OwnedSpec *o, const LcvmManifest *manifest, const LcvmConfig *config)
{
  LcvmQemuSpec *s = &o->spec;
  /* manifest->name passed the manifest validator: a valid VM name */
  const char *name = manifest->name;
  s->shared_dir = keep(o, lcvm_layout_instance_file(config, name, LCVM_INSTANCE_SHARED_DIR, NULL));
  s->data_disk = keep(o, lcvm_layout_instance_file(config, name, LCVM_INSTANCE_DATA_DISK, NULL));
  s->data_disk_fd = LCVM_QEMU_FD_DATA_DISK;
  s->data_disk_ro_fd = LCVM_QEMU_FD_DATA_DISK_RO;
  s->qmp_fd = LCVM_QEMU_FD_QMP;
  s->serial_fd = LCVM_QEMU_FD_SERIAL;
}

static gboolean
fill_devices(OwnedSpec *o, const LcvmManifest *manifest, const LcvmConfig *config, GError **error)
{
  LcvmQemuSpec *s = &o->spec;
  gboolean numa = manifest->hugepages || manifest->pin_numa;
  if (!add_devices(o->gpus, manifest->gpus, numa, config, error) ||
      !add_devices(o->nvswitches, manifest->nvswitches, FALSE, config, error))
    return FALSE;
  number_vfio_fds(s, o);
  s->gpus = (const LcvmQemuDevice *)(gpointer)o->gpus->data;
  s->n_gpus = o->gpus->len;
  s->nvswitches = (const LcvmQemuDevice *)(gpointer)o->nvswitches->data;
  s->n_nvswitches = o->nvswitches->len;
  s->hugepages = manifest->hugepages;
  s->hugepages_dir = config->hugepages_dir;
  if (manifest->pin_numa) {
    s->taskset_path = config->taskset;
    s->pin_cpulist = pin_cpulist(o, config, error);
    return s->pin_cpulist != NULL;
  }
  return TRUE;
}

LcvmQemuSpec *
lcvm_qemu_spec_from(const LcvmManifest *manifest, const LcvmImage *image, const LcvmConfig *config,
                    const LcvmQemuHost *host, GError **error)
{
  if (!check_image(manifest, image, error))
    return NULL;
  OwnedSpec *o = g_new0(OwnedSpec, 1);
  o->strings = g_ptr_array_new_with_free_func(g_free);
  o->forwards = g_array_new(FALSE, TRUE, sizeof(LcvmQemuForward));
  o->gpus = g_array_new(FALSE, TRUE, sizeof(LcvmQemuDevice));
  o->nvswitches = g_array_new(FALSE, TRUE, sizeof(LcvmQemuDevice));
  g_autoptr(LcvmQemuSpec) spec = &o->spec;
  spec->qemu_path = host->qemu_path;
  spec->qemu_version = host->qemu_version;
  spec->tee = !config->allow_no_tee;
  spec->accel = config->accel;
  spec->vcpus = manifest->vcpus;
  spec->memory_mib = manifest->memory / (1024 * 1024);
  spec->vsock_cid = spec->tee || host_has_vhost_vsock(config) ? host->vsock_cid : 0;
  fill_image(o, image);
  fill_instance(o, manifest, config);
  add_forwards(o, manifest);
  spec->forwards = (const LcvmQemuForward *)(gpointer)o->forwards->data;
  spec->n_forwards = o->forwards->len;
  if (!fill_devices(o, manifest, config, error))
    return NULL;
  return g_steal_pointer(&spec);
}
