/* SPDX-License-Identifier: MIT */
/* The definitions directory and the display of a definition (see cli-vm.h). */
#include "cli-vm.h"
#include "lcvm-error.h"
#include "lcvm-json-depth.h"
#include "lcvm-layout.h"
#include "lcvm-safe-io.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFINITIONS_DIR_MODE 02770

char *
cli_vm_dir_path(const LcvmCli *cli)
{
  return lcvm_layout_vms_dir(cli->config);
}

/* Opens state_dir/vms; with create, makes it when the state directory exists but it does not. */
int
cli_vm_dir_open(const LcvmCli *cli, gboolean create, GError **error)
{
  g_autofree char *path = cli_vm_dir_path(cli);
  if (create && mkdir(path, DEFINITIONS_DIR_MODE) == 0) {
    /* mkdir drops the setgid bit and applies the umask; other operators must write here. */
    chmod(path, DEFINITIONS_DIR_MODE);
  } else if (create && errno != EEXIST) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "cannot create the definitions directory %s: %s (the state directory %s comes "
                "with the package: run systemd-tmpfiles --create)",
                path, g_strerror(errno), cli->config->state_dir);
    return -1;
  }
  g_autoptr(GError) local = NULL;
  int fd = lcvm_open_dir_at(AT_FDCWD, path, &local);
  if (fd < 0)
    g_set_error(error, LCVM_ERROR,
                g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ? LCVM_ERROR_NOT_FOUND
                                                                         : LCVM_ERROR_FAILED,
                "%s: %s", path, local->message);
  return fd;
}

char *
cli_vm_format_size(guint64 bytes)
{
  if (bytes % (G_GUINT64_CONSTANT(1) << 30) == 0)
    return g_strdup_printf("%" G_GUINT64_FORMAT "G", bytes >> 30);
  return g_strdup_printf("%" G_GUINT64_FORMAT "M", bytes >> 20);
}

/* "2200->22, 8001, 19001-19003": identity forwards on consecutive ports become ranges. */
char *
cli_vm_format_ports(const GArray *ports)
{
  g_autoptr(GString) out = g_string_new(NULL);
  for (guint i = 0; i < ports->len;) {
    const LcvmPortForward *p = &g_array_index(ports, LcvmPortForward, i);
    guint j = i + 1;
    while (p->host_port == p->guest_port && j < ports->len) {
      const LcvmPortForward *q = &g_array_index(ports, LcvmPortForward, j);
      if (q->host_port != q->guest_port || q->host_port != p->host_port + (j - i) ||
          q->protocol != p->protocol)
        break;
      j++;
    }
    if (out->len > 0)
      g_string_append(out, ", ");
    if (p->host_port != p->guest_port)
      g_string_append_printf(out, "%u->%u", p->host_port, p->guest_port);
    else if (j - i > 1)
      g_string_append_printf(out, "%u-%u", p->host_port, p->host_port + (j - i - 1));
    else
      g_string_append_printf(out, "%u", p->host_port);
    if (p->protocol == LCVM_PROTOCOL_UDP)
      g_string_append(out, "/udp");
    i = j;
  }
  return g_string_free(g_steal_pointer(&out), FALSE);
}

char *
cli_vm_format_devices(const LcvmManifest *m)
{
  guint gpus = g_strv_length(m->gpus), switches = g_strv_length(m->nvswitches);
  if (gpus == 0 && switches == 0)
    return g_strdup("none");
  g_autofree char *list = g_strjoinv(", ", m->gpus);
  if (switches == 0)
    return g_strdup_printf("%u (%s)", gpus, list);
  g_autofree char *sw = g_strjoinv(", ", m->nvswitches);
  return g_strdup_printf("%u (%s) + %u NVSwitch%s (%s)", gpus, list, switches,
                         switches == 1 ? "" : "es", sw);
}

/* The manifest as the JSON object the commands print. */
JsonNode *
cli_vm_manifest_node(const LcvmManifest *m, GError **error)
{
  g_autofree char *text = lcvm_manifest_to_json(m, NULL, error);
  return text ? lcvm_json_parse_bounded(text, -1, error) : NULL;
}

/* Reads yes/no from the terminal; FALSE when stdin is not one. */
gboolean
cli_confirm(const char *question)
{
  if (!isatty(STDIN_FILENO))
    return FALSE;
  printf("%s [y/N] ", question);
  fflush(stdout);
  char answer[16] = "";
  if (fgets(answer, sizeof answer, stdin) == NULL)
    return FALSE;
  return answer[0] == 'y' || answer[0] == 'Y';
}

gboolean
cli_vm_exists(int vmsfd, const char *name)
{
  struct stat st;
  return fstatat(vmsfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}
