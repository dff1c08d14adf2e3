/* SPDX-License-Identifier: MIT */
/* `lium-cvm list`, `show NAME`, `hash NAME`, `rm NAME`: reading and removing VM definitions
 * (state_dir/vms/NAME). Every manifest is loaded through the one validator (lcvm-manifest),
 * never following a symlink; `rm` renames the definition away before deleting it. */
#include "cli-attestation.h"
#include "cli-client.h"
#include "cli-vm.h"
#include "lcvm-compose.h"
#include "lcvm-error.h"
#include "lcvm-image.h"
#include "lcvm-layout.h"
#include "lcvm-mrenclave.h"
#include "lcvm-names.h"
#include "lcvm-safe-io.h"
#include "lcvm-validate.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* ---- list ---- */

typedef struct {
  char *name;
  LcvmManifest *manifest; /* NULL when the definition does not load */
  char *problem;
} ListedVm;

static void
listed_vm_free(ListedVm *vm)
{
  g_free(vm->name);
  lcvm_manifest_free(vm->manifest);
  g_free(vm->problem);
  g_free(vm);
}

static gint
compare_listed(gconstpointer a, gconstpointer b)
{
  return g_strcmp0((*(ListedVm *const *)a)->name, (*(ListedVm *const *)b)->name);
}

/* Every definition directory (names that are VM names; temporary ones start with '.'). */
static GPtrArray *
collect_vms(int vmsfd)
{
  GPtrArray *vms = g_ptr_array_new_with_free_func((GDestroyNotify)listed_vm_free);
  int fd = dup(vmsfd);
  DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
  for (struct dirent *e = dir ? readdir(dir) : NULL; e != NULL; e = readdir(dir)) {
    if (!lcvm_vm_name_valid(e->d_name, NULL))
      continue;
    ListedVm *vm = g_new0(ListedVm, 1);
    g_autoptr(GError) error = NULL;
    vm->name = g_strdup(e->d_name);
    vm->manifest = lcvm_manifest_load_vm(vmsfd, e->d_name, NULL, &error);
    vm->problem = error ? g_strdup(error->message) : NULL;
    g_ptr_array_add(vms, vm);
  }
  if (dir != NULL)
    closedir(dir);
  else if (fd >= 0)
    close(fd);
  g_ptr_array_sort(vms, compare_listed);
  return vms;
}

/* The helper's live state of a VM it knows, else what the definition says. */
static const char *
list_state(GHashTable *live, const ListedVm *vm)
{
  GVariant *props = g_hash_table_lookup(live, vm->name);
  const char *state = NULL;
  if (props != NULL && g_variant_lookup(props, "State", "&s", &state))
    return state;
  return vm->manifest ? "defined" : "invalid";
}

/* "exited unexpectedly at …" of a VM the helper knows; "" otherwise. */
static const char *
list_unexpected_exit(GHashTable *live, const char *name)
{
  GVariant *props = g_hash_table_lookup(live, name);
  const char *text = NULL;
  return props != NULL && g_variant_lookup(props, "UnexpectedExit", "&s", &text) ? text : "";
}

static void
print_list_json(GPtrArray *vms, GHashTable *live)
{
  g_autoptr(JsonArray) array = json_array_new();
  for (guint i = 0; i < vms->len; i++) {
    ListedVm *vm = vms->pdata[i];
    JsonNode *node = vm->manifest ? cli_vm_manifest_node(vm->manifest, NULL) : NULL;
    if (node == NULL) {
      node = json_node_init_object(json_node_alloc(), json_object_new());
      json_object_set_string_member(json_node_get_object(node), "name", vm->name);
      json_object_set_string_member(json_node_get_object(node), "problem", vm->problem);
    }
    json_object_set_string_member(json_node_get_object(node), "state", list_state(live, vm));
    if (*list_unexpected_exit(live, vm->name))
      json_object_set_string_member(json_node_get_object(node), "unexpected_exit",
                                    list_unexpected_exit(live, vm->name));
    json_array_add_element(array, node);
  }
  g_autoptr(JsonNode) root = json_node_init_array(json_node_alloc(), array);
  cli_print_json(root);
}

