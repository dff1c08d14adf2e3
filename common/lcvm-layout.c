/* SPDX-License-Identifier: MIT */
/* Paths of the state_dir/runtime_dir layout (the tree is in lcvm-layout.h). Pure string
 * building: nothing here touches the filesystem. A name that could leave its directory (not a
 * valid VM name, image name or canonical slot) is refused before it is joined. */
#include "lcvm-layout.h"
#include <gio/gio.h>
#include <string.h>
#include "lcvm-error.h"
#include "lcvm-image.h"
#include "lcvm-validate.h"

/* file is a name of this layout, never a caller's: one component. */
static void
assert_layout_name(const char *file)
{
  g_assert(file != NULL && file[0] != '\0' && file[0] != '/' && strchr(file, '/') == NULL);
}

char *
lcvm_layout_images_dir(const LcvmConfig *config)
{
  return g_build_filename(config->state_dir, LCVM_STATE_IMAGES, NULL);
}

char *
lcvm_layout_vms_dir(const LcvmConfig *config)
{
  return g_build_filename(config->state_dir, LCVM_STATE_VMS, NULL);
}

char *
lcvm_layout_instances_dir(const LcvmConfig *config)
{
  return g_build_filename(config->state_dir, LCVM_STATE_INSTANCES, NULL);
}

char *
lcvm_layout_image_dir(const LcvmConfig *config, const char *image, GError **error)
{
  if (!lcvm_image_name_is_valid(image)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "'%s' is not an image name (up to 64 letters, digits, '_', '-', '.'; no '..', "
                "no leading '.')",
                image);
    return NULL;
  }
  return g_build_filename(config->state_dir, LCVM_STATE_IMAGES, image, NULL);
}

char *
lcvm_layout_image_stamp(const char *image)
{
  return g_strdup_printf(".%s.verified", image);
}

char *
lcvm_layout_image_lock(const char *image)
{
  return g_strdup_printf(".%s.lock", image);
}

char *
lcvm_layout_vm_dir(const LcvmConfig *config, const char *name, GError **error)
{
  if (!lcvm_vm_name_valid(name, error))
    return NULL;
  return g_build_filename(config->state_dir, LCVM_STATE_VMS, name, NULL);
}

char *
lcvm_layout_instance_dir(const LcvmConfig *config, const char *name, GError **error)
{
  if (!lcvm_vm_name_valid(name, error))
    return NULL;
  return g_build_filename(config->state_dir, LCVM_STATE_INSTANCES, name, NULL);
}

char *
lcvm_layout_instance_file(const LcvmConfig *config, const char *name, const char *file,
                          GError **error)
{
  assert_layout_name(file);
  if (!lcvm_vm_name_valid(name, error))
    return NULL;
  return g_build_filename(config->state_dir, LCVM_STATE_INSTANCES, name, file, NULL);
}

char *
lcvm_layout_instance_rel(const char *name, const char *file, GError **error)
{
  if (file != NULL)
    assert_layout_name(file);
  if (!lcvm_vm_name_valid(name, error))
    return NULL;
  return g_build_filename(LCVM_STATE_INSTANCES, name, file, NULL);
}

char *
lcvm_layout_runtime_dir(const LcvmConfig *config, const char *name, GError **error)
{
  if (!lcvm_vm_name_valid(name, error))
    return NULL;
  return g_build_filename(config->runtime_dir, name, NULL);
}

char *
lcvm_layout_runtime_file(const LcvmConfig *config, const char *name, const char *file,
                         GError **error)
{
  assert_layout_name(file);
  if (!lcvm_vm_name_valid(name, error))
    return NULL;
  return g_build_filename(config->runtime_dir, name, file, NULL);
}

char *
lcvm_layout_vfio_records_dir(const LcvmConfig *config)
{
  return g_build_filename(config->runtime_dir, LCVM_RUNTIME_VFIO_DIR, NULL);
}

char *
lcvm_layout_vfio_record(const LcvmConfig *config, const char *slot, GError **error)
{
  if (slot == NULL || !lcvm_slot_is_canonical(slot)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "invalid PCI slot '%s': expected DDDD:BB:DD.F, lower-case hex", slot ? slot : "");
    return NULL;
  }
  return g_build_filename(config->runtime_dir, LCVM_RUNTIME_VFIO_DIR, slot, NULL);
}
