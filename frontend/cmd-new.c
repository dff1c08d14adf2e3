/* SPDX-License-Identifier: MIT */
/* `lium-cvm new NAME`: a VM definition from .env and a compose file. It is built in a private
 * temporary directory under state_dir/vms and renamed into place at the end, so a failure
 * leaves nothing and a name is never half-created. .env is parsed as text (lcvm-env), never
 * sourced; the measured app-compose.json is what lium-cvm.sh + dstack.py write, byte for
 * byte (lcvm-compose). */
#include "cli-attestation.h"
#include "cli-vm.h"
#include "lcvm-board-policy.h"
#include "lcvm-compose.h"
#include "lcvm-env.h"
#include "lcvm-error.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-image.h"
#include "lcvm-layout.h"
#include "lcvm-parity.h"
#include "lcvm-pci.h"
#include "lcvm-safe-io.h"
#include "lcvm-validate.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFINITION_FILE_MODE 0640
#define DEFINITION_DIR_MODE  02770
#define MAX_SCRIPT_SIZE      (10u * 1024 * 1024)

typedef struct {
  char *env_file;
  char *environment;
  char *compose;
  char *init_script;
  char *pre_launch_script;
  gboolean no_scripts;
  gboolean enable_logs;
  gboolean enable_sysinfo;
  char *image;
  gboolean download;
  gboolean dry_run;
} NewOptions;

static void
new_options_clear(NewOptions *o)
{
  g_free(o->env_file);
  g_free(o->environment);
  g_free(o->compose);
  g_free(o->init_script);
  g_free(o->pre_launch_script);
  g_free(o->image);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(NewOptions, new_options_clear)

/* What `new` writes: the manifest and the bytes of each file. */
typedef struct {
  LcvmManifest *manifest;
  char *compose_path;
  char *app_compose;
  gsize app_compose_len;
  char *user_config;
  gsize user_config_len;
  char *init_script;       /* NULL: none */
  char *pre_launch_script; /* NULL: none */
  GPtrArray *notes;        /* departures from Lium's launcher (lcvm-parity) */
} Definition;

static void
definition_clear(Definition *d)
{
  lcvm_manifest_free(d->manifest);
  g_free(d->compose_path);
  g_free(d->app_compose);
  g_free(d->user_config);
  g_free(d->init_script);
  g_free(d->pre_launch_script);
  g_clear_pointer(&d->notes, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Definition, definition_clear)

static gboolean
usage_error(GError **error, const char *message)
{
  g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, message);
  return FALSE;
}

static char *
compose_path(const NewOptions *o, GError **error)
{
  if (o->compose != NULL && o->environment != NULL) {
    usage_error(error, "--compose and --env both choose the compose file: give one of them");
    return NULL;
  }
  if (o->compose != NULL)
    return g_strdup(o->compose);
  const char *env = o->environment ? o->environment : "prod";
  if (g_str_equal(env, "local"))
    return g_strdup("app/docker-compose.local.yml");
  if (g_str_equal(env, "staging"))
    return g_strdup("app/docker-compose.staging.yml");
  if (g_str_equal(env, "prod"))
    return g_strdup("app/docker-compose.yml");
  g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
              "Unknown environment: '%s'. Valid values are: local, staging, prod", env);
  return NULL;
}

/* Reads a text file the operator named (compose or script) and decodes it as Python would. */
static char *
read_text(const char *what, const char *path, gsize max, GError **error)
{
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND, "%s not found: %s", what, path);
    return NULL;
  }
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "cannot read the %s: %s is not a regular file", what, path);
    return NULL;
  }
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  if (!g_file_get_contents(path, &data, &len, &local)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "cannot read the %s: %s", what,
                local->message);
    return NULL;
  }
  if (len > max) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s %s is larger than %" G_GSIZE_FORMAT " bytes", what, path, max);
    return NULL;
  }
  g_autofree char *label = g_strdup_printf("%s %s", what, path);
  return lcvm_compose_decode_text(label, data, len, error);
}

