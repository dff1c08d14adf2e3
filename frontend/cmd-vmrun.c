/* SPDX-License-Identifier: MIT */
/* Running VMs from the frontend: `run NAME [--attach]` (through the helper, each step
 * printed), `stop NAME [--timeout N] [--force]`, `status NAME`, `logs NAME [-f] [-n N]`, and
 * the live states `list` shows. The helper owns every running VM; this file only asks it and
 * reads what operators may read: the definition (state_dir/vms) and the console log
 * (state_dir/instances/NAME/serial.log, root:lium-cvm 0640). Detaching never stops a VM. */
#include "cli-client.h"
#include "cli-vm.h"
#include "lcvm-error.h"
#include "lcvm-layout.h"
#include "lcvm-names.h"
#include "lcvm-text.h"
#include "lcvm-validate.h"
#include "lcvm-vm-object.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define START_WAIT_S       120
#define FOLLOW_INTERVAL_US (200 * 1000)

/* ---- the Vm object ---- */

/* Every property of VM name's object; NULL with NOT_FOUND when the helper has none. */
static GVariant *
vm_properties(LcvmCli *cli, const char *name, GError **error)
{
  /* ListVms first: a helper that does not answer (with its hint) is told apart from one that
   * has no such VM. */
  g_auto(GStrv) known = cli_manager_list_vms(cli, error);
  if (known == NULL)
    return NULL;
  g_autofree char *path = lcvm_vm_object_path(name);
  GVariant *props = cli_properties(cli, path, LCVM_IFACE_VM, NULL);
  if (props == NULL)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND, "the helper has not run VM %s", name);
  return props;
}

static const char *
prop_str(GVariant *props, const char *key)
{
  const char *value = NULL;
  return g_variant_lookup(props, key, "&s", &value) ? value : "";
}

/* ---- run ---- */

typedef struct {
  GMainLoop *loop;
  char *state;
  gboolean timed_out;
} StateWatch;

static void
on_vm_changed(GVariant *changed, gpointer data)
{
  StateWatch *w = data;
  const char *state = NULL;
  if (g_variant_lookup(changed, "State", "&s", &state)) {
    g_free(w->state);
    w->state = g_strdup(state);
    if (!g_str_equal(state, LCVM_VM_STARTING))
      g_main_loop_quit(w->loop);
  }
}

static gboolean
on_start_timeout(gpointer data)
{
  StateWatch *w = data;
  w->timed_out = TRUE;
  g_main_loop_quit(w->loop);
  return G_SOURCE_REMOVE;
}

/* Waits (subscribed first, then read) until the VM leaves "starting"; returns its properties. */
static GVariant *
wait_started(LcvmCli *cli, const char *name, const char *path, GError **error)
{
  StateWatch w = { g_main_loop_new(NULL, FALSE), NULL, FALSE };
  guint watch = cli_properties_watch(cli, path, LCVM_IFACE_VM, on_vm_changed, &w);
  GVariant *props = vm_properties(cli, name, error);
  if (props != NULL && g_str_equal(prop_str(props, "State"), LCVM_VM_STARTING)) {
    guint timeout = g_timeout_add_seconds(START_WAIT_S, on_start_timeout, &w);
    g_main_loop_run(w.loop);
    if (!w.timed_out)
      g_source_remove(timeout);
    g_variant_unref(props);
    props = vm_properties(cli, name, error);
  }
  cli_properties_unwatch(cli, watch);
  g_main_loop_unref(w.loop);
  g_free(w.state);
  return props;
}

