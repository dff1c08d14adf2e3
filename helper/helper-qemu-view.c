/* SPDX-License-Identifier: MIT */
/* A VM's QEMU view (see the header). Reads dev_root only to learn device numbers; every path
 * it shows comes from the spec (built from configured roots and validated names) or from the
 * trusted QEMU path, never from a definition. */
#include "helper-qemu-view.h"

/* The installation a binary outside /usr needs: PREFIX for PREFIX/bin/NAME (its libraries and
 * share/qemu firmware live beside), else the binary's own directory. NULL where the base view
 * already has it (/usr, /bin, /sbin). */
static char *
installation_of(const char *binary)
{
  if (binary == NULL || g_str_has_prefix(binary, "/usr/"))
    return NULL;
  g_autofree char *dir = g_path_get_dirname(binary);
  if (g_str_equal(dir, "/bin") || g_str_equal(dir, "/sbin") || g_str_equal(dir, "/"))
    return NULL;
  g_autofree char *base = g_path_get_basename(dir);
  if (g_str_equal(base, "bin"))
    return g_path_get_dirname(dir);
  return g_steal_pointer(&dir);
}

static gboolean
show_installation(HelperSandbox *sb, const char *binary, GError **error)
{
  g_autofree char *prefix = installation_of(binary);
  return prefix == NULL || g_str_equal(prefix, "/") ||
         helper_sandbox_add_dir(sb, prefix, FALSE, error);
}

/* dev_root/NAME as /dev/NAME: a node of QEMU's own (kvm, vhost-vsock: the host's cannot be
 * handed over), or the host's node bound (the VFIO container everybody may open). */
static gboolean
show_device(HelperSandbox *sb, const LcvmConfig *config, const char *name, gboolean own,
            GError **error)
{
  g_autofree char *node = lcvm_config_path(config->dev_root, name);
  return own ? helper_sandbox_add_device(sb, node, name, error)
             : helper_sandbox_bind_node(sb, node, name, error);
}

static gboolean
show_passthrough(HelperSandbox *sb, const LcvmConfig *config, const LcvmQemuSpec *spec,
                 const GPtrArray *dev_nodes, GError **error)
{
  /* iommufd (QEMU >= 10): /dev/iommu and the vfio cdevs come as fds; nothing to show. */
  if (spec->n_gpus + spec->n_nvswitches == 0 || lcvm_qemu_spec_uses_iommufd(spec))
    return TRUE;
  /* Legacy VFIO: the container and the IOMMU group nodes, which QEMU opens itself; the groups
   * are handed to the VM's uid on the host for the VM's life (helper-vm-launch.c). */
  if (!show_device(sb, config, "vfio/vfio", FALSE, error))
    return FALSE;
  g_autofree char *prefix = g_strconcat(config->dev_root, "/", NULL);
  for (guint i = 0; i < dev_nodes->len; i++) {
    const char *node = dev_nodes->pdata[i];
    if (!g_str_has_prefix(node, prefix) ||
        !helper_sandbox_bind_node(sb, node, node + strlen(prefix), error))
      return FALSE;
  }
  return TRUE;
}

HelperSandbox *
helper_qemu_view(const LcvmConfig *config, const LcvmQemuSpec *spec, uid_t uid,
                 const GPtrArray *dev_nodes, GError **error)
{
  g_autoptr(HelperSandbox) sb = helper_sandbox_new(uid, uid);
  if (!show_installation(sb, spec->qemu_path, error) ||
      (spec->pin_cpulist != NULL && !show_installation(sb, spec->taskset_path, error)) ||
      !helper_sandbox_add_dir(sb, spec->shared_dir, TRUE, error) ||
      (spec->hugepages && !helper_sandbox_add_dir(sb, spec->hugepages_dir, TRUE, error)) ||
      (g_str_equal(spec->accel, "kvm") && !show_device(sb, config, "kvm", TRUE, error)) ||
      (spec->vsock_cid != 0 && !show_device(sb, config, "vhost-vsock", TRUE, error)) ||
      !show_passthrough(sb, config, spec, dev_nodes, error))
    return NULL;
  return g_steal_pointer(&sb);
}
