/* SPDX-License-Identifier: MIT */
/* vm-manifest.json: the writer's bytes, the validator, and the reader that the helper runs on
 * a directory operators can write (symlinks, oversize, unknown keys, wrong types). */
#include "lcvm-error.h"
#include "lcvm-manifest.h"
#include "lcvm-safe-io.h"
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define HASH_A "4f3aa0eb74aabda5c0c86330425a56e3fc1994fe1073ede5bd8f5636c3549ea7"
#define HASH_B "7e1515dc4f7e95316d7c3022ed71c13c46151b40f576de4bce2f50e609479b1c"

static LcvmManifest *
sample(void)
{
  LcvmManifest *m = lcvm_manifest_new();
  m->name = g_strdup("vm1");
  m->image = g_strdup("dstack-nvidia-0.5.11");
  m->vcpus = 16;
  m->memory = G_GUINT64_CONSTANT(64) << 30;
  m->disk = G_GUINT64_CONSTANT(200) << 30;
  m->gpu_attach = LCVM_GPU_ATTACH_ALL;
  g_strfreev(m->gpus);
  m->gpus = g_strsplit("0000:19:00.0,0000:3b:00.0", ",", -1);
  g_strfreev(m->nvswitches);
  m->nvswitches = g_strsplit("0000:05:00.0", ",", -1);
  lcvm_manifest_add_port(m, LCVM_PROTOCOL_TCP, "0.0.0.0", 2222, 22);
  lcvm_manifest_add_port(m, LCVM_PROTOCOL_UDP, "127.0.0.1", 19001, 19001);
  m->hugepages = TRUE;
  m->compose_hash = g_strdup(HASH_A);
  m->os_image_hash = g_strdup(HASH_B);
  m->created_at_ms = 1764230037000;
  return m;
}

static const char sample_json[] = "{\n"
                                  "    \"manifest_version\": 1,\n"
                                  "    \"name\": \"vm1\",\n"
                                  "    \"image\": \"dstack-nvidia-0.5.11\",\n"
                                  "    \"vcpus\": 16,\n"
                                  "    \"memory\": 68719476736,\n"
                                  "    \"disk\": 214748364800,\n"
                                  "    \"gpu_attach\": \"all\",\n"
                                  "    \"gpus\": [\n"
                                  "        \"0000:19:00.0\",\n"
                                  "        \"0000:3b:00.0\"\n"
                                  "    ],\n"
                                  "    \"nvswitches\": [\n"
                                  "        \"0000:05:00.0\"\n"
                                  "    ],\n"
                                  "    \"ports\": [\n"
                                  "        {\n"
                                  "            \"protocol\": \"tcp\",\n"
                                  "            \"address\": \"0.0.0.0\",\n"
                                  "            \"host_port\": 2222,\n"
                                  "            \"guest_port\": 22\n"
                                  "        },\n"
                                  "        {\n"
                                  "            \"protocol\": \"udp\",\n"
                                  "            \"address\": \"127.0.0.1\",\n"
                                  "            \"host_port\": 19001,\n"
                                  "            \"guest_port\": 19001\n"
                                  "        }\n"
                                  "    ],\n"
                                  "    \"hugepages\": true,\n"
                                  "    \"pin_numa\": false,\n"
                                  "    \"compose_hash\": \"" HASH_A "\",\n"
                                  "    \"os_image_hash\": \"" HASH_B "\",\n"
                                  "    \"created_at_ms\": 1764230037000\n"
                                  "}";

static void
test_writer_bytes_and_key_order(void)
{
  g_autoptr(LcvmManifest) m = sample();
  gsize len = 0;
  g_autofree char *json = lcvm_manifest_to_json(m, &len, NULL);
  g_assert_cmpstr(json, ==, sample_json);
  g_assert_cmpuint(len, ==, strlen(sample_json));
}

