/* SPDX-License-Identifier: MIT */
/* .sys-config.json and vm_config against bytes written by hand from reference/lium.md §2.3
 * (Lium's gen_vm_config: json.dumps(vm_config) inside json.dump(config, indent=4)). */
#include "lcvm-sysconfig.h"

#include <string.h>

#define HASH "b6a1d2c3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeeff"

static LcvmQemuVersion
version(guint major, guint minor, guint patch)
{
  LcvmQemuVersion v = { major, minor, patch, "", FALSE };
  g_snprintf(v.text, sizeof v.text, "%u.%u.%u", major, minor, patch);
  return v;
}

static const LcvmQemuDevice gpus[] = { { "0000:18:00.0", 0 }, { "0000:2a:00.0", 1 } };
static const LcvmQemuDevice nvswitches[] = { { "0000:05:00.0", 0 } };

static LcvmQemuSpec
spec_9_2_1(void)
{
  LcvmQemuSpec spec = {
    .qemu_version = version(9, 2, 1),
    .tee = TRUE,
    .accel = "kvm",
    .vcpus = 8,
    .memory_mib = 65536,
    .gpus = gpus,
    .n_gpus = 2,
    .nvswitches = nvswitches,
    .n_nvswitches = 1,
  };
  return spec;
}

static const LcvmGuestConfig guest = {
  .host_api_port = 40001,
  .os_image_hash = HASH,
  .image = "dstack-nvidia-0.5.11",
};

