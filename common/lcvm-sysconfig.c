/* SPDX-License-Identifier: MIT */
/* .sys-config.json and vm_config (see the header). Key order and value types are the
 * reference launcher's; Python's exact bytes come from lcvm-pyjson. */
#include "lcvm-sysconfig.h"
#include "lcvm-error.h"
#include "lcvm-pyjson.h"

#include <json-glib/json-glib.h>

/* QEMU 8.0 through 9.0 add TD pages in a single pass (intel-staging/qemu-tdx#1). */
static gboolean
single_pass_add_pages(const LcvmQemuVersion *v)
{
  return lcvm_qemu_version_at_least(v, 8, 0, 0) && !lcvm_qemu_version_at_least(v, 9, 0, 1);
}

/* QEMU before 9.0 gives the q35 guest a legacy PIC. */
static gboolean
has_pic(const LcvmQemuVersion *v)
{
  return !lcvm_qemu_version_at_least(v, 9, 0, 0);
}

static void
set_int(JsonBuilder *b, const char *key, gint64 value)
{
  json_builder_set_member_name(b, key);
  json_builder_add_int_value(b, value);
}

static void
set_bool(JsonBuilder *b, const char *key, gboolean value)
{
  json_builder_set_member_name(b, key);
  json_builder_add_boolean_value(b, value);
}

static void
set_string(JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name(b, key);
  json_builder_add_string_value(b, value);
}

static char *
dump(JsonBuilder *b, int indent, gsize *len, GError **error)
{
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  return lcvm_pyjson_dump(root, indent, len, error);
}

char *
lcvm_vm_config_json(const LcvmQemuSpec *spec, const LcvmGuestConfig *guest, GError **error)
{
  const LcvmQemuVersion *v = &spec->qemu_version;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  set_int(b, "spec_version", 1);
  set_string(b, "os_image_hash", guest->os_image_hash);
  set_int(b, "cpu_count", lcvm_qemu_spec_effective_vcpus(spec));
  set_int(b, "memory_size", (gint64)(lcvm_qemu_spec_effective_memory_mib(spec) * 1024 * 1024));
  set_bool(b, "qemu_single_pass_add_pages", single_pass_add_pages(v));
  set_bool(b, "pic", has_pic(v));
  set_int(b, "pci_hole64_size", (gint64)LCVM_QEMU_PCI_HOLE64_SIZE);
  set_int(b, "num_gpus", spec->n_gpus);
  set_int(b, "num_nvswitches", spec->n_nvswitches);
  set_bool(b, "hugepages", spec->hugepages);
  set_bool(b, "hotplug_off", TRUE);
  set_string(b, "qemu_version", v->text);
  set_string(b, "image", guest->image);
  if (guest->ovmf_variant)
    set_string(b, "ovmf_variant", guest->ovmf_variant);
  json_builder_end_object(b);
  return dump(b, LCVM_PYJSON_NO_INDENT, NULL, error);
}

char *
lcvm_sys_config_json(const LcvmQemuSpec *spec, const LcvmGuestConfig *guest, gsize *len,
                     GError **error)
{
  g_autofree char *vm_config = lcvm_vm_config_json(spec, guest, error);
  if (!vm_config)
    return NULL;
  g_autofree char *url = g_strdup_printf("http://10.0.2.2:%u/api", guest->host_api_port);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  if (guest->docker_registry)
    set_string(b, "docker_registry", guest->docker_registry);
  set_string(b, "host_api_url", url);
  set_int(b, "host_vsock_port", guest->host_api_port);
  set_string(b, "vm_config", vm_config);
  json_builder_end_object(b);
  return dump(b, 4, len, error);
}
