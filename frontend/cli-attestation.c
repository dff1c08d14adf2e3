/* SPDX-License-Identifier: MIT */
/* The known-good gate of `new` and `run` (see the header). */
#include "cli-attestation.h"
#include "cli-vm.h"
#include "lcvm-error.h"
#include "lcvm-hostcheck.h"
#include "lcvm-known-good.h"
#include <stdio.h>
#include <unistd.h>

static void
warn(LcvmCli *cli, const char *message)
{
  if (!cli->json) {
    fprintf(stderr, "warning: %s\n", message);
    return;
  }
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "warning");
  json_builder_add_string_value(b, message);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *line = json_to_string(root, FALSE);
  fprintf(stderr, "%s\n", line);
}

/* The reason validators will reject the QEMU, or NULL; *note: what is only worth a warning (a
 * distribution's build of an accepted version, or a QEMU that cannot be asked). */
static char *
qemu_problem(LcvmCli *cli, const LcvmKnownGood *kg, char **note)
{
  g_autofree char *cache_dir = g_build_filename(g_get_user_cache_dir(), "lium-cvm", NULL);
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = lcvm_hostcheck_qemu_version_line(cli->config, cache_dir, &path, &error);
  LcvmQemuVersion v;
  if (line == NULL || !lcvm_qemu_version_parse(line, &v, &error)) {
    *note = g_strdup_printf("cannot tell whether validators accept the QEMU VMs run: %s",
                            error->message);
    return NULL;
  }
  char *reason = NULL;
  if (lcvm_known_good_qemu(kg, &v, &reason) == LCVM_KNOWN_GOOD_REJECTED)
    return reason;
  *note = reason;
  return NULL;
}

gboolean
cli_attestation_gate(LcvmCli *cli, const char *image, const char *digest, GError **error)
{
  gboolean enforce = cli->config->attestation_enforce;
  g_autoptr(GError) local = NULL;
  g_autoptr(LcvmKnownGood) kg = lcvm_known_good_load(cli->config, &local);
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
  if (kg == NULL) {
    g_ptr_array_add(problems,
                    g_strdup_printf("%s; what validators accept is unknown", local->message));
  } else {
    char *reason = NULL;
    if (!lcvm_known_good_image_ok(kg, image, digest, &reason))
      g_ptr_array_add(problems, reason);
    g_autofree char *note = NULL;
    char *qemu = qemu_problem(cli, kg, &note);
    if (qemu != NULL)
      g_ptr_array_add(problems, qemu);
    if (note != NULL)
      warn(cli, note);
  }
  if (problems->len == 0)
    return TRUE;
  if (!enforce) {
    for (guint i = 0; i < problems->len; i++)
      warn(cli, problems->pdata[i]);
    return TRUE;
  }
  g_ptr_array_add(problems, NULL);
  g_autofree char *all = g_strjoinv("; ", (char **)problems->pdata);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "refused because [attestation] enforce=true: %s (set enforce=false in "
              "lium-cvm.conf to go ahead anyway)",
              all);
  return FALSE;
}

char *
cli_attestation_qemu_expected(LcvmCli *cli)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmKnownGood) kg = lcvm_known_good_load(cli->config, &error);
  if (kg == NULL)
    return g_strdup_printf("unknown (%s)", error->message);
  g_autofree char *list = g_strjoinv(", ", kg->qemu_versions);
  return g_strdup_printf("%s%s", list, kg->qemu_distro_ok ? "" : " (not a distribution's package)");
}

gboolean
cli_attestation_gate_vm(LcvmCli *cli, const char *name, GError **error)
{
  int vmsfd = cli_vm_dir_open(cli, FALSE, NULL);
  if (vmsfd < 0)
    return TRUE;
  g_autoptr(LcvmManifest) m = lcvm_manifest_load_vm(vmsfd, name, NULL, NULL);
  close(vmsfd);
  return m == NULL || cli_attestation_gate(cli, m->image, m->os_image_hash, error);
}
