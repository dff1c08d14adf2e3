/* SPDX-License-Identifier: MIT */
/* The authorizer table: every method of the introspection XML has exactly one entry, the
 * entries name real actions of the .policy file, and unknown methods are refused. */
#include "helper-authorizer.h"
#include "lcvm-names.h"
#include <gio/gio.h>

static GDBusNodeInfo *
load_xml(void)
{
  g_autofree char *path =
      g_test_build_filename(G_TEST_DIST, "..", "..", "dbus", "io.lium.Cvm1.xml", NULL);
  g_autofree char *xml = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(path, &xml, NULL, &error));
  GDBusNodeInfo *node = g_dbus_node_info_new_for_xml(xml, &error);
  g_assert_no_error(error);
  return node;
}

static void
test_every_xml_method_has_a_rule(void)
{
  g_autoptr(GDBusNodeInfo) node = load_xml();
  guint methods = 0;
  for (guint i = 0; node->interfaces[i]; i++) {
    GDBusInterfaceInfo *iface = node->interfaces[i];
    for (guint m = 0; iface->methods && iface->methods[m]; m++) {
      methods++;
      if (helper_authorizer_lookup(iface->name, iface->methods[m]->name) == NULL)
        g_error("%s.%s has no authorizer entry", iface->name, iface->methods[m]->name);
    }
  }
  guint rules = 0;
  for (const HelperAuthRule *r = helper_authorizer_table(); r->interface; r++)
    rules++;
  /* no stale rule for a method that no longer exists */
  g_assert_cmpuint(rules, ==, methods);
}

static void
test_actions_exist_in_policy(void)
{
  g_autofree char *path =
      g_test_build_filename(G_TEST_DIST, "..", "..", "polkit", "io.lium.cvm1.policy", NULL);
  g_autofree char *policy = NULL;
  g_assert_true(g_file_get_contents(path, &policy, NULL, NULL));
  for (const HelperAuthRule *r = helper_authorizer_table(); r->interface; r++) {
    if (r->action == NULL)
      continue;
    g_autofree char *needle = g_strdup_printf("<action id=\"%s\">", r->action);
    if (strstr(policy, needle) == NULL)
      g_error("%s.%s uses %s, which the policy does not define", r->interface, r->method,
              r->action);
  }
}

static void
test_unknown_methods_are_not_in_table(void)
{
  g_assert_null(helper_authorizer_lookup(LCVM_IFACE_HOST, "RunCommand"));
  g_assert_null(helper_authorizer_lookup("org.freedesktop.DBus.Properties", "Set"));
  g_assert_null(helper_authorizer_lookup(LCVM_IFACE_HOST, "getinfo"));
  const HelperAuthRule *r = helper_authorizer_lookup(LCVM_IFACE_HOST, "LoadModules");
  g_assert_nonnull(r);
  g_assert_cmpstr(r->action, ==, LCVM_ACTION_MANAGE_DEVICES);
  r = helper_authorizer_lookup(LCVM_IFACE_HOST, "GetInfo");
  g_assert_nonnull(r);
  g_assert_null(r->action);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/authorizer/every_xml_method_has_a_rule", test_every_xml_method_has_a_rule);
  g_test_add_func("/authorizer/actions_exist_in_policy", test_actions_exist_in_policy);
  g_test_add_func("/authorizer/unknown_methods_are_not_in_table",
                  test_unknown_methods_are_not_in_table);
  return g_test_run();
}