/* The explicit script, else the default one; none only with --no-scripts. lium-cvm.sh always
 * passes both scripts to dstack.py, so a missing one would give a compose hash Lium never
 * produces: that is an error, never a silent difference. */
static gboolean
read_script(const char *what, const char *option, const char *explicit_path,
            const char *default_path, gboolean none, char **text, GError **error)
{
  *text = NULL;
  if (none)
    return TRUE;
  const char *path = explicit_path ? explicit_path : default_path;
  if (explicit_path == NULL && !g_file_test(default_path, G_FILE_TEST_EXISTS)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "%s not found: %s. lium-cvm.sh always measures it, so without it the compose "
                "hash is one Lium's validators never whitelist: run 'lium-cvm new' in the "
                "directory that holds app/ (Lium's dstacktee checkout), give %s FILE, or pass "
                "--no-scripts to measure no scripts on purpose",
                what, default_path, option);
    return FALSE;
  }
  *text = read_text(what, path, MAX_SCRIPT_SIZE, error);
  return *text != NULL;
}

static LcvmEnv *
load_env(const NewOptions *o, GError **error)
{
  const char *path = o->env_file ? o->env_file : ".env";
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "Env file not found: %s (copy .env.example to .env and fill it in, or give "
                "--env-file)",
                path);
    return NULL;
  }
  return lcvm_env_load(path, error);
}

/* The compose text with the runner digest stamped in when the compose asks for it. */
static char *
compose_text(const char *path, const LcvmEnv *env, GError **error)
{
  g_autofree char *text = read_text("Docker Compose file", path, LCVM_APP_COMPOSE_MAX_SIZE, error);
  if (text == NULL || !lcvm_compose_needs_runner_digest(text))
    return g_steal_pointer(&text);
  const char *digest = lcvm_env_get(env, LCVM_RUNNER_DIGEST_KEY);
  return lcvm_compose_stamp_runner_digest(text, digest && *digest ? digest : NULL, error);
}

/* ---- new: GPUs ---- */

static void
add_device(const LcvmPciDevice *dev, GStrvBuilder *gpus, GStrvBuilder *switches)
{
  g_strv_builder_add(dev->kind == LCVM_PCI_NVSWITCH ? switches : gpus, dev->slot);
}

/* Lium's mode policy by the helper's cached modes: a definition may be written before the
 * modes are switched, so a violation is a warning here (`run` refuses it). */
static void
warn_mode_policy(const LcvmCli *cli, LcvmPciInventory *inv, const LcvmManifest *m)
{
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_load(cli->config->state_dir, NULL);
  if (modes == NULL)
    return;
  g_autoptr(GPtrArray) issues = lcvm_board_policy_vm(inv, modes, (const char *const *)m->gpus,
                                                     (const char *const *)m->nvswitches);
  for (guint i = 0; i < issues->len; i++) {
    const LcvmPolicyIssue *issue = issues->pdata[i];
    g_printerr("warning: GPU modes: %s; fix: %s ('lium-cvm run %s' refuses the VM until then)\n",
               issue->problem, issue->fix, m->name);
  }
}

/* CVM_GPUS=all → every NVIDIA GPU and NVSwitch of the host (in slot order); a listed set →
 * each slot must be one of them, sorted into GPUs and NVSwitches in the listed order. */
static gboolean
resolve_gpus(const LcvmCli *cli, LcvmManifest *m, GError **error)
{
  if (m->gpu_attach == LCVM_GPU_ATTACH_LISTED && m->gpus[0] == NULL)
    return TRUE;
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(cli->config->sysfs_root, error);
  if (inv == NULL)
    return FALSE;
  g_autoptr(GStrvBuilder) gpus = g_strv_builder_new();
  g_autoptr(GStrvBuilder) switches = g_strv_builder_new();
  if (m->gpu_attach == LCVM_GPU_ATTACH_ALL) {
    if (inv->devices->len == 0) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                  "CVM_GPUS=all, but this host has no NVIDIA GPU or NVSwitch (see 'lium-cvm "
                  "lsgpu'); leave CVM_GPUS empty for a VM without GPUs");
      return FALSE;
    }
    for (guint i = 0; i < inv->devices->len; i++)
      add_device(inv->devices->pdata[i], gpus, switches);
  }
  for (guint i = 0; m->gpu_attach == LCVM_GPU_ATTACH_LISTED && m->gpus[i] != NULL; i++) {
    LcvmPciDevice *dev = lcvm_pci_inventory_find(inv, m->gpus[i]);
    if (dev == NULL) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                  "CVM_GPUS lists %s, which is not an NVIDIA GPU or NVSwitch on this host (see "
                  "'lium-cvm lsgpu')",
                  m->gpus[i]);
      return FALSE;
    }
    add_device(dev, gpus, switches);
  }
  g_strfreev(m->gpus);
  g_strfreev(m->nvswitches);
  m->gpus = g_strv_builder_end(gpus);
  m->nvswitches = g_strv_builder_end(switches);
  warn_mode_policy(cli, inv, m);
  return TRUE;
}