static void
print_list_text(LcvmCli *cli, GPtrArray *vms, GHashTable *live)
{
  printf("%-20s %-8s %5s %7s %-10s %-24s %s\n", "NAME", "STATE", "VCPUS", "MEMORY", "GPUS", "PORTS",
         "IMAGE");
  for (guint i = 0; i < vms->len; i++) {
    ListedVm *vm = vms->pdata[i];
    const LcvmManifest *m = vm->manifest;
    if (m == NULL) {
      printf("%-20s %-8s %s\n", vm->name, "invalid", vm->problem);
      continue;
    }
    g_autofree char *memory = cli_vm_format_size(m->memory);
    g_autofree char *ports = cli_vm_format_ports(m->ports);
    g_autofree char *gpus =
        g_strdup_printf("%u+%usw", g_strv_length(m->gpus), g_strv_length(m->nvswitches));
    printf("%-20s %-8s %5u %7s %-10s %-24s %s\n", vm->name, list_state(live, vm), m->vcpus, memory,
           m->gpus[0] || m->nvswitches[0] ? gpus : "-", ports, m->image);
  }
  if (vms->len == 0)
    printf("(no VMs defined: create one with 'lium-cvm new NAME')\n");
  for (guint i = 0; i < vms->len; i++) {
    const char *name = ((ListedVm *)vms->pdata[i])->name;
    if (*list_unexpected_exit(live, name)) {
      /* The text carries the guest's exit and console: escaped on a terminal like `status`. */
      g_autofree char *shown = cli_text_for_stdout(cli, list_unexpected_exit(live, name));
      printf("%s %s; not restarted (`lium-cvm status %s`)\n", name, shown, name);
    }
  }
}

int
cmd_list(LcvmCli *cli, int argc, char **argv)
{
  if (!cli_parse(cli, &argc, &argv, NULL, NULL,
                 "Lists the VM definitions. STATE is the helper's live state of a VM it ran "
                 "(starting, running, stopping, stopped, failed), else \"defined\", or "
                 "\"invalid\" for a directory whose manifest does not load."))
    return CLI_EXIT_USAGE;
  if (argc != 1)
    return cli_failf(cli, CLI_EXIT_USAGE, "list takes no arguments");
  g_autoptr(GError) error = NULL;
  int vmsfd = cli_vm_dir_open(cli, FALSE, &error);
  if (vmsfd < 0 && !g_error_matches(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  g_autoptr(GPtrArray) vms = vmsfd >= 0
                                 ? collect_vms(vmsfd)
                                 : g_ptr_array_new_with_free_func((GDestroyNotify)listed_vm_free);
  if (vmsfd >= 0)
    close(vmsfd);
  g_autoptr(GHashTable) live = cli_vm_live_properties(cli);
  if (cli->json)
    print_list_json(vms, live);
  else
    print_list_text(cli, vms, live);
  return CLI_EXIT_OK;
}

/* ---- show, hash, rm: one named VM ---- */

/* Parses `VERB NAME`, opens the definition and loads its manifest. */
static LcvmManifest *
open_named(LcvmCli *cli, int argc, char **argv, int *vm_dirfd, int *status)
{
  g_autoptr(GError) error = NULL;
  *status = CLI_EXIT_USAGE;
  if (argc != 2) {
    cli_failf(cli, CLI_EXIT_USAGE, "give exactly one VM name (see 'lium-cvm %s --help')",
              cli->verb);
    return NULL;
  }
  if (!lcvm_vm_name_valid(argv[1], &error)) {
    cli_fail(cli, CLI_EXIT_USAGE, error);
    return NULL;
  }
  *status = CLI_EXIT_FAILED;
  int vmsfd = cli_vm_dir_open(cli, FALSE, &error);
  if (vmsfd < 0) {
    cli_fail(cli, CLI_EXIT_FAILED, error);
    return NULL;
  }
  gboolean exists = cli_vm_exists(vmsfd, argv[1]);
  LcvmManifest *m = exists ? lcvm_manifest_load_vm(vmsfd, argv[1], vm_dirfd, &error) : NULL;
  close(vmsfd);
  if (!exists)
    cli_failf(cli, CLI_EXIT_FAILED, "CVM '%s' not found (see 'lium-cvm list')", argv[1]);
  else if (m == NULL)
    cli_fail(cli, CLI_EXIT_FAILED, error);
  return m;
}

/* "present", or why the image no longer gives the OS image hash recorded at `new`. */
static char *
image_status(const LcvmCli *cli, const LcvmManifest *m)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmImage) image = lcvm_image_load(cli->config, m->image, &error);
  if (image == NULL)
    return g_strdup_printf("missing (run 'lium-cvm download %s')", m->image);
  if (g_strcmp0(image->digest, m->os_image_hash) != 0)
    return g_strdup("present, but its digest differs from the OS image hash recorded at `new`: "
                    "recreate the VM");
  return g_strdup("present");
}

/* The MRENCLAVE of the key provider the VM's data disk was made with (recorded by the helper at
 * the first start in the world-readable instances/NAME/key-provider.mrenclave), or NULL. */
static char *
disk_mrenclave(const LcvmCli *cli, const char *name)
{
  g_autofree char *path =
      lcvm_layout_instance_file(cli->config, name, LCVM_INSTANCE_MRENCLAVE_FILE, NULL);
  return path ? lcvm_mrenclave_read_at(AT_FDCWD, path) : NULL;
}

