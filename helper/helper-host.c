/* SPDX-License-Identifier: MIT */
/* io.lium.Cvm1.Host: GetInfo and module loading, steps of the method table (helper-methods.c).
 * GetInfo answers at once in the main thread: everything it reads is cheap or cached. */
#include "config.h"
#include "helper-host.h"
#include "helper-modules.h"
#include "helper-nft.h"
#include "helper-vm.h"
#include <unistd.h>

/* Asked once per helper run: the dry run through libnftables costs milliseconds, GetInfo must
 * not, and whether the kernel takes the guard's rules does not change while the helper runs. */
static gboolean
nftables_usable(void)
{
  static int usable = -1;
  if (usable < 0)
    usable = helper_nft_usable(NULL) ? 1 : 0;
  return usable == 1;
}

static GVariant *
capabilities(HelperDaemon *d)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{sb}"));
  g_variant_builder_add(&b, "{sb}", "gpu-admin-tools",
                        d->config->gpu_admin_tools[0] != '\0' &&
                            access(d->config->gpu_admin_tools, R_OK) == 0);
  g_variant_builder_add(&b, "{sb}", "docker",
                        d->config->docker[0] != '\0' && access(d->config->docker, X_OK) == 0);
  g_variant_builder_add(&b, "{sb}", "journal", access("/run/systemd/journal/socket", W_OK) == 0);
  g_variant_builder_add(&b, "{sb}", "allow-no-tee", d->config->allow_no_tee);
  g_variant_builder_add(&b, "{sb}", "nftables", nftables_usable());
  return g_variant_builder_end(&b);
}

/* What the guest network guard lets guests reach now, and the running VMs whose chain is
 * missing or incomplete ("" when none). */
static GVariant *
network_guard(HelperDaemon *d)
{
  g_autoptr(HelperNftHost) host = helper_nft_host_read("/proc/net");
  g_auto(GStrv) live = helper_vms_live_names(d);
  g_autofree char *problems = helper_nft_guard_problems((const char *const *)live);
  const char *const none[] = { NULL };
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&b, "{sv}", "uplinks",
                        g_variant_new_strv((const char *const *)host->uplinks, -1));
  g_variant_builder_add(
      &b, "{sv}", "guest-allow",
      g_variant_new_strv(
          d->config->guest_allow ? (const char *const *)d->config->guest_allow : none, -1));
  g_variant_builder_add(&b, "{sv}", "guarded-vms", g_variant_new_uint32(g_strv_length(live)));
  g_variant_builder_add(&b, "{sv}", "problems", g_variant_new_string(problems ? problems : ""));
  g_auto(GStrv) resolvers = helper_nft_refused_resolvers(
      "/etc/resolv.conf", (const char *const *)d->config->guest_allow, host);
  g_variant_builder_add(&b, "{sv}", "refused-resolvers",
                        g_variant_new_strv((const char *const *)resolvers, -1));
  return g_variant_builder_end(&b);
}

/* What the method table says: interface, method and polkit action ("none": allowed to all). */
static GVariant *
methods(void)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a(sss)"));
  for (const HelperMethod *m = helper_methods(); m->interface != NULL; m++)
    g_variant_builder_add(&b, "(sss)", m->interface, m->method, m->action ? m->action : "none");
  return g_variant_builder_end(&b);
}

GVariant *
helper_host_get_info(HelperDaemon *d, gpointer data, GError **error)
{
  g_autoptr(GHashTable) summary = lcvm_config_summary(d->config);
  GVariantBuilder cfg;
  g_variant_builder_init(&cfg, G_VARIANT_TYPE("a{ss}"));
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, summary);
  while (g_hash_table_iter_next(&it, &k, &v))
    g_variant_builder_add(&cfg, "{ss}", (char *)k, (char *)v);

  GVariantBuilder info;
  g_variant_builder_init(&info, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&info, "{sv}", "version", g_variant_new_string(LCVM_VERSION));
  g_variant_builder_add(&info, "{sv}", "config", g_variant_builder_end(&cfg));
  g_variant_builder_add(&info, "{sv}", "capabilities", capabilities(d));
  g_variant_builder_add(&info, "{sv}", "methods", methods());
  g_variant_builder_add(&info, "{sv}", "network-guard", network_guard(d));
  return g_variant_new("(a{sv})", &info);
}

typedef struct {
  GStrv modules;
  guint64 flags;
} LoadModulesCall;

static void
load_modules_call_free(gpointer p)
{
  LoadModulesCall *c = p;
  g_strfreev(c->modules);
  g_free(c);
}

gboolean
helper_host_load_modules_validate(HelperCall *call, GError **error)
{
  g_autofree const char **modules = NULL;
  g_variant_get_child(call->args, 0, "^a&s", &modules);
  g_auto(GStrv) valid = helper_modules_validate(modules, error);
  if (valid == NULL)
    return FALSE;
  LoadModulesCall *c = g_new0(LoadModulesCall, 1);
  c->modules = g_steal_pointer(&valid);
  c->flags = call->flags;
  call->data = c;
  call->destroy = load_modules_call_free;
  return TRUE;
}

GVariant *
helper_host_load_modules(HelperDaemon *d, gpointer data, GError **error)
{
  LoadModulesCall *c = data;
  const char *const *mods = (const char *const *)c->modules;
  if (!helper_modules_load(d->config, mods, error))
    return NULL;
  if ((c->flags & HELPER_MODULES_PERSIST) && !helper_modules_persist(d->config, mods, error))
    return NULL;
  return g_variant_new("()");
}