/* ---- new: the image ---- */

/* Runs `lium-cvm download NAME` (its progress output included). */
static gboolean
download_image(LcvmCli *cli, const char *name)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, (char *)"download");
  g_ptr_array_add(argv, (char *)name);
  if (cli->config_path != NULL) {
    g_ptr_array_add(argv, (char *)"--config");
    g_ptr_array_add(argv, cli->config_path);
  }
  if (cli->json)
    g_ptr_array_add(argv, (char *)"--json");
  g_ptr_array_add(argv, NULL);
  return cli_run_libexec(cli, "lium-cvm-download", (char **)argv->pdata) == CLI_EXIT_OK;
}

/* The image, downloaded first when it is missing and the operator agrees (or --download). */
static LcvmImage *
find_image(LcvmCli *cli, const char *name, gboolean download, gboolean dry_run, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(LcvmImage) image = lcvm_image_load(cli->config, name, &local);
  if (image == NULL && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
    g_autofree char *question =
        g_strdup_printf("OS image %s is not downloaded yet. Download it now?", name);
    if (dry_run || (!download && (cli->json || !cli_confirm(question)))) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                  "OS image %s is not downloaded: run 'lium-cvm download %s' first%s", name, name,
                  dry_run ? "" : ", or pass --download");
      return NULL;
    }
    if (!download_image(cli, name)) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                  "the download of OS image %s failed (see above); no VM was created", name);
      return NULL;
    }
    g_clear_error(&local);
    image = lcvm_image_load(cli->config, name, &local);
  }
  if (image == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s", local->message);
    return NULL;
  }
  if (image->digest == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "OS image %s has no digest.txt, so its OS image hash is unknown: download it "
                "again ('lium-cvm images rm %s', then 'lium-cvm download %s')",
                name, name, name);
    return NULL;
  }
  return g_steal_pointer(&image);
}

/* ---- new: building the definition ---- */

static gboolean
build_definition(LcvmCli *cli, const char *name, const NewOptions *o, Definition *d, GError **error)
{
  g_autoptr(LcvmEnv) env = load_env(o, error);
  if (env == NULL)
    return FALSE;
  d->manifest = lcvm_manifest_new();
  LcvmManifest *m = d->manifest;
  m->name = g_strdup(name);
  if (!lcvm_env_apply(env, m, error))
    return FALSE;
  d->compose_path = compose_path(o, error);
  if (d->compose_path == NULL)
    return FALSE;
  g_autofree char *compose = compose_text(d->compose_path, env, error);
  if (compose == NULL ||
      !read_script("init script", "--init-script", o->init_script, "app/init_script.sh",
                   o->no_scripts, &d->init_script, error) ||
      !read_script("pre-launch script", "--pre-launch-script", o->pre_launch_script,
                   "app/pre_launch_script.sh", o->no_scripts, &d->pre_launch_script, error))
    return FALSE;

  m->image = g_strdup(o->image ? o->image : cli->config->default_image);
  g_autoptr(LcvmImage) image = find_image(cli, m->image, o->download, o->dry_run, error);
  if (image == NULL || !resolve_gpus(cli, m, error) ||
      !cli_attestation_gate(cli, m->image, image->digest, error))
    return FALSE;
  m->os_image_hash = g_strdup(image->digest);

  LcvmComposeInput input = { compose, d->init_script, d->pre_launch_script, o->enable_logs,
                             o->enable_sysinfo };
  d->app_compose = lcvm_compose_build(&input, &d->app_compose_len, error);
  if (d->app_compose == NULL)
    return FALSE;
  m->compose_hash = lcvm_compose_hash(d->app_compose, d->app_compose_len);
  d->user_config = lcvm_env_user_config(env, &d->user_config_len, error);
  d->notes = lcvm_parity_notes(env, m, d->init_script);
  m->created_at_ms = (guint64)(g_get_real_time() / 1000);
  return d->user_config != NULL && lcvm_manifest_validate(m, error) &&
         lcvm_manifest_check_limits(m, cli->config, error);
}