static void
test_vm_config_is_python_json_dumps_in_reference_key_order(void)
{
  LcvmQemuSpec spec = spec_9_2_1();
  g_autoptr(GError) error = NULL;
  g_autofree char *json = lcvm_vm_config_json(&spec, &guest, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(json, ==,
                  "{\"spec_version\": 1, \"os_image_hash\": \"" HASH "\", \"cpu_count\": 8, "
                  "\"memory_size\": 68719476736, \"qemu_single_pass_add_pages\": false, "
                  "\"pic\": false, \"pci_hole64_size\": 17592186044416, \"num_gpus\": 2, "
                  "\"num_nvswitches\": 1, \"hugepages\": false, \"hotplug_off\": true, "
                  "\"qemu_version\": \"9.2.1\", \"image\": \"dstack-nvidia-0.5.11\"}");
}

/* single_pass_add_pages for 8.0.0 <= v <= 9.0.0, pic for v < 9.0.0. */
static void
test_qemu_version_decides_pic_and_single_pass(void)
{
  struct {
    guint major, minor, patch;
    const char *flags;
  } cases[] = {
    { 7, 2, 22, "\"qemu_single_pass_add_pages\": false, \"pic\": true" },
    { 8, 0, 0, "\"qemu_single_pass_add_pages\": true, \"pic\": true" },
    { 8, 2, 2, "\"qemu_single_pass_add_pages\": true, \"pic\": true" },
    { 9, 0, 0, "\"qemu_single_pass_add_pages\": true, \"pic\": false" },
    { 9, 0, 1, "\"qemu_single_pass_add_pages\": false, \"pic\": false" },
    { 10, 1, 0, "\"qemu_single_pass_add_pages\": false, \"pic\": false" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    LcvmQemuSpec spec = spec_9_2_1();
    spec.qemu_version = version(cases[i].major, cases[i].minor, cases[i].patch);
    g_autofree char *json = lcvm_vm_config_json(&spec, &guest, NULL);
    g_assert_nonnull(json);
    if (!g_strrstr(json, cases[i].flags))
      g_error("%u.%u.%u: %s lacks %s", cases[i].major, cases[i].minor, cases[i].patch, json,
              cases[i].flags);
  }
}

/* The verifier must see the machine QEMU really got: rounded-up vCPUs and memory and the
 * real hugepages flag (the reference hard-codes false). */
static void
test_hugepages_report_the_rounded_machine(void)
{
  LcvmQemuSpec spec = spec_9_2_1();
  spec.vcpus = 7;
  spec.memory_mib = 3000;
  spec.hugepages = TRUE;
  g_autofree char *json = lcvm_vm_config_json(&spec, &guest, NULL);
  g_assert_nonnull(json);
  g_assert_nonnull(g_strrstr(json, "\"cpu_count\": 8, \"memory_size\": 4294967296,"));
  g_assert_nonnull(g_strrstr(json, "\"hugepages\": true,"));
}

static void
test_ovmf_variant_is_stamped_last_when_the_image_has_one(void)
{
  LcvmQemuSpec spec = spec_9_2_1();
  LcvmGuestConfig g = guest;
  g.ovmf_variant = "edk2-stable202411";
  g_autofree char *json = lcvm_vm_config_json(&spec, &g, NULL);
  g_assert_true(g_str_has_suffix(json, "\"image\": \"dstack-nvidia-0.5.11\", "
                                       "\"ovmf_variant\": \"edk2-stable202411\"}"));
}

static void
test_sys_config_is_json_dump_indent_4(void)
{
  LcvmQemuSpec spec = spec_9_2_1();
  spec.n_gpus = 0;
  spec.n_nvswitches = 0;
  spec.vcpus = 1;
  spec.memory_mib = 512;
  spec.qemu_version = version(7, 2, 22);
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = lcvm_sys_config_json(&spec, &guest, &len, &error);
  g_assert_no_error(error);
  const char *expected =
      "{\n"
      "    \"host_api_url\": \"http://10.0.2.2:40001/api\",\n"
      "    \"host_vsock_port\": 40001,\n"
      "    \"vm_config\": \"{\\\"spec_version\\\": 1, \\\"os_image_hash\\\": \\\"" HASH "\\\", "
      "\\\"cpu_count\\\": 1, \\\"memory_size\\\": 536870912, "
      "\\\"qemu_single_pass_add_pages\\\": false, \\\"pic\\\": true, "
      "\\\"pci_hole64_size\\\": 17592186044416, \\\"num_gpus\\\": 0, \\\"num_nvswitches\\\": 0, "
      "\\\"hugepages\\\": false, \\\"hotplug_off\\\": true, \\\"qemu_version\\\": \\\"7.2.22\\\", "
      "\\\"image\\\": \\\"dstack-nvidia-0.5.11\\\"}\"\n"
      "}";
  g_assert_cmpstr(json, ==, expected);
  g_assert_cmpuint(len, ==, strlen(expected));
}

static void
test_docker_registry_comes_first_when_configured(void)
{
  LcvmQemuSpec spec = spec_9_2_1();
  LcvmGuestConfig g = guest;
  g.docker_registry = "registry.example:5000";
  g_autofree char *json = lcvm_sys_config_json(&spec, &g, NULL, NULL);
  g_assert_true(g_str_has_prefix(json, "{\n    \"docker_registry\": \"registry.example:5000\",\n"
                                       "    \"host_api_url\": \"http://10.0.2.2:40001/api\",\n"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/sysconfig/vm-config-is-python-json-dumps-in-reference-key-order",
                  test_vm_config_is_python_json_dumps_in_reference_key_order);
  g_test_add_func("/sysconfig/qemu-version-decides-pic-and-single-pass",
                  test_qemu_version_decides_pic_and_single_pass);
  g_test_add_func("/sysconfig/hugepages-report-the-rounded-machine",
                  test_hugepages_report_the_rounded_machine);
  g_test_add_func("/sysconfig/ovmf-variant-is-stamped-last-when-the-image-has-one",
                  test_ovmf_variant_is_stamped_last_when_the_image_has_one);
  g_test_add_func("/sysconfig/sys-config-is-json-dump-indent-4",
                  test_sys_config_is_json_dump_indent_4);
  g_test_add_func("/sysconfig/docker-registry-comes-first-when-configured",
                  test_docker_registry_comes_first_when_configured);
  return g_test_run();
}