static void
test_round_trip_keeps_every_field(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_parse(sample_json, strlen(sample_json), &error);
  g_assert_no_error(error);
  g_assert_cmpstr(m->name, ==, "vm1");
  g_assert_cmpstr(m->image, ==, "dstack-nvidia-0.5.11");
  g_assert_cmpuint(m->vcpus, ==, 16);
  g_assert_cmpuint(m->memory, ==, G_GUINT64_CONSTANT(64) << 30);
  g_assert_cmpuint(m->disk, ==, G_GUINT64_CONSTANT(200) << 30);
  g_assert_cmpint(m->gpu_attach, ==, LCVM_GPU_ATTACH_ALL);
  g_assert_cmpuint(g_strv_length(m->gpus), ==, 2);
  g_assert_cmpstr(m->gpus[1], ==, "0000:3b:00.0");
  g_assert_cmpstr(m->nvswitches[0], ==, "0000:05:00.0");
  g_assert_cmpuint(m->ports->len, ==, 2);
  LcvmPortForward *p = &g_array_index(m->ports, LcvmPortForward, 1);
  g_assert_cmpint(p->protocol, ==, LCVM_PROTOCOL_UDP);
  g_assert_cmpstr(p->address, ==, "127.0.0.1");
  g_assert_cmpuint(p->host_port, ==, 19001);
  g_assert_true(m->hugepages);
  g_assert_false(m->pin_numa);
  g_assert_cmpstr(m->compose_hash, ==, HASH_A);
  g_assert_cmpuint(m->created_at_ms, ==, 1764230037000);
  g_autofree char *again = lcvm_manifest_to_json(m, NULL, NULL);
  g_assert_cmpstr(again, ==, sample_json);
}

/* ---- the validator: one broken field per row ---- */

typedef void (*Breaker)(LcvmManifest *m);

static void
set_name_upper(LcvmManifest *m)
{
  g_free(m->name);
  m->name = g_strdup("VM1");
}
static void
set_name_path(LcvmManifest *m)
{
  g_free(m->name);
  m->name = g_strdup("../x");
}
static void
set_image_dotdot(LcvmManifest *m)
{
  g_free(m->image);
  m->image = g_strdup("..");
}
static void
set_image_slash(LcvmManifest *m)
{
  g_free(m->image);
  m->image = g_strdup("/etc");
}
static void
set_vcpus_zero(LcvmManifest *m)
{
  m->vcpus = 0;
}
static void
set_vcpus_huge(LcvmManifest *m)
{
  m->vcpus = 5000;
}
static void
set_memory_odd(LcvmManifest *m)
{
  m->memory += 4096;
}
static void
set_memory_tiny(LcvmManifest *m)
{
  m->memory = 1 << 20;
}
static void
set_disk_tiny(LcvmManifest *m)
{
  m->disk = 100 << 20;
}
static void
set_slot_upper(LcvmManifest *m)
{
  g_free(m->gpus[0]);
  m->gpus[0] = g_strdup("0000:3B:00.0");
}
static void
set_slot_short(LcvmManifest *m)
{
  g_free(m->gpus[0]);
  m->gpus[0] = g_strdup("19:00.0");
}
static void
set_slot_in_both(LcvmManifest *m)
{
  g_free(m->nvswitches[0]);
  m->nvswitches[0] = g_strdup(m->gpus[0]);
}
static void
set_port_zero(LcvmManifest *m)
{
  g_array_index(m->ports, LcvmPortForward, 0).guest_port = 0;
}
static void
set_address_injection(LcvmManifest *m)
{
  LcvmPortForward *p = &g_array_index(m->ports, LcvmPortForward, 0);
  g_free(p->address);
  p->address = g_strdup("0.0.0.0:1-:2,hostfwd=tcp:0.0.0.0");
}
static void
set_address_ipv6(LcvmManifest *m)
{
  LcvmPortForward *p = &g_array_index(m->ports, LcvmPortForward, 0);
  g_free(p->address);
  p->address = g_strdup("::1");
}
static void
set_port_twice(LcvmManifest *m)
{
  lcvm_manifest_add_port(m, LCVM_PROTOCOL_TCP, "127.0.0.1", 2222, 23);
}
static void
set_too_many_ports(LcvmManifest *m)
{
  for (guint i = 0; i < LCVM_MANIFEST_MAX_PORTS; i++)
    lcvm_manifest_add_port(m, LCVM_PROTOCOL_TCP, "0.0.0.0", (guint16)(30000 + i), 1);
}
static void
set_hash_upper(LcvmManifest *m)
{
  m->compose_hash[0] = 'F';
}
static void
set_hash_short(LcvmManifest *m)
{
  m->os_image_hash[10] = '\0';
}
static void
set_created_zero(LcvmManifest *m)
{
  m->created_at_ms = 0;
}

typedef struct {
  const char *name;
  Breaker breaker;
  const char *message;
} ValidateCase;