/* ---- new: writing it ---- */

static gboolean
write_files(int dirfd, const Definition *d, GError **error)
{
  mode_t mode = DEFINITION_FILE_MODE;
  if (!lcvm_write_file_atomic_at(dirfd, LCVM_APP_COMPOSE_FILE, d->app_compose, d->app_compose_len,
                                 mode, error) ||
      !lcvm_write_file_atomic_at(dirfd, LCVM_USER_CONFIG_FILE, d->user_config, d->user_config_len,
                                 mode, error))
    return FALSE;
  if (d->init_script != NULL &&
      !lcvm_write_file_atomic_at(dirfd, LCVM_INIT_SCRIPT_FILE, d->init_script,
                                 strlen(d->init_script), mode, error))
    return FALSE;
  if (d->pre_launch_script != NULL &&
      !lcvm_write_file_atomic_at(dirfd, LCVM_PRE_LAUNCH_SCRIPT_FILE, d->pre_launch_script,
                                 strlen(d->pre_launch_script), mode, error))
    return FALSE;
  /* The manifest last: a directory with a manifest is a complete definition. */
  return lcvm_manifest_write_at(dirfd, d->manifest, mode, error) &&
         (fchmod(dirfd, DEFINITION_DIR_MODE) == 0 || errno == EPERM) && fsync(dirfd) == 0;
}

static gboolean
errno_error(GError **error, const char *what, const char *path)
{
  int err = errno;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s %s: %s", what, path, g_strerror(err));
  return FALSE;
}

static gboolean
already_exists(GError **error, const LcvmCli *cli, const char *name)
{
  g_autofree char *vms = cli_vm_dir_path(cli);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
              "CVM '%s' already exists at %s/%s (remove it with 'lium-cvm rm %s' or choose "
              "another name)",
              name, vms, name, name);
  return FALSE;
}

/* Writes everything into vms/.NAME.new-XXXXXXXX, then renames it to vms/NAME without
 * replacing anything. On any failure the temporary directory is removed. */
static gboolean
commit_definition(const LcvmCli *cli, int vmsfd, const char *name, const Definition *d,
                  GError **error)
{
  g_autofree char *tmp = g_strdup_printf(".%s.new-%08x", name, g_random_int());
  g_autofree char *vms = cli_vm_dir_path(cli);
  if (mkdirat(vmsfd, tmp, 0700) < 0)
    return errno_error(error, "cannot create a directory in", vms);
  int dirfd = lcvm_open_dir_at(vmsfd, tmp, error);
  gboolean ok = dirfd >= 0 && write_files(dirfd, d, error);
  if (dirfd >= 0)
    close(dirfd);
  if (ok && renameat2(vmsfd, tmp, vmsfd, name, RENAME_NOREPLACE) < 0) {
    if (errno == EEXIST)
      already_exists(error, cli, name);
    else
      errno_error(error, "cannot create the definition in", vms);
    ok = FALSE;
  }
  if (!ok)
    lcvm_remove_tree_at(vmsfd, tmp, NULL);
  return ok && fsync(vmsfd) == 0;
}

/* ---- new: output ---- */

/* On stderr, so the summary stays what it was for scripts that read it. */
static void
print_notes(const Definition *d)
{
  for (guint i = 0; i < d->notes->len; i++)
    fprintf(stderr, "note: %s\n", (const char *)d->notes->pdata[i]);
}

