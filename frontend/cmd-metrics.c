/* SPDX-License-Identifier: MIT */
/* `lium-cvm metrics [--output FILE]`: the host, its GPUs, VMs, images and key provider as
 * Prometheus text (lcvm-prom), for node_exporter's textfile collector (the shipped
 * lium-cvm-metrics.timer writes it with --output, atomically) or any scraper. Everything comes
 * from what the other commands already read: the local host check, libpci and the helper's
 * GPU mode cache, the helper's Vm objects and KeyProviderStatus, the image store. Nothing here
 * changes anything or wakes a GPU (no QueryGpuMode). A part that cannot be read is missing from
 * the output (and its *_up gauge is 0); the command still succeeds. */
#include "cli-client.h"
#include "cli-vm.h"
#include "config.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-hostcheck.h"
#include "lcvm-image.h"
#include "lcvm-known-good.h"
#include "lcvm-names.h"
#include "lcvm-pci.h"
#include "lcvm-prom.h"
#include "lcvm-safe-io.h"
#include "lcvm-validate.h"
#include "lcvm-vm-object.h"
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#define KEY_PROVIDER_TIMEOUT_MS 300
#define OUTPUT_MODE             0644

static const LcvmCheckStatus check_statuses[] = { LCVM_CHECK_OK, LCVM_CHECK_WARN, LCVM_CHECK_FAIL,
                                                  LCVM_CHECK_UNKNOWN, LCVM_CHECK_SKIP };

static const char *
lookup_str(GVariant *dict, const char *key)
{
  const char *value = NULL;
  return dict != NULL && g_variant_lookup(dict, key, "&s", &value) ? value : "";
}

static double
lookup_bool(GVariant *dict, const char *key)
{
  gboolean value = FALSE;
  return dict != NULL && g_variant_lookup(dict, key, "b", &value) && value ? 1 : 0;
}

/* ---- the helper ---- */

static GVariant *
helper_info(LcvmCli *cli)
{
  return cli_host_get_info(cli, NULL);
}

static void
write_helper(LcvmProm *p, GVariant *info)
{
  lcvm_prom_family(p, "lium_cvm_helper_up", "gauge",
                   "1 when lium-cvm-helper answered on the system bus (io.lium.Cvm1)");
  lcvm_prom_sample(p, info ? 1 : 0, NULL);
  lcvm_prom_family(p, "lium_cvm_info", "gauge", "Versions of the lium-cvm frontend and helper");
  lcvm_prom_sample(p, 1, "version", LCVM_VERSION, "helper_version", lookup_str(info, "version"),
                   NULL);
}

/* ---- readiness ---- */

static void
write_checks(LcvmProm *p, const LcvmCheckReport *report)
{
  lcvm_prom_family(p, "lium_cvm_host_ready", "gauge",
                   "1 when no check of `lium-cvm check` failed (the host can run TDX VMs)");
  lcvm_prom_sample(p, lcvm_check_report_ready(report) ? 1 : 0, NULL);
  lcvm_prom_family(p, "lium_cvm_checks", "gauge", "Checks of `lium-cvm check` by status");
  for (guint i = 0; i < G_N_ELEMENTS(check_statuses); i++)
    lcvm_prom_sample(p, lcvm_check_report_count(report, check_statuses[i]), "status",
                     lcvm_check_status_name(check_statuses[i]), NULL);
  lcvm_prom_family(p, "lium_cvm_check_status", "gauge",
                   "One series per check id of `lium-cvm check`: 1 for its current status "
                   "(ok, warn, fail, unknown, skip), 0 for the others");
  for (guint i = 0; i < report->checks->len; i++) {
    const LcvmCheck *c = g_ptr_array_index(report->checks, i);
    for (guint s = 0; s < G_N_ELEMENTS(check_statuses); s++)
      lcvm_prom_sample(p, c->status == check_statuses[s] ? 1 : 0, "check", c->id, "status",
                       lcvm_check_status_name(check_statuses[s]), NULL);
  }
}

/* ---- GPUs ---- */