static const ValidateCase validate_cases[] = {
  { "refuses_an_upper_case_name", set_name_upper, "invalid VM name" },
  { "refuses_a_path_as_name", set_name_path, "invalid VM name" },
  { "refuses_dotdot_as_image", set_image_dotdot, "not an image name" },
  { "refuses_a_path_as_image", set_image_slash, "not an image name" },
  { "refuses_zero_vcpus", set_vcpus_zero, "0 vCPUs" },
  { "refuses_too_many_vcpus", set_vcpus_huge, "5000 vCPUs" },
  { "refuses_memory_not_in_whole_mib", set_memory_odd, "memory" },
  { "refuses_tiny_memory", set_memory_tiny, "memory" },
  { "refuses_tiny_disk", set_disk_tiny, "disk" },
  { "refuses_an_upper_case_slot", set_slot_upper, "not a PCI slot" },
  { "refuses_a_short_slot", set_slot_short, "not a PCI slot" },
  { "refuses_a_slot_in_both_lists", set_slot_in_both, "appears twice" },
  { "refuses_port_zero", set_port_zero, "1-65535" },
  { "refuses_an_address_that_injects_options", set_address_injection, "not an IPv4 address" },
  { "refuses_an_ipv6_address", set_address_ipv6, "not an IPv4 address" },
  { "refuses_a_host_port_forwarded_twice", set_port_twice, "forwarded twice" },
  { "refuses_more_ports_than_qemu_takes", set_too_many_ports, "at most 1024" },
  { "refuses_an_upper_case_compose_hash", set_hash_upper, "compose_hash" },
  { "refuses_a_short_os_image_hash", set_hash_short, "os_image_hash" },
  { "refuses_a_missing_creation_time", set_created_zero, "created_at_ms" },
};