static void
print_summary(const LcvmCli *cli, const NewOptions *o, const Definition *d, gboolean dry_run)
{
  const LcvmManifest *m = d->manifest;
  g_autofree char *vms = cli_vm_dir_path(cli);
  g_autofree char *memory = cli_vm_format_size(m->memory);
  g_autofree char *disk = cli_vm_format_size(m->disk);
  g_autofree char *devices = cli_vm_format_devices(m);
  g_autofree char *ports = cli_vm_format_ports(m->ports);
  printf("CVM configuration:\n");
  printf("  Name:              %s\n", m->name);
  printf("  Compose file:      %s\n", d->compose_path);
  printf("  Init script:       %s\n", d->init_script ? LCVM_INIT_SCRIPT_FILE : "none");
  printf("  Pre-launch script: %s\n", d->pre_launch_script ? LCVM_PRE_LAUNCH_SCRIPT_FILE : "none");
  printf("  vCPUs:             %u\n", m->vcpus);
  printf("  Memory:            %s\n", memory);
  printf("  Disk:              %s\n", disk);
  printf("  GPUs:              %s%s\n", devices,
         m->gpu_attach == LCVM_GPU_ATTACH_ALL ? " [all]" : "");
  printf("  Ports (host->guest, on %s): %s\n", LCVM_ENV_BIND_ADDRESS, ports);
  printf("  Hugepages:         %s\n", m->hugepages ? "yes" : "no");
  printf("  Pin to NUMA node:  %s\n", m->pin_numa ? "yes" : "no");
  printf("  Public logs:       %s\n", o->enable_logs ? "yes" : "no");
  printf("  Public sysinfo:    %s\n", o->enable_sysinfo ? "yes" : "no");
  printf("  OS image:          %s\n", m->image);
  printf("Compose hash:        %s\n", m->compose_hash);
  printf("OS image hash:       %s\n", m->os_image_hash);
  if (dry_run)
    printf("Dry run: nothing written (without --dry-run: %s/%s)\n", vms, m->name);
  else
    printf("CVM '%s' created at %s/%s; start it with 'lium-cvm run %s'\n", m->name, vms, m->name,
           m->name);
}

static void
print_new_json(const LcvmCli *cli, const Definition *d, gboolean dry_run)
{
  g_autoptr(JsonNode) node = cli_vm_manifest_node(d->manifest, NULL);
  JsonObject *o = json_node_get_object(node);
  g_autofree char *path = lcvm_layout_vm_dir(cli->config, d->manifest->name, NULL);
  json_object_set_string_member(o, "path", path);
  json_object_set_string_member(o, "compose_file", d->compose_path);
  json_object_set_boolean_member(o, "init_script", d->init_script != NULL);
  json_object_set_boolean_member(o, "pre_launch_script", d->pre_launch_script != NULL);
  json_object_set_boolean_member(o, "dry_run", dry_run);
  JsonArray *notes = json_array_new();
  for (guint i = 0; i < d->notes->len; i++)
    json_array_add_string_element(notes, d->notes->pdata[i]);
  json_object_set_array_member(o, "notes", notes);
  cli_print_json(node);
}

static const char new_description[] =
    "Creates the definition state_dir/vms/NAME from .env and the compose file:\n"
    "vm-manifest.json, app-compose.json (measured: its sha256 is the compose hash),\n"
    ".user-config and the scripts. The init and pre-launch scripts default to\n"
    "app/init_script.sh and app/pre_launch_script.sh; a missing one is an error\n"
    "(lium-cvm.sh always measures both) unless --no-scripts.";

/* --dry-run: what `new` would write, printed; nothing is written and NAME may exist (so a
 * caller can compare it with the definition in place: `lium-cvm show NAME`). */