/* slot → the name of the VM whose QEMU may hold it (starting, running, stopping). */
static GHashTable *
gpus_held_by_vms(GHashTable *vms)
{
  GHashTable *held = g_hash_table_new(g_str_hash, g_str_equal);
  GHashTableIter it;
  gpointer name, props;
  g_hash_table_iter_init(&it, vms);
  while (g_hash_table_iter_next(&it, &name, &props)) {
    if (!lcvm_vm_state_is_live(lookup_str(props, "State")))
      continue;
    g_autofree const char **gpus = NULL;
    if (!g_variant_lookup(props, "Gpus", "^a&s", &gpus))
      continue;
    for (guint i = 0; gpus[i] != NULL; i++)
      g_hash_table_insert(held, (gpointer)gpus[i], name);
  }
  return held;
}

static void
write_gpu_devices(LcvmProm *p, const LcvmPciInventory *inv)
{
  lcvm_prom_family(p, "lium_cvm_gpu_info", "gauge", "NVIDIA GPUs and NVSwitches of the host");
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    lcvm_prom_sample(p, 1, "slot", d->slot, "kind", lcvm_pci_kind_name(d->kind), "model", d->model,
                     "arch", d->arch ? d->arch : "", NULL);
  }
  lcvm_prom_family(p, "lium_cvm_gpu_driver", "gauge",
                   "The kernel driver a device is bound to (driver=\"none\" when unbound)");
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    lcvm_prom_sample(p, 1, "slot", d->slot, "driver", d->state.driver ? d->state.driver : "none",
                     NULL);
  }
  lcvm_prom_family(p, "lium_cvm_gpu_vfio_ready", "gauge",
                   "1 when a device is bound to vfio-pci and has its vfio-dev node");
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    gboolean ready = g_strcmp0(d->state.driver, LCVM_VFIO_DRIVER) == 0 && d->state.vfio_dev;
    lcvm_prom_sample(p, ready ? 1 : 0, "slot", d->slot, NULL);
  }
}

static void
write_gpu_modes(LcvmProm *p, const LcvmPciInventory *inv, GHashTable *modes, gint64 now)
{
  lcvm_prom_family(p, "lium_cvm_gpu_mode", "gauge",
                   "CC and PPCIe mode of a device as the helper last queried it (cached in "
                   "gpu-modes.json; cc=\"unknown\" when never queried or broken)");
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    const LcvmGpuMode *m = g_hash_table_lookup(modes, d->slot);
    const char *cc = m && m->cc ? m->cc : "unknown";
    const char *ppcie = m && m->ppcie ? m->ppcie : "unknown";
    if (d->arch != NULL || m != NULL)
      lcvm_prom_sample(p, 1, "slot", d->slot, "kind", lcvm_pci_kind_name(d->kind), "cc", cc,
                       "ppcie", ppcie, NULL);
  }
  lcvm_prom_family(p, "lium_cvm_gpu_mode_age_seconds", "gauge",
                   "Seconds since the helper last queried a device's mode");
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    const LcvmGpuMode *m = g_hash_table_lookup(modes, d->slot);
    if (m != NULL)
      lcvm_prom_sample(p, (double)MAX(now - m->queried_at, 0), "slot", d->slot, NULL);
  }
}

static void
write_gpu_holders(LcvmProm *p, const LcvmPciInventory *inv, GHashTable *held)
{
  lcvm_prom_family(p, "lium_cvm_gpu_held_by_vm", "gauge",
                   "1 for the VM whose QEMU has a device (vm=\"\" and 0 when no VM has it)");
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    const char *vm = g_hash_table_lookup(held, d->slot);
    lcvm_prom_sample(p, vm ? 1 : 0, "slot", d->slot, "vm", vm ? vm : "", NULL);
  }
  lcvm_prom_family(p, "lium_cvm_gpu_open_processes", "gauge",
                   "Processes holding a device's nodes open (/dev/vfio, /dev/nvidia*)");
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    lcvm_prom_sample(p, d->holders->len, "slot", d->slot, NULL);
  }
}