static void
print_show_text(const LcvmCli *cli, const LcvmManifest *m, const char *image, const char *qemu,
                const char *mrenclave)
{
  g_autofree char *vms = cli_vm_dir_path(cli);
  g_autofree char *memory = cli_vm_format_size(m->memory);
  g_autofree char *disk = cli_vm_format_size(m->disk);
  g_autofree char *devices = cli_vm_format_devices(m);
  g_autofree char *ports = cli_vm_format_ports(m->ports);
  g_autoptr(GDateTime) created = g_date_time_new_from_unix_utc((gint64)(m->created_at_ms / 1000));
  g_autofree char *when = created ? g_date_time_format_iso8601(created) : g_strdup("?");
  printf("Name:                  %s\n", m->name);
  printf("State:                 defined\n");
  printf("Definition:            %s/%s\n", vms, m->name);
  printf("Created:               %s\n", when);
  printf("vCPUs:                 %u\n", m->vcpus);
  printf("Memory:                %s\n", memory);
  printf("Disk:                  %s\n", disk);
  printf("GPUs:                  %s%s\n", devices,
         m->gpu_attach == LCVM_GPU_ATTACH_ALL ? " [all]" : "");
  printf("Ports (host->guest):   %s\n", ports);
  printf("Hugepages:             %s\n", m->hugepages ? "yes" : "no");
  printf("Pin to NUMA node:      %s\n", m->pin_numa ? "yes" : "no");
  printf("OS image:              %s (%s)\n", m->image, image);
  printf("Compose hash:          %s\n", m->compose_hash);
  printf("OS image hash:         %s\n", m->os_image_hash);
  printf("QEMU version expected: %s\n", qemu);
  printf("Disk's MRENCLAVE:      %s\n",
         mrenclave ? mrenclave : "not recorded (no data disk yet, or one made before it was)");
}

int
cmd_show(LcvmCli *cli, int argc, char **argv)
{
  int status;
  if (!cli_parse(
          cli, &argc, &argv, NULL, "NAME",
          "Shows a VM definition and what it is measured with: the compose hash, the OS "
          "image hash, the QEMU version the validator expects and the key provider MRENCLAVE "
          "its data disk was made with."))
    return CLI_EXIT_USAGE;
  g_autoptr(LcvmManifest) m = open_named(cli, argc, argv, NULL, &status);
  if (m == NULL)
    return status;
  g_autofree char *image = image_status(cli, m);
  g_autofree char *qemu = cli_attestation_qemu_expected(cli);
  g_autofree char *mrenclave = disk_mrenclave(cli, m->name);
  if (!cli->json) {
    print_show_text(cli, m, image, qemu, mrenclave);
    return CLI_EXIT_OK;
  }
  g_autoptr(JsonNode) node = cli_vm_manifest_node(m, NULL);
  JsonObject *o = json_node_get_object(node);
  json_object_set_string_member(o, "state", "defined");
  json_object_set_string_member(o, "image_status", image);
  json_object_set_string_member(o, "qemu_version_expected", qemu);
  if (mrenclave != NULL)
    json_object_set_string_member(o, "key_provider_mrenclave", mrenclave);
  else
    json_object_set_null_member(o, "key_provider_mrenclave");
  cli_print_json(node);
  return CLI_EXIT_OK;
}

int
cmd_hash(LcvmCli *cli, int argc, char **argv)
{
  char *expect_arg = NULL;
  const GOptionEntry entries[] = {
    { "expect", 0, 0, G_OPTION_ARG_STRING, &expect_arg,
      "The compose hash the validator whitelists; exit 1 when it differs", "HEX" },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "NAME",
                 "Recomputes the compose hash (sha256 of app-compose.json) and compares it with "
                 "the hash recorded at `new` and, with --expect, with the whitelisted one."))
    return CLI_EXIT_USAGE;
  g_autofree char *expect = expect_arg ? g_ascii_strdown(expect_arg, -1) : NULL;
  g_free(expect_arg);
  if (expect != NULL && !lcvm_sha256_hex_valid(expect))
    return cli_failf(cli, CLI_EXIT_USAGE, "--expect '%s' is not a sha256 (64 hex digits)", expect);
  int status, dirfd = -1;
  g_autoptr(LcvmManifest) m = open_named(cli, argc, argv, &dirfd, &status);
  if (m == NULL)
    return status;
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  gboolean ok = lcvm_read_file_at(dirfd, LCVM_APP_COMPOSE_FILE, LCVM_APP_COMPOSE_MAX_SIZE, &data,
                                  &len, &error);
  close(dirfd);
  if (!ok)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  g_autofree char *actual = lcvm_compose_hash(data, len);
  gboolean recorded_ok = g_str_equal(actual, m->compose_hash);
  gboolean expect_ok = expect == NULL || g_str_equal(expect, actual);
  if (cli->json) {
    g_autoptr(JsonObject) o = json_object_new();
    json_object_set_string_member(o, "name", m->name);
    json_object_set_string_member(o, "compose_hash", actual);
    json_object_set_string_member(o, "recorded", m->compose_hash);
    json_object_set_boolean_member(o, "matches_recorded", recorded_ok);
    if (expect != NULL) {
      json_object_set_string_member(o, "expected", expect);
      json_object_set_boolean_member(o, "matches_expected", expect_ok);
    }
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), o);
    cli_print_json(node);
  } else {
    printf("%s\n", actual);
    if (!recorded_ok)
      printf("MISMATCH: app-compose.json changed since `new` (recorded %s)\n", m->compose_hash);
    if (expect != NULL)
      printf("expected: %s\nactual:   %s\n%s\n", expect, actual,
             expect_ok ? "OK" : "MISMATCH: this CVM will not pass the validator whitelist");
  }
  return recorded_ok && expect_ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