static int
preview_vm(LcvmCli *cli, const char *name, const NewOptions *o)
{
  g_autoptr(GError) error = NULL;
  g_auto(Definition) d = { 0 };
  if (!build_definition(cli, name, o, &d, &error))
    return cli_fail(cli, error->domain == G_OPTION_ERROR ? CLI_EXIT_USAGE : CLI_EXIT_FAILED, error);
  if (cli->json) {
    print_new_json(cli, &d, TRUE);
    return CLI_EXIT_OK;
  }
  print_summary(cli, o, &d, TRUE);
  print_notes(&d);
  return CLI_EXIT_OK;
}

static int
create_vm(LcvmCli *cli, int vmsfd, const char *name, const NewOptions *o)
{
  g_autoptr(GError) error = NULL;
  g_auto(Definition) d = { 0 };
  if (cli_vm_exists(vmsfd, name)) {
    already_exists(&error, cli, name);
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  }
  if (!build_definition(cli, name, o, &d, &error))
    return cli_fail(cli, error->domain == G_OPTION_ERROR ? CLI_EXIT_USAGE : CLI_EXIT_FAILED, error);
  if (!commit_definition(cli, vmsfd, name, &d, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (cli->json) {
    print_new_json(cli, &d, FALSE);
  } else {
    print_summary(cli, o, &d, FALSE);
    print_notes(&d);
  }
  return CLI_EXIT_OK;
}

int
cmd_new(LcvmCli *cli, int argc, char **argv)
{
  g_auto(NewOptions) o = { 0 };
  const GOptionEntry entries[] = {
    { "env-file", 0, 0, G_OPTION_ARG_FILENAME, &o.env_file, "The .env file (default: ./.env)",
      "FILE" },
    { "env", 0, 0, G_OPTION_ARG_STRING, &o.environment,
      "Compose file by environment: local, staging or prod (default: prod → "
      "app/docker-compose.yml)",
      "ENV" },
    { "compose", 0, 0, G_OPTION_ARG_FILENAME, &o.compose, "The compose file (instead of --env)",
      "FILE" },
    { "init-script", 0, 0, G_OPTION_ARG_FILENAME, &o.init_script,
      "Init script (default: app/init_script.sh, which must exist)", "FILE" },
    { "pre-launch-script", 0, 0, G_OPTION_ARG_FILENAME, &o.pre_launch_script,
      "Pre-launch script (default: app/pre_launch_script.sh, which must exist)", "FILE" },
    { "no-scripts", 0, 0, G_OPTION_ARG_NONE, &o.no_scripts,
      "Measure no init or pre-launch script (a compose hash Lium never produces)", NULL },
    { "enable-logs", 0, 0, G_OPTION_ARG_NONE, &o.enable_logs,
      "public_logs: true (changes the compose hash)", NULL },
    { "enable-sysinfo", 0, 0, G_OPTION_ARG_NONE, &o.enable_sysinfo,
      "public_sysinfo and public_tcbinfo: true (changes the compose hash)", NULL },
    { "image", 0, 0, G_OPTION_ARG_STRING, &o.image,
      "OS image name (default: [images] default_image)", "NAME" },
    { "download", 0, 0, G_OPTION_ARG_NONE, &o.download,
      "Download the OS image without asking when it is missing (as 'lium-cvm download')", NULL },
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &o.dry_run,
      "Print the definition (with its compose hash) without writing anything; NAME may exist",
      NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "NAME", new_description))
    return CLI_EXIT_USAGE;
  if (argc != 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "give exactly one VM name (see 'lium-cvm new --help')");
  if (o.no_scripts && (o.init_script != NULL || o.pre_launch_script != NULL))
    return cli_failf(cli, CLI_EXIT_USAGE,
                     "--no-scripts cannot be combined with --init-script or --pre-launch-script");
  if (o.dry_run && o.download)
    return cli_failf(cli, CLI_EXIT_USAGE, "--dry-run downloads nothing: drop --download");
  g_autoptr(GError) error = NULL;
  if (!lcvm_vm_name_valid(argv[1], &error))
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  if (o.dry_run)
    return preview_vm(cli, argv[1], &o);
  int vmsfd = cli_vm_dir_open(cli, TRUE, &error);
  if (vmsfd < 0)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  int status = create_vm(cli, vmsfd, argv[1], &o);
  close(vmsfd);
  return status;
}