static void
write_gpus(LcvmProm *p, LcvmCli *cli, GHashTable *vms)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(cli->config->sysfs_root, &error);
  lcvm_prom_family(p, "lium_cvm_gpus_up", "gauge",
                   "1 when the PCI devices could be read (libpci on sysfs)");
  lcvm_prom_sample(p, inv ? 1 : 0, NULL);
  if (inv == NULL) {
    g_printerr("lium-cvm metrics: no GPU metrics: %s\n", error->message);
    return;
  }
  lcvm_pci_find_holders(inv, cli->config->dev_root, cli->config->proc_root);
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_load(cli->config->state_dir, &error);
  if (modes == NULL) {
    g_printerr("lium-cvm metrics: no GPU modes: %s\n", error->message);
    modes = lcvm_gpu_modes_new();
  }
  g_autoptr(GHashTable) held = gpus_held_by_vms(vms);
  write_gpu_devices(p, inv);
  write_gpu_modes(p, inv, modes, g_get_real_time() / G_USEC_PER_SEC);
  write_gpu_holders(p, inv, held);
}

/* ---- VMs ---- */

static gint
compare_names(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

/* Every VM: the definitions (state "defined" unless the helper knows better) and the VMs the
 * helper knows, sorted. */
static GPtrArray *
vm_names(LcvmCli *cli, GHashTable *vms)
{
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  GHashTableIter it;
  gpointer name;
  g_hash_table_iter_init(&it, vms);
  while (g_hash_table_iter_next(&it, &name, NULL))
    g_ptr_array_add(names, g_strdup(name));
  int vmsfd = cli_vm_dir_open(cli, FALSE, NULL);
  DIR *dir = vmsfd >= 0 ? fdopendir(vmsfd) : NULL;
  for (struct dirent *e = dir ? readdir(dir) : NULL; e != NULL; e = readdir(dir))
    if (lcvm_vm_name_valid(e->d_name, NULL) && !g_hash_table_contains(vms, e->d_name))
      g_ptr_array_add(names, g_strdup(e->d_name));
  if (dir != NULL)
    closedir(dir);
  else if (vmsfd >= 0)
    close(vmsfd);
  g_ptr_array_sort(names, compare_names);
  return names;
}

static const char *const vm_states[] = { LCVM_VM_DEFINED,  LCVM_VM_STARTING, LCVM_VM_RUNNING,
                                         LCVM_VM_STOPPING, LCVM_VM_STOPPED,  LCVM_VM_FAILED };

static void
write_vm_states(LcvmProm *p, GPtrArray *names, GHashTable *vms)
{
  lcvm_prom_family(p, "lium_cvm_vm_state", "gauge",
                   "One series per VM and state (defined, starting, running, stopping, stopped, "
                   "failed): 1 for its current state");
  for (guint i = 0; i < names->len; i++) {
    GVariant *props = g_hash_table_lookup(vms, names->pdata[i]);
    const char *state = props ? lookup_str(props, "State") : LCVM_VM_DEFINED;
    for (guint s = 0; s < G_N_ELEMENTS(vm_states); s++)
      lcvm_prom_sample(p, g_str_equal(state, vm_states[s]) ? 1 : 0, "vm",
                       (const char *)names->pdata[i], "state", vm_states[s], NULL);
  }
  lcvm_prom_family(p, "lium_cvm_vm_up", "gauge", "1 when a VM's state is running");
  for (guint i = 0; i < names->len; i++) {
    GVariant *props = g_hash_table_lookup(vms, names->pdata[i]);
    lcvm_prom_sample(p, g_str_equal(lookup_str(props, "State"), LCVM_VM_RUNNING) ? 1 : 0, "vm",
                     (const char *)names->pdata[i], NULL);
  }
}

static void
write_vm_times(LcvmProm *p, GHashTable *vms, GPtrArray *names, gint64 now)
{
  lcvm_prom_family(p, "lium_cvm_vm_start_time_seconds", "gauge",
                   "Unix time a VM's QEMU started (VMs the helper has run)");
  for (guint i = 0; i < names->len; i++) {
    GVariant *props = g_hash_table_lookup(vms, names->pdata[i]);
    guint64 started = 0;
    if (props && g_variant_lookup(props, "StartedAt", "t", &started) && started > 0)
      lcvm_prom_sample(p, (double)started, "vm", (const char *)names->pdata[i], NULL);
  }
  lcvm_prom_family(p, "lium_cvm_vm_uptime_seconds", "gauge",
                   "Seconds since a live VM's QEMU started");
  for (guint i = 0; i < names->len; i++) {
    GVariant *props = g_hash_table_lookup(vms, names->pdata[i]);
    guint64 started = 0;
    if (props && lcvm_vm_state_is_live(lookup_str(props, "State")) &&
        g_variant_lookup(props, "StartedAt", "t", &started) && started > 0)
      lcvm_prom_sample(p, (double)MAX(now - (gint64)started, 0), "vm",
                       (const char *)names->pdata[i], NULL);
  }
}

/* Boot progress and errors come from the guest (its host-API Notify): lcvm-prom clips and
 * escapes them. */
static void
write_vm_boot(LcvmProm *p, GHashTable *vms, GPtrArray *names)
{
  lcvm_prom_family(p, "lium_cvm_vm_boot_progress", "gauge",
                   "The last boot progress a VM's guest reported (text in label progress)");
  for (guint i = 0; i < names->len; i++) {
    GVariant *props = g_hash_table_lookup(vms, names->pdata[i]);
    if (props != NULL)
      lcvm_prom_sample(p, 1, "vm", (const char *)names->pdata[i], "progress",
                       lookup_str(props, "BootProgress"), NULL);
  }
  lcvm_prom_family(p, "lium_cvm_vm_boot_error", "gauge",
                   "1 when the helper or the guest reported an error for a VM (BootError)");
  for (guint i = 0; i < names->len; i++) {
    GVariant *props = g_hash_table_lookup(vms, names->pdata[i]);
    if (props != NULL)
      lcvm_prom_sample(p, *lookup_str(props, "BootError") ? 1 : 0, "vm",
                       (const char *)names->pdata[i], NULL);
  }
  lcvm_prom_family(p, "lium_cvm_vm_unexpected_exit", "gauge",
                   "1 when a VM's QEMU ended without a stop request and without the guest saying "
                   "so (a crash, a signal, a guest panic; never restarted): its status says when");
  for (guint i = 0; i < names->len; i++) {
    GVariant *props = g_hash_table_lookup(vms, names->pdata[i]);
    if (props != NULL)
      lcvm_prom_sample(p, *lookup_str(props, "UnexpectedExit") ? 1 : 0, "vm",
                       (const char *)names->pdata[i], NULL);
  }
  lcvm_prom_family(p, "lium_cvm_vm_last_exit", "gauge",
                   "How a VM's QEMU last ended, as the helper saw it (powered off, terminated, "
                   "killed, exit status N, killed by signal N)");
  for (guint i = 0; i < names->len; i++) {
    GVariant *props = g_hash_table_lookup(vms, names->pdata[i]);
    if (props != NULL && *lookup_str(props, "ExitStatus"))
      lcvm_prom_sample(p, 1, "vm", (const char *)names->pdata[i], "exit_status",
                       lookup_str(props, "ExitStatus"), NULL);
  }
}

static void
write_vms(LcvmProm *p, LcvmCli *cli, GHashTable *vms)
{
  g_autoptr(GPtrArray) names = vm_names(cli, vms);
  write_vm_states(p, names, vms);
  write_vm_times(p, vms, names, g_get_real_time() / G_USEC_PER_SEC);
  write_vm_boot(p, vms, names);
}

/* ---- the key provider ---- */

static void
write_key_provider_containers(LcvmProm *p, GVariant *status)
{
  g_autoptr(GVariant) list = g_variant_lookup_value(status, "containers", G_VARIANT_TYPE("aa{sv}"));
  lcvm_prom_family(p, "lium_cvm_key_provider_container_running", "gauge",
                   "1 when a key provider container runs");
  for (gsize i = 0; list != NULL && i < g_variant_n_children(list); i++) {
    g_autoptr(GVariant) c = g_variant_get_child_value(list, i);
    lcvm_prom_sample(p, lookup_bool(c, "running"), "container", lookup_str(c, "name"), "service",
                     lookup_str(c, "service"), NULL);
  }
  lcvm_prom_family(p, "lium_cvm_key_provider_container_restarts", "gauge",
                   "Restart count docker reports for a key provider container");
  for (gsize i = 0; list != NULL && i < g_variant_n_children(list); i++) {
    g_autoptr(GVariant) c = g_variant_get_child_value(list, i);
    gint64 restarts = 0;
    g_variant_lookup(c, "restart_count", "x", &restarts);
    lcvm_prom_sample(p, (double)restarts, "container", lookup_str(c, "name"), NULL);
  }
}

/* Asked only when the helper answered GetInfo (helper_up): no second wait on a dead bus name. */
static void
write_key_provider(LcvmProm *p, LcvmCli *cli, gboolean helper_up)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) status = helper_up ? cli_host_key_provider_status(cli, &error) : NULL;
  lcvm_prom_family(p, "lium_cvm_key_provider_up", "gauge",
                   "1 when the helper reported the key provider's status (KeyProviderStatus)");
  lcvm_prom_sample(p, status ? 1 : 0, NULL);
  if (status == NULL) {
    g_printerr("lium-cvm metrics: no key provider metrics: %s\n",
               error ? error->message : "the helper does not answer");
    return;
  }
  static const struct {
    const char *key, *name, *help;
  } gauges[] = {
    { "ready", "lium_cvm_key_provider_ready",
      "1 when the key provider is ready for VMs (`lium-cvm key-provider status`)" },
    { "port_answering", "lium_cvm_key_provider_port_answering",
      "1 when the key provider's address accepts connections" },
    { "production_mode", "lium_cvm_key_provider_production_mode",
      "1 when the enclave's logs say PRODUCTION mode" },
    { "pin_matches", "lium_cvm_key_provider_pin_matches",
      "1 when the running images are the pinned ones" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(gauges); i++) {
    lcvm_prom_family(p, gauges[i].name, "gauge", gauges[i].help);
    lcvm_prom_sample(p, lookup_bool(status, gauges[i].key), NULL);
  }
  g_autoptr(GVariant) errors =
      g_variant_lookup_value(status, "enclave_errors", G_VARIANT_TYPE("as"));
  lcvm_prom_family(p, "lium_cvm_key_provider_enclave_errors", "gauge",
                   "Enclave errors in the key provider's recent logs");
  lcvm_prom_sample(p, errors ? g_variant_n_children(errors) : 0, NULL);
  write_key_provider_containers(p, status);
}