/* Renames the definition away first, so a half-removed directory never looks like a VM. */
static gboolean
remove_definition(int vmsfd, const char *name, GError **error)
{
  g_autofree char *doomed = g_strdup_printf(".%s.removing-%08x", name, g_random_int());
  if (renameat(vmsfd, name, vmsfd, doomed) < 0) {
    int err = errno;
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "cannot remove %s: %s", name,
                g_strerror(err));
    return FALSE;
  }
  return lcvm_remove_tree_at(vmsfd, doomed, error);
}

/* The helper removes the instance (data disk, shared/, logs) and refuses while the VM runs.
 * A VM that never ran has no instance; a helper that cannot be reached leaves the instance
 * (if any) in place — a running VM never reads its definition, so removing it is safe. */
static gboolean
remove_instance(LcvmCli *cli, const char *name, GError **error)
{
  g_autoptr(GError) local = NULL;
  if (cli_manager_remove_vm(cli, name, &local) ||
      g_error_matches(local, LCVM_ERROR, LCVM_ERROR_NOT_FOUND))
    return TRUE;
  if (local->domain == LCVM_ERROR) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  g_printerr("lium-cvm: warning: cannot ask the helper to remove the instance of '%s' (%s); "
             "removing only its definition\n",
             name, local->message);
  return TRUE;
}

int
cmd_rm(LcvmCli *cli, int argc, char **argv)
{
  gboolean yes = FALSE;
  const GOptionEntry entries[] = {
    { "yes", 'y', 0, G_OPTION_ARG_NONE, &yes, "Do not ask for confirmation", NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "NAME",
                 "Removes the VM definition state_dir/vms/NAME (its manifest, app-compose.json, "
                 ".user-config and scripts) and, through the helper, its instance (data disk, "
                 "shared files, logs). Refused while the VM runs."))
    return CLI_EXIT_USAGE;
  if (argc != 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "give exactly one VM name (see 'lium-cvm rm --help')");
  const char *name = argv[1];
  g_autoptr(GError) error = NULL;
  if (!lcvm_vm_name_valid(name, &error))
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  int vmsfd = cli_vm_dir_open(cli, FALSE, &error);
  if (vmsfd < 0)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  g_autofree char *vms = cli_vm_dir_path(cli);
  g_autofree char *question =
      g_strdup_printf("Remove the definition of CVM '%s' (%s/%s)?", name, vms, name);
  int status = CLI_EXIT_OK;
  if (!cli_vm_exists(vmsfd, name))
    status = cli_failf(cli, CLI_EXIT_FAILED, "CVM '%s' not found (see 'lium-cvm list')", name);
  else if (!yes && !isatty(STDIN_FILENO))
    status =
        cli_failf(cli, CLI_EXIT_USAGE,
                  "not removing '%s' without confirmation: give --yes (no terminal to ask)", name);
  else if (!yes && !cli_confirm(question))
    status = cli_failf(cli, CLI_EXIT_FAILED, "'%s' was not removed", name);
  else if (!remove_instance(cli, name, &error) || !remove_definition(vmsfd, name, &error))
    status = cli_fail(cli, CLI_EXIT_FAILED, error);
  close(vmsfd);
  if (status != CLI_EXIT_OK)
    return status;
  if (cli->json) {
    g_autoptr(JsonObject) o = json_object_new();
    json_object_set_string_member(o, "removed", name);
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), o);
    cli_print_json(node);
  } else {
    printf("CVM '%s' removed\n", name);
  }
  return CLI_EXIT_OK;
}