static void
test_validate(gconstpointer data)
{
  const ValidateCase *c = data;
  g_autoptr(LcvmManifest) m = sample();
  g_assert_true(lcvm_manifest_validate(m, NULL));
  c->breaker(m);
  g_autoptr(GError) error = NULL;
  g_assert_false(lcvm_manifest_validate(m, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  if (strstr(error->message, c->message) == NULL)
    g_error("'%s' not in: %s", c->message, error->message);
  /* The writer refuses what the validator refuses. */
  g_assert_null(lcvm_manifest_to_json(m, NULL, NULL));
}

/* ---- the reader: text edits of a valid file ---- */

typedef struct {
  const char *name;
  const char *find;
  const char *replace;
  const char *message;
} ParseCase;

static const ParseCase parse_cases[] = {
  { "refuses_an_unknown_key", "\"pin_numa\": false", "\"pin_numa\": false, \"image_path\": \"/\"",
    "unknown key \"image_path\"" },
  { "refuses_a_missing_key", "    \"hugepages\": true,\n", "", "\"hugepages\" is missing" },
  { "refuses_a_string_where_a_number_belongs", "\"vcpus\": 16", "\"vcpus\": \"16\"",
    "\"vcpus\" must be a whole number" },
  { "refuses_a_negative_number", "\"disk\": 214748364800", "\"disk\": -1", "\"disk\"" },
  { "refuses_a_fraction", "\"vcpus\": 16", "\"vcpus\": 16.5", "\"vcpus\"" },
  { "refuses_another_manifest_version", "\"manifest_version\": 1", "\"manifest_version\": 2",
    "manifest_version 2" },
  { "refuses_a_number_as_boolean", "\"hugepages\": true", "\"hugepages\": 1",
    "\"hugepages\" must be true or false" },
  { "refuses_an_unknown_attach_mode", "\"gpu_attach\": \"all\"", "\"gpu_attach\": \"some\"",
    "gpu_attach 'some'" },
  { "refuses_an_unknown_protocol", "\"protocol\": \"udp\"", "\"protocol\": \"sctp\"",
    "protocol 'sctp'" },
  { "refuses_an_unknown_key_in_a_port", "\"guest_port\": 22", "\"guest_port\": 22, \"x\": 1",
    "unknown key \"x\"" },
  { "refuses_a_port_above_65535", "\"host_port\": 2222", "\"host_port\": 70000", "\"host_port\"" },
  { "refuses_a_non_string_slot", "\"0000:05:00.0\"", "5", "list of PCI slots" },
  { "refuses_a_non_object_root", "{\n    \"manifest_version\"", "[{\n    \"manifest_version\"",
    "not" },
};

static void
test_parse(gconstpointer data)
{
  const ParseCase *c = data;
  g_assert_nonnull(strstr(sample_json, c->find));
  g_autoptr(GString) text = g_string_new(sample_json);
  g_string_replace(text, c->find, c->replace, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_parse(text->str, text->len, &error);
  g_assert_null(m);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  if (strstr(error->message, c->message) == NULL)
    g_error("'%s' not in: %s", c->message, error->message);
}

static void
test_parse_refuses_deep_nesting_without_recursing(void)
{
  /* The helper parses this as root: half a megabyte of '[' would overflow its stack. */
  g_autoptr(GString) text = g_string_new(NULL);
  g_string_append(text, "{\"manifest_version\": ");
  for (guint i = 0; i < 512 * 1024; i++)
    g_string_append_c(text, '[');
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_parse(text->str, text->len, &error);
  g_assert_null(m);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(error->message, "nested deeper than"));
}

static void
test_parse_judges_moderate_nesting_by_its_content(void)
{
  g_autoptr(GString) deep = g_string_new(sample_json);
  g_autoptr(GError) error = NULL;
  g_assert_cmpuint(g_string_replace(deep, "\"ports\": [", "\"ports\": [[[[[[[[[[", 1), ==, 1);
  g_assert_cmpuint(
      g_string_replace(deep, "\n    ],\n    \"hugepages\"", "]]]]]]]]]], \"hugepages\"", 1), ==, 1);
  g_autoptr(LcvmManifest) m = lcvm_manifest_parse(deep->str, deep->len, &error);
  g_assert_null(m);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  if (strstr(error->message, "port forward 1 must be an object") == NULL)
    g_error("not judged by its content: %s", error->message);
}

/* ---- files ---- */

typedef struct {
  char *dir;
  int fd;
} TempDir;

static void
temp_dir_setup(TempDir *t, gconstpointer data)
{
  t->dir = g_dir_make_tmp("lcvm-manifest-XXXXXX", NULL);
  g_assert_nonnull(t->dir);
  g_autofree char *vm = g_build_filename(t->dir, "vm1", NULL);
  g_assert_cmpint(g_mkdir(vm, 0700), ==, 0);
  t->fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint(t->fd, >=, 0);
}

static void
temp_dir_teardown(TempDir *t, gconstpointer data)
{
  lcvm_remove_tree_at(AT_FDCWD, t->dir, NULL);
  close(t->fd);
  g_free(t->dir);
}

static void
write_in(TempDir *t, const char *rel, const char *text, gsize len)
{
  g_autofree char *path = g_build_filename(t->dir, rel, NULL);
  g_assert_true(g_file_set_contents(path, text, (gssize)len, NULL));
}

static void
test_load_vm_reads_a_written_definition(TempDir *t, gconstpointer data)
{
  g_autoptr(LcvmManifest) m = sample();
  int vm = openat(t->fd, "vm1", O_RDONLY | O_DIRECTORY);
  g_assert_true(lcvm_manifest_write_at(vm, m, 0640, NULL));
  close(vm);
  int vmfd = -1;
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) back = lcvm_manifest_load_vm(t->fd, "vm1", &vmfd, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(back->compose_hash, ==, HASH_A);
  g_assert_cmpint(vmfd, >=, 0);
  close(vmfd);
}

static void
test_load_refuses_a_symlinked_manifest(TempDir *t, gconstpointer data)
{
  write_in(t, "elsewhere.json", sample_json, strlen(sample_json));
  g_autofree char *link = g_build_filename(t->dir, "vm1", LCVM_MANIFEST_FILE, NULL);
  g_assert_cmpint(symlink("../elsewhere.json", link), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_load_vm(t->fd, "vm1", NULL, &error);
  g_assert_null(m);
  g_assert_nonnull(error);
}

static void
test_load_refuses_a_symlinked_vm_directory(TempDir *t, gconstpointer data)
{
  write_in(t, "vm1/" LCVM_MANIFEST_FILE, sample_json, strlen(sample_json));
  g_autofree char *link = g_build_filename(t->dir, "vm2", NULL);
  g_assert_cmpint(symlink("vm1", link), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_load_vm(t->fd, "vm2", NULL, &error);
  g_assert_null(m);
  g_assert_nonnull(error);
}

static void
test_load_refuses_an_oversized_manifest(TempDir *t, gconstpointer data)
{
  g_autoptr(GString) big = g_string_new(sample_json);
  while (big->len <= LCVM_MANIFEST_MAX_SIZE)
    g_string_append_c(big, ' ');
  write_in(t, "vm1/" LCVM_MANIFEST_FILE, big->str, big->len);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_load_vm(t->fd, "vm1", NULL, &error);
  g_assert_null(m);
  g_assert_nonnull(strstr(error->message, "larger than"));
}

static void
test_load_refuses_a_manifest_naming_another_vm(TempDir *t, gconstpointer data)
{
  g_autofree char *vm = g_build_filename(t->dir, "other", NULL);
  g_assert_cmpint(g_mkdir(vm, 0700), ==, 0);
  write_in(t, "other/" LCVM_MANIFEST_FILE, sample_json, strlen(sample_json));
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_load_vm(t->fd, "other", NULL, &error);
  g_assert_null(m);
  g_assert_nonnull(strstr(error->message, "names the VM 'vm1'"));
}

static void
test_load_refuses_an_invalid_name_without_touching_files(TempDir *t, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_load_vm(t->fd, "../vm1", NULL, &error);
  g_assert_null(m);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
}

/* ---- host limits ---- */

static void
test_limits(void)
{
  g_autoptr(LcvmConfig) config = lcvm_config_new_default();
  g_autoptr(LcvmManifest) m = sample();
  g_assert_true(lcvm_manifest_check_limits(m, config, NULL));

  g_autoptr(GError) e1 = NULL;
  g_array_index(m->ports, LcvmPortForward, 0).host_port = 80;
  g_assert_false(lcvm_manifest_check_limits(m, config, &e1));
  g_assert_nonnull(strstr(e1->message, "outside this host's port range"));

  g_autoptr(GError) e2 = NULL;
  g_array_index(m->ports, LcvmPortForward, 0).host_port = 3443;
  g_assert_false(lcvm_manifest_check_limits(m, config, &e2));
  g_assert_nonnull(strstr(e2->message, "reserved"));

  g_autoptr(GError) e3 = NULL;
  g_array_index(m->ports, LcvmPortForward, 0).host_port = 40000;
  g_assert_false(lcvm_manifest_check_limits(m, config, &e3));
  g_assert_nonnull(strstr(e3->message, "host-API port range"));

  g_array_index(m->ports, LcvmPortForward, 0).host_port = 2222;
  g_autoptr(GError) e4 = NULL;
  config->max_vcpus = 8;
  g_assert_false(lcvm_manifest_check_limits(m, config, &e4));
  g_assert_nonnull(strstr(e4->message, "max_vcpus"));

  g_autoptr(GError) e5 = NULL;
  config->max_vcpus = 0;
  config->max_memory = G_GUINT64_CONSTANT(32) << 30;
  g_assert_false(lcvm_manifest_check_limits(m, config, &e5));
  g_assert_nonnull(strstr(e5->message, "max_memory"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/manifest/writer_bytes_and_key_order", test_writer_bytes_and_key_order);
  g_test_add_func("/manifest/round_trip_keeps_every_field", test_round_trip_keeps_every_field);
  for (guint i = 0; i < G_N_ELEMENTS(validate_cases); i++) {
    g_autofree char *path = g_strdup_printf("/manifest/validate/%s", validate_cases[i].name);
    g_test_add_data_func(path, &validate_cases[i], test_validate);
  }
  for (guint i = 0; i < G_N_ELEMENTS(parse_cases); i++) {
    g_autofree char *path = g_strdup_printf("/manifest/parse/%s", parse_cases[i].name);
    g_test_add_data_func(path, &parse_cases[i], test_parse);
  }
#define FILE_TEST(name, func)                                                                      \
  g_test_add("/manifest/load/" name, TempDir, NULL, temp_dir_setup, func, temp_dir_teardown)
  FILE_TEST("reads_a_written_definition", test_load_vm_reads_a_written_definition);
  FILE_TEST("refuses_a_symlinked_manifest", test_load_refuses_a_symlinked_manifest);
  FILE_TEST("refuses_a_symlinked_vm_directory", test_load_refuses_a_symlinked_vm_directory);
  FILE_TEST("refuses_an_oversized_manifest", test_load_refuses_an_oversized_manifest);
  FILE_TEST("refuses_a_manifest_naming_another_vm", test_load_refuses_a_manifest_naming_another_vm);
  FILE_TEST("refuses_an_invalid_name_without_touching_files",
            test_load_refuses_an_invalid_name_without_touching_files);
  g_test_add_func("/manifest/limits_follow_the_host_config", test_limits);
  g_test_add_func("/manifest/parse/refuses_deep_nesting_without_recursing",
                  test_parse_refuses_deep_nesting_without_recursing);
  g_test_add_func("/manifest/parse/judges_moderate_nesting_by_its_content",
                  test_parse_judges_moderate_nesting_by_its_content);
  return g_test_run();
}