/* ---- images ---- */

/* Whether validators accept each image's digest, judged against the known-good list; no
 * values (and a note on stderr) when the list cannot be read: never a guess. */
static void
write_images_known_good(LcvmProm *p, LcvmCli *cli, GPtrArray *images)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmKnownGood) kg = lcvm_known_good_load(cli->config, &error);
  lcvm_prom_family(p, "lium_cvm_image_known_good", "gauge",
                   "1 when Lium's validators accept an OS image's digest (the known-good list), "
                   "0 when they will reject a VM booting it");
  if (kg == NULL) {
    g_printerr("lium-cvm metrics: no known-good metrics: %s\n", error->message);
    return;
  }
  for (guint i = 0; i < images->len; i++) {
    const LcvmImage *image = images->pdata[i];
    g_autofree char *reason = NULL;
    gboolean ok =
        image->digest != NULL && lcvm_known_good_image_ok(kg, image->name, image->digest, &reason);
    lcvm_prom_sample(p, ok ? 1 : 0, "image", image->name, NULL);
  }
}

static void
write_images(LcvmProm *p, LcvmCli *cli)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) images = lcvm_image_list(cli->config, &error);
  if (images == NULL) {
    g_printerr("lium-cvm metrics: no image metrics: %s\n", error->message);
    return;
  }
  lcvm_prom_family(p, "lium_cvm_image_info", "gauge",
                   "OS images in the store (state: verified, unverified or modified since "
                   "verified)");
  for (guint i = 0; i < images->len; i++) {
    const LcvmImage *image = images->pdata[i];
    lcvm_prom_sample(p, 1, "image", image->name, "version", image->version, "state",
                     lcvm_image_state_name(lcvm_image_state(image)), "digest",
                     image->digest ? image->digest : "", NULL);
  }
  write_images_known_good(p, cli, images);
}

