/* SPDX-License-Identifier: MIT */
/* The deep checks of `lium-cvm check --deep` (see the header). Each asks the helper one
 * question; a helper that cannot be asked makes the check "unknown" with the reason, never a
 * failure of the host. */
#include "cli-client.h"
#include "cmd-check-deep.h"
#include "cmd-check-quote.h"
#include "cmd-gpumode.h"
#include "lcvm-names.h"
#include "lcvm-pci.h"

GPtrArray *
cli_check_query_gpu_modes(LcvmCli *cli)
{
  GPtrArray *failures = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(cli->config->sysfs_root, NULL);
  if (inv == NULL)
    return failures;
  g_autoptr(GHashTable) cached = gpumode_cache_load(cli);
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = g_ptr_array_index(inv->devices, i);
    if (d->kind != LCVM_PCI_GPU || d->arch == NULL || g_hash_table_contains(cached, d->slot))
      continue;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) mode = cli_host_query_gpu_mode(cli, d->slot, &error);
    if (mode == NULL)
      g_ptr_array_add(failures, g_strdup_printf("%s\t%s", d->slot, error->message));
  }
  return failures;
}

static void
unknown_helper(LcvmCheck *c, const GError *error)
{
  lcvm_check_set(c, LCVM_CHECK_UNKNOWN, "cannot ask the helper: %s", error->message);
  lcvm_check_set_remedy(c, "make sure lium-cvm-helper runs (systemctl status lium-cvm-helper) "
                           "and that you are in the lium-cvm group");
}

static gboolean
lookup_bool(GVariant *dict, const char *key)
{
  gboolean v = FALSE;
  return g_variant_lookup(dict, key, "b", &v) && v;
}

static void
check_key_provider(LcvmCli *cli, LcvmCheckReport *report)
{
  LcvmCheck *c = lcvm_check_report_add(report, "keyprovider.status", "Key provider (helper)",
                                       "containers up on the pinned images, port answering, "
                                       "PRODUCTION mode, no enclave errors");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) dict = cli_host_key_provider_status(cli, &error);
  if (dict == NULL) {
    unknown_helper(c, error);
    return;
  }
  if (lookup_bool(dict, "ready")) {
    lcvm_check_set(c, LCVM_CHECK_OK, "ready");
    return;
  }
  g_autofree const char **problems = NULL;
  g_autofree char *text = NULL;
  if (g_variant_lookup(dict, "problems", "^a&s", &problems) && problems[0] != NULL)
    text = g_strjoinv("; ", (char **)problems);
  lcvm_check_set(c, LCVM_CHECK_FAIL, "not ready: %s", text ? text : "see its status");
  lcvm_check_set_remedy(c, "lium-cvm key-provider status shows why; lium-cvm key-provider start "
                           "starts it; lium-cvm key-provider logs shows its enclave's messages");
}

/* The guard as the helper sees it now: where guests may go, and running VMs without it. */
static void
report_guard(LcvmCheck *c, GVariant *info)
{
  g_autoptr(GVariant) guard = g_variant_lookup_value(info, "network-guard", G_VARIANT_TYPE_VARDICT);
  g_autofree const char **uplinks = NULL;
  g_autofree const char **allow = NULL;
  const char *problems = NULL;
  guint32 guarded = 0;
  if (guard == NULL || !g_variant_lookup(guard, "uplinks", "^a&s", &uplinks) ||
      !g_variant_lookup(guard, "guest-allow", "^a&s", &allow) ||
      !g_variant_lookup(guard, "problems", "&s", &problems) ||
      !g_variant_lookup(guard, "guarded-vms", "u", &guarded)) {
    lcvm_check_set(c, LCVM_CHECK_OK, "usable (the helper does not describe the rule set)");
    return;
  }
  if (problems[0] != '\0') {
    lcvm_check_set(c, LCVM_CHECK_FAIL, "%s", problems);
    lcvm_check_set_remedy(c, "restart that VM (lium-cvm stop NAME; lium-cvm run NAME) so the "
                             "helper installs its guard again");
    return;
  }
  g_autofree char *exceptions = allow[0] ? g_strjoinv(", ", (char **)allow) : g_strdup("none");
  if (uplinks[0] == NULL) {
    lcvm_check_set(c, LCVM_CHECK_WARN,
                   "usable, but the host has no default route: guests reach nothing outside "
                   "the host (exceptions: %s)",
                   exceptions);
    lcvm_check_set_remedy(c, "give the host a default route, then restart the VMs");
    return;
  }
  g_autofree char *out = g_strjoinv(", ", (char **)uplinks);
  g_autofree const char **resolvers = NULL;
  g_autofree char *dns = NULL;
  if (g_variant_lookup(guard, "refused-resolvers", "^a&s", &resolvers) && resolvers[0] != NULL) {
    g_autofree char *list = g_strjoinv(", ", (char **)resolvers);
    dns = g_strdup_printf("; the host's resolver %s is refused to guests (DNS through slirp): "
                          "list it in [network] guest_allow if guests use it",
                          list);
  }
  lcvm_check_set(c, LCVM_CHECK_OK,
                 "usable; guests reach only what routes out of %s (exceptions: %s); %u running "
                 "VM(s) guarded%s",
                 out, exceptions, guarded, dns ? dns : "");
}

static void
check_nftables(LcvmCli *cli, LcvmCheckReport *report)
{
  LcvmCheck *c = lcvm_check_report_add(report, "nftables.guard", "nftables (network guard)",
                                       "the kernel takes the per-VM network guard (nf_tables "
                                       "with the fib and reject expressions) and every running "
                                       "VM has it");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) info = cli_host_get_info(cli, &error);
  if (info == NULL) {
    unknown_helper(c, error);
    return;
  }
  g_autoptr(GVariant) caps = g_variant_lookup_value(info, "capabilities", G_VARIANT_TYPE("a{sb}"));
  gboolean usable = FALSE;
  if (caps == NULL || !g_variant_lookup(caps, "nftables", "b", &usable)) {
    lcvm_check_set(c, LCVM_CHECK_UNKNOWN, "the helper does not say (an older lium-cvm-helper)");
    return;
  }
  if (usable) {
    report_guard(c, info);
    return;
  }
  lcvm_check_set(c, LCVM_CHECK_FAIL, "the kernel refuses the guard's table: no VM can start");
  lcvm_check_set_remedy(c, "load nf_tables with the fib and reject expressions: sudo modprobe -a "
                           "nft_fib_inet nft_reject_inet (and list both in /etc/modules-load.d "
                           "to keep them)");
}

static void
add_query_failures(LcvmCheckReport *report, GPtrArray *failures)
{
  for (guint i = 0; failures != NULL && i < failures->len; i++) {
    g_auto(GStrv) parts = g_strsplit(failures->pdata[i], "\t", 2);
    g_autofree char *id = g_strdup_printf("gpu.%s.cc_mode_query", parts[0]);
    g_autofree char *title = g_strdup_printf("GPU %s CC mode query", parts[0]);
    LcvmCheck *c = lcvm_check_report_add(report, id, title, "the helper answers QueryGpuMode");
    lcvm_check_set(c, LCVM_CHECK_UNKNOWN, "%s", parts[1] ? parts[1] : "");
    lcvm_check_set_remedy(c, "lium-cvm lsgpu --query %s shows the error again", parts[0]);
  }
}

void
cli_check_deep(LcvmCli *cli, LcvmCheckReport *report, GPtrArray *query_failures)
{
  add_query_failures(report, query_failures);
  check_key_provider(cli, report);
  check_nftables(cli, report);
  cli_check_quote_path(cli, report);
}