static void step(LcvmCli *cli, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
step(LcvmCli *cli, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (!cli->json)
    g_printerr("%s\n", text);
}

/* The definition's devices go to vfio-pci first (the helper refuses a start otherwise). */
static gboolean
prepare_devices(LcvmCli *cli, const LcvmManifest *m, GError **error)
{
  g_autoptr(GPtrArray) slots = g_ptr_array_new();
  for (guint i = 0; m->gpus[i] != NULL; i++)
    g_ptr_array_add(slots, m->gpus[i]);
  for (guint i = 0; m->nvswitches[i] != NULL; i++)
    g_ptr_array_add(slots, m->nvswitches[i]);
  if (slots->len == 0)
    return TRUE;
  g_ptr_array_add(slots, NULL);
  step(cli, "Loading the vfio modules");
  const char *modules[] = { "vfio", "vfio_pci", "vfio_iommu_type1", NULL };
  if (!cli_host_load_modules(cli, modules, FALSE, error))
    return FALSE;
  step(cli, "Binding %u device(s) to vfio-pci", slots->len - 1);
  return cli_host_bind_vfio(cli, (const char *const *)slots->pdata, error);
}

/* The guest asks the key provider for its sealing key while it boots (through its host-API
 * bridge): one that does not answer is started first. Without docker it cannot be, and the
 * VM starts anyway — it just cannot unlock a data disk. */
static gboolean
ensure_key_provider(LcvmCli *cli, const char *name, GError **error)
{
  const char *docker = cli->config->docker;
  if (docker == NULL || docker[0] == '\0' || !g_file_test(docker, G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr("warning: the key provider cannot be started: [tools] docker (%s) is not "
               "installed; VM %s starts, but it cannot get sealing keys (no data disk unlocks)\n",
               docker && docker[0] ? docker : "not set", name);
    return TRUE;
  }
  g_autoptr(GError) local = NULL;
  g_autoptr(GVariant) dict = cli_host_key_provider_status(cli, &local);
  if (dict == NULL) {
    g_printerr("warning: cannot check the key provider (%s); starting VM %s anyway\n",
               local->message, name);
    return TRUE;
  }
  gboolean answering = FALSE;
  if (g_variant_lookup(dict, "port_answering", "b", &answering) && answering)
    return TRUE;
  step(cli, "Starting the key provider (it does not answer)");
  if (!cli_host_start_key_provider(cli, error)) {
    g_prefix_error(error,
                   "the key provider could not be started, so VM %s would not get its "
                   "sealing keys (`lium-cvm key-provider status` says why): ",
                   name);
    return FALSE;
  }
  return TRUE;
}

static LcvmManifest *
load_definition(LcvmCli *cli, const char *name, GError **error)
{
  int vmsfd = cli_vm_dir_open(cli, FALSE, error);
  if (vmsfd < 0)
    return NULL;
  LcvmManifest *m = lcvm_manifest_load_vm(vmsfd, name, NULL, error);
  close(vmsfd);
  return m;
}

static char *
instance_log_path(LcvmCli *cli, const char *name)
{
  return lcvm_layout_instance_file(cli->config, name, LCVM_INSTANCE_SERIAL_LOG, NULL);
}

static int follow_log(LcvmCli *cli, const char *name, gint64 lines, gboolean follow);

static int
print_started(LcvmCli *cli, const char *name, GVariant *props)
{
  const char *state = prop_str(props, "State");
  if (cli->json) {
    g_autoptr(JsonNode) node = json_gvariant_serialize(props);
    cli_print_json(node);
  } else if (g_str_equal(state, LCVM_VM_RUNNING)) {
    guint pid = 0;
    g_variant_lookup(props, "Pid", "u", &pid);
    g_print("VM %s is running (QEMU pid %u); `lium-cvm logs %s -f` shows its console\n", name, pid,
            name);
  } else if (g_str_equal(state, LCVM_VM_STARTING)) {
    g_print("VM %s is still starting; `lium-cvm status %s` follows it\n", name, name);
  }
  if (g_str_equal(state, LCVM_VM_FAILED) || g_str_equal(state, LCVM_VM_STOPPED))
    return cli_failf(cli, CLI_EXIT_FAILED, "VM %s %s: %s", name, state,
                     *prop_str(props, "BootError") ? prop_str(props, "BootError")
                                                   : prop_str(props, "ExitStatus"));
  return CLI_EXIT_OK;
}

static int
run_vm(LcvmCli *cli, const char *name, gboolean attach)
{
  g_autoptr(GError) error = NULL;
  /* A definition this user cannot read is the helper's to judge (it answers NotAuthorized,
   * NotFound or why the definition is refused); only a readable one can name its GPUs. */
  g_autoptr(LcvmManifest) m = load_definition(cli, name, NULL);
  if (m != NULL && !prepare_devices(cli, m, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (!ensure_key_provider(cli, name, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  step(cli, "Starting VM %s", name);
  g_autofree char *path = cli_manager_start_vm(cli, name, &error);
  if (path == NULL)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  g_autoptr(GVariant) props = wait_started(cli, name, path, &error);
  if (props == NULL)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  int status = print_started(cli, name, props);
  if (status != CLI_EXIT_OK || !attach)
    return status;
  g_printerr("Attached to the console of %s; Ctrl-C detaches (the VM keeps running)\n", name);
  return follow_log(cli, name, -1, TRUE);
}

int
cli_vm_run(LcvmCli *cli, const char *name, gboolean attach)
{
  return run_vm(cli, name, attach);
}

/* ---- stop ---- */

/* Which step of the ladder ended QEMU, and how it ended. */
static int
print_stopped(LcvmCli *cli, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) props = vm_properties(cli, name, &error);
  if (props == NULL)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  const char *step = prop_str(props, "StopStep");
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, name);
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, prop_str(props, "State"));
    json_builder_set_member_name(b, "stop_step");
    json_builder_add_string_value(b, step);
    json_builder_set_member_name(b, "exit_status");
    json_builder_add_string_value(b, prop_str(props, "ExitStatus"));
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
  } else {
    g_print("VM %s stopped by step %s: %s\n", name, *step ? step : "-",
            prop_str(props, "ExitStatus"));
  }
  return CLI_EXIT_OK;
}

int
cmd_stop(LcvmCli *cli, int argc, char **argv)
{
  gint timeout = 0;
  gboolean force = FALSE;
  const GOptionEntry entries[] = {
    { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout,
      "Seconds the guest gets to power off after the guest agent's Shutdown, and again after "
      "the power button (default 30 each)",
      "N" },
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force,
      "Neither guest agent nor power button: terminate QEMU at once (SIGTERM, then SIGKILL)",
      NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "NAME",
                 "Stops a running VM: the guest agent's Shutdown (vsock port 8000), then the "
                 "ACPI power button, then SIGTERM and SIGKILL of QEMU, each when the one before "
                 "did not end it in time. Returns once QEMU is gone and its devices, ports and "
                 "loopback guard are released, and prints the step that ended it."))
    return CLI_EXIT_USAGE;
  g_autoptr(GError) error = NULL;
  if (argc != 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "usage: lium-cvm stop NAME [--timeout N] [--force]");
  if (!lcvm_vm_name_valid(argv[1], &error))
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  if (timeout < 0)
    return cli_failf(cli, CLI_EXIT_USAGE, "--timeout must be 0 or more seconds");
  if (!cli_manager_stop_vm(cli, argv[1], (guint32)timeout, force ? LCVM_STOP_FORCE : 0, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  return print_stopped(cli, argv[1]);
}

/* ---- status ---- */

static char *
format_uptime(guint64 started_at)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  guint64 s = now > (gint64)started_at ? (guint64)now - started_at : 0;
  return g_strdup_printf("%" G_GUINT64_FORMAT "d %02" G_GUINT64_FORMAT ":%02" G_GUINT64_FORMAT
                         ":%02" G_GUINT64_FORMAT,
                         s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
}

/* One "Label:  value" line; the value escaped for a terminal (guest and QEMU text among them). */
static void
field(LcvmCli *cli, const char *label, const char *value)
{
  g_autofree char *shown = cli_text_for_stdout(cli, value);
  printf("%-16s%s\n", label, shown);
}

/* A crash, loud: the helper never restarts the VM, the operator decides. The console's last
 * lines are the guest's text: escaped on a terminal like every field. */
static void
print_unexpected_exit(LcvmCli *cli, const char *name, GVariant *props)
{
  if (!*prop_str(props, "UnexpectedExit"))
    return;
  g_autofree char *what =
      g_strdup_printf("%s; not restarted (`lium-cvm logs %s` shows the console, "
                      "`lium-cvm run %s` starts it again)",
                      prop_str(props, "UnexpectedExit"), name, name);
  field(cli, "Unexpected:", what);
  g_autofree const char **lines = NULL;
  if (!g_variant_lookup(props, "ConsoleTail", "^a&s", &lines))
    return;
  for (guint i = 0; lines[i] != NULL; i++)
    field(cli, i == 0 ? "Console:" : "", lines[i]);
}

static void
print_status_text(LcvmCli *cli, const char *name, GVariant *props)
{
  guint pid = 0;
  guint64 started_at = 0;
  guint16 hostapi = 0;
  g_autofree const char **ports = NULL;
  g_autofree const char **gpus = NULL;
  g_variant_lookup(props, "Pid", "u", &pid);
  g_variant_lookup(props, "StartedAt", "t", &started_at);
  g_variant_lookup(props, "HostApiPort", "q", &hostapi);
  g_variant_lookup(props, "Ports", "^a&s", &ports);
  g_variant_lookup(props, "Gpus", "^a&s", &gpus);
  g_autofree char *forwards = ports && ports[0] ? g_strjoinv(", ", (char **)ports) : g_strdup("-");
  g_autofree char *devices = gpus && gpus[0] ? g_strjoinv(", ", (char **)gpus) : g_strdup("-");
  g_autofree char *uptime = pid ? format_uptime(started_at) : g_strdup("-");
  g_autofree char *pid_text = pid ? g_strdup_printf("%u", pid) : g_strdup("-");
  g_autofree char *port_text = g_strdup_printf("%u", hostapi);
  field(cli, "Name:", name);
  field(cli, "State:", prop_str(props, "State"));
  field(cli, "QEMU pid:", pid_text);
  field(cli, "Uptime:", uptime);
  field(cli, "Forwards:", forwards);
  field(cli, "GPUs:", devices);
  field(cli, "Host API port:", port_text);
  field(cli, "QEMU version:", prop_str(props, "QemuVersion"));
  field(cli, "Compose hash:", prop_str(props, "ComposeHash"));
  field(cli, "OS image hash:", prop_str(props, "OsImageHash"));
  field(cli, "Boot progress:", prop_str(props, "BootProgress"));
  if (*prop_str(props, "ExitStatus"))
    field(cli, "Exit:", prop_str(props, "ExitStatus"));
  if (*prop_str(props, "StopStep"))
    field(cli, "Stopped by:", prop_str(props, "StopStep"));
  print_unexpected_exit(cli, name, props);
  if (*prop_str(props, "BootError"))
    field(cli, "Error:", prop_str(props, "BootError"));
}

int
cmd_status(LcvmCli *cli, int argc, char **argv)
{
  const GOptionEntry entries[] = {
    { "raw", 0, 0, G_OPTION_ARG_NONE, &cli->raw,
      "Print the guest's text as it is, even to a terminal", NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "NAME",
                 "Shows a VM's live state as the helper sees it: state, QEMU pid, uptime, "
                 "forwards, boot progress and why it failed. On a terminal, control characters "
                 "in what the guest reported are shown escaped (\\xNN) unless --raw."))
    return CLI_EXIT_USAGE;
  g_autoptr(GError) error = NULL;
  if (argc != 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "usage: lium-cvm status NAME");
  if (!lcvm_vm_name_valid(argv[1], &error))
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  g_autoptr(GVariant) props = vm_properties(cli, argv[1], &error);
  if (props == NULL && g_error_matches(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND)) {
    g_autoptr(LcvmManifest) m = load_definition(cli, argv[1], NULL);
    if (m == NULL)
      return cli_failf(cli, CLI_EXIT_FAILED, "CVM '%s' not found (see 'lium-cvm list')", argv[1]);
    GVariantDict dict;
    g_variant_dict_init(&dict, NULL);
    g_variant_dict_insert(&dict, "Name", "s", argv[1]);
    g_variant_dict_insert(&dict, "State", "s", LCVM_VM_DEFINED);
    props = g_variant_ref_sink(g_variant_dict_end(&dict));
  } else if (props == NULL) {
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  }
  if (cli->json) {
    g_autoptr(JsonNode) node = json_gvariant_serialize(props);
    cli_print_json(node);
  } else {
    print_status_text(cli, argv[1], props);
  }
  return CLI_EXIT_OK;
}

/* ---- logs ---- */

static int
open_log(LcvmCli *cli, const char *name, GError **error)
{
  g_autofree char *path = instance_log_path(cli, name);
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int err = errno;
    g_set_error(error, LCVM_ERROR, err == ENOENT ? LCVM_ERROR_NOT_FOUND : LCVM_ERROR_FAILED,
                "cannot read %s: %s%s", path, g_strerror(err),
                err == EACCES   ? " (the console log is readable by group " LCVM_GROUP ")"
                : err == ENOENT ? " (the VM has not run yet)"
                                : "");
  }
  return fd;
}

/* Where the last `lines` lines start (0: the whole file when it has fewer; -1 lines: all). */
static off_t
tail_offset(int fd, gint64 lines)
{
  struct stat st;
  if (lines < 0 || fstat(fd, &st) < 0)
    return 0;
  if (lines == 0)
    return st.st_size;
  off_t pos = st.st_size;
  gint64 seen = 0;
  char buf[4096];
  while (pos > 0) {
    off_t chunk = MIN(pos, (off_t)sizeof buf);
    pos -= chunk;
    if (pread(fd, buf, chunk, pos) != chunk)
      return 0;
    for (off_t i = chunk - 1; i >= 0; i--) {
      /* The newline ending the last line does not start a line. */
      if (buf[i] != '\n' || pos + i == st.st_size - 1)
        continue;
      if (++seen == lines)
        return pos + i + 1;
    }
  }
  return 0;
}

/* How many of n bytes end before a trailing UTF-8 sequence that may still be incomplete (its
 * rest in the next read); n when there is none, 0 when it is all there is. */
static gsize
complete_prefix(const char *buf, gsize n)
{
  for (gsize back = 1; back <= 3 && back <= n; back++) {
    guchar c = (guchar)buf[n - back];
    if ((c & 0xc0) == 0x80)
      continue;
    gsize need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/* The console as the guest wrote it, or (escape) with its control sequences defused. */
static gboolean
write_out(const char *buf, gsize n, gboolean escape)
{
  if (!escape)
    return fwrite(buf, 1, n, stdout) == n;
  g_autoptr(GString) shown = g_string_sized_new(n);
  lcvm_text_append_for_tty(shown, buf, (gssize)n);
  return fwrite(shown->str, 1, shown->len, stdout) == shown->len;
}

static gboolean
copy_out(int fd, off_t *offset, gboolean escape)
{
  char buf[65536];
  ssize_t n;
  while ((n = pread(fd, buf, sizeof buf, *offset)) > 0) {
    gsize take = escape ? complete_prefix(buf, (gsize)n) : (gsize)n;
    if (take == 0)
      take = (gsize)n; /* only the unfinished character is left: shown as it is, escaped */
    if (!write_out(buf, take, escape))
      return FALSE;
    *offset += (off_t)take;
  }
  fflush(stdout);
  return n == 0;
}

/* A log that shrank was truncated, one with another inode was rotated: start over. */
static int
reopen_if_replaced(LcvmCli *cli, const char *name, int fd, off_t *offset)
{
  struct stat now, path_st;
  g_autofree char *path = instance_log_path(cli, name);
  if (fstat(fd, &now) == 0 && now.st_size < *offset)
    *offset = 0;
  if (lstat(path, &path_st) < 0 || (path_st.st_ino == now.st_ino && path_st.st_dev == now.st_dev))
    return fd;
  int fresh = open_log(cli, name, NULL);
  if (fresh < 0)
    return fd;
  close(fd);
  *offset = 0;
  return fresh;
}

static int
follow_log(LcvmCli *cli, const char *name, gint64 lines, gboolean follow)
{
  g_autoptr(GError) error = NULL;
  int fd = open_log(cli, name, &error);
  if (fd < 0)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  off_t offset = tail_offset(fd, lines);
  gboolean escape = cli_escapes_stdout(cli);
  gboolean ok = copy_out(fd, &offset, escape);
  while (ok && follow) {
    g_usleep(FOLLOW_INTERVAL_US);
    fd = reopen_if_replaced(cli, name, fd, &offset);
    ok = copy_out(fd, &offset, escape);
  }
  close(fd);
  return ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

int
cmd_logs(LcvmCli *cli, int argc, char **argv)
{
  gboolean follow = FALSE;
  gint lines = -1;
  const GOptionEntry entries[] = {
    { "follow", 'f', 0, G_OPTION_ARG_NONE, &follow, "Keep printing what the guest writes", NULL },
    { "lines", 'n', 0, G_OPTION_ARG_INT, &lines, "Print only the last N lines", "N" },
    { "raw", 0, 0, G_OPTION_ARG_NONE, &cli->raw,
      "Print the console's bytes as they are, even to a terminal", NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "NAME",
                 "Prints a VM's serial console log (state_dir/instances/NAME/serial.log, "
                 "readable by group " LCVM_GROUP "). Ctrl-C ends --follow; the VM keeps "
                 "running. On a terminal, control characters other than newline and tab are "
                 "shown escaped (\\xNN), so the guest cannot drive the terminal; --raw prints "
                 "the bytes."))
    return CLI_EXIT_USAGE;
  g_autoptr(GError) error = NULL;
  if (argc != 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "usage: lium-cvm logs NAME [-f] [-n N] [--raw]");
  if (!lcvm_vm_name_valid(argv[1], &error))
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  return follow_log(cli, argv[1], lines, follow);
}

/* ---- list ---- */

GHashTable *
cli_vm_live_properties(LcvmCli *cli)
{
  GHashTable *vms =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_variant_unref);
  g_auto(GStrv) paths = cli_manager_list_vms(cli, NULL);
  for (guint i = 0; paths != NULL && paths[i] != NULL; i++) {
    GVariant *props = cli_properties(cli, paths[i], LCVM_IFACE_VM, NULL);
    if (props != NULL)
      g_hash_table_insert(vms, g_strdup(prop_str(props, "Name")), props);
  }
  return vms;
}