/* ---- the command ---- */

static char *
collect(LcvmCli *cli)
{
  g_autoptr(LcvmProm) p = lcvm_prom_new();
  g_autoptr(GVariant) info = helper_info(cli);
  write_helper(p, info);

  g_autofree char *cache_dir = g_build_filename(g_get_user_cache_dir(), "lium-cvm", NULL);
  LcvmHostcheckOptions options = { .cache_dir = cache_dir,
                                   .connect_timeout_ms = KEY_PROVIDER_TIMEOUT_MS };
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmCheckReport) report = lcvm_hostcheck_run(cli->config, &options, &error);
  lcvm_prom_family(p, "lium_cvm_check_up", "gauge", "1 when `lium-cvm check` could run");
  lcvm_prom_sample(p, report ? 1 : 0, NULL);
  if (report != NULL)
    write_checks(p, report);
  else
    g_printerr("lium-cvm metrics: no readiness metrics: %s\n", error->message);

  g_autoptr(GHashTable) vms = info ? cli_vm_live_properties(cli) : g_hash_table_new(NULL, NULL);
  write_gpus(p, cli, vms);
  write_vms(p, cli, vms);
  write_key_provider(p, cli, info != NULL);
  write_images(p, cli);

  lcvm_prom_family(p, "lium_cvm_metrics_timestamp_seconds", "gauge",
                   "Unix time these metrics were collected");
  lcvm_prom_sample(p, (double)(g_get_real_time() / G_USEC_PER_SEC), NULL);
  return g_strdup(p->text->str);
}

static gboolean
write_output(const char *path, const char *text, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *name = g_path_get_basename(path);
  return lcvm_write_file_atomic(dir, name, text, strlen(text), OUTPUT_MODE, error);
}

int
cmd_metrics(LcvmCli *cli, int argc, char **argv)
{
  g_autofree char *output = NULL;
  const GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
      "Write to FILE atomically (a temporary file in its directory, then a rename; mode 0644) "
      "instead of stdout",
      "FILE" },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, NULL,
                 "Prints the host's readiness, GPUs, VMs, OS images and key provider in the\n"
                 "Prometheus text format. lium-cvm-metrics.timer writes it every minute into\n"
                 "node_exporter's textfile directory (/var/lib/prometheus/node-exporter)."))
    return CLI_EXIT_USAGE;
  if (argc > 1)
    return cli_failf(cli, CLI_EXIT_USAGE,
                     "metrics takes no arguments (see 'lium-cvm metrics "
                     "--help')");
  if (cli->json)
    return cli_failf(cli, CLI_EXIT_USAGE,
                     "metrics prints the Prometheus text format; it has no "
                     "--json (use 'lium-cvm check --json' and the others)");
  if (output != NULL && !g_str_has_suffix(output, ".prom"))
    return cli_failf(cli, CLI_EXIT_USAGE,
                     "--output %s: node_exporter's textfile collector reads only files ending "
                     "in .prom",
                     output);
  g_autofree char *text = collect(cli);
  if (output == NULL) {
    /* Labels carry guest text (boot progress): escaped on a terminal, not in --output. */
    g_autofree char *shown = cli_text_for_stdout(cli, text);
    fputs(shown, stdout);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
  }
  g_autoptr(GError) error = NULL;
  if (!write_output(output, text, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  return CLI_EXIT_OK;
}
