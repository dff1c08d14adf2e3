/* SPDX-License-Identifier: MIT */
/* The method table: every method of the introspection XML has exactly one row, the rows name
 * real actions of the .policy file, unknown methods are refused, and each row's flags argument
 * and allowed flags are those the XML documents ("flags: none (0)", "flags: 1 = persist …"). */
#include "api-xml.h"
#include "helper-dispatch.h"
#include "lcvm-error.h"
#include "lcvm-names.h"
#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

static void
test_every_xml_method_has_a_rule(void)
{
  g_autoptr(GDBusNodeInfo) node = api_xml_node();
  guint methods = 0;
  for (guint i = 0; node->interfaces[i]; i++) {
    GDBusInterfaceInfo *iface = node->interfaces[i];
    for (guint m = 0; iface->methods && iface->methods[m]; m++) {
      methods++;
      if (helper_method_lookup(iface->name, iface->methods[m]->name) == NULL)
        g_error("%s.%s has no authorizer entry", iface->name, iface->methods[m]->name);
    }
  }
  guint rules = 0;
  for (const HelperMethod *r = helper_methods(); r->interface; r++)
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
  for (const HelperMethod *r = helper_methods(); r->interface; r++) {
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
  g_assert_null(helper_method_lookup(LCVM_IFACE_HOST, "RunCommand"));
  g_assert_null(helper_method_lookup("org.freedesktop.DBus.Properties", "Set"));
  g_assert_null(helper_method_lookup(LCVM_IFACE_HOST, "getinfo"));
  const HelperMethod *r = helper_method_lookup(LCVM_IFACE_HOST, "LoadModules");
  g_assert_nonnull(r);
  g_assert_cmpstr(r->action, ==, LCVM_ACTION_MANAGE_DEVICES);
  r = helper_method_lookup(LCVM_IFACE_HOST, "GetInfo");
  g_assert_nonnull(r);
  g_assert_null(r->action);
}

/* The flags the XML's comment before <method name="NAME"> documents: "flags: none (0)" is 0,
 * "flags: 1 = persist …, 2 = …" the sum of the values; -1 when it documents none. */
static gint64
documented_flags(const char *xml, const char *name)
{
  g_autofree char *tag = g_strdup_printf("<method name=\"%s\">", name);
  const char *method = strstr(xml, tag);
  g_assert_nonnull(method);
  const char *comment = g_strrstr_len(xml, method - xml, "<!--");
  g_assert_nonnull(comment);
  g_autofree char *text = g_strndup(comment, method - comment);
  const char *flags = strstr(text, "flags:");
  if (flags == NULL)
    return -1;
  flags += strlen("flags:");
  while (*flags == ' ' || *flags == '\n')
    flags++;
  if (g_str_has_prefix(flags, "none (0)"))
    return 0;
  gint64 sum = 0;
  for (const char *p = flags; *p != '\0' && *p != '.'; p++) {
    if (!g_ascii_isdigit(*p) || (p > flags && g_ascii_isalnum(p[-1])))
      continue;
    char *end = NULL;
    guint64 value = g_ascii_strtoull(p, &end, 10);
    if (g_str_has_prefix(end, " = "))
      sum |= (gint64)value;
    p = end - 1;
  }
  g_assert_cmpint(sum, >, 0);
  return sum;
}

static void
test_flags_match_the_xml_documentation(void)
{
  g_autoptr(GDBusNodeInfo) node = api_xml_node();
  g_autofree char *xml = api_xml_text();
  guint with_flags = 0;
  for (guint i = 0; node->interfaces[i]; i++) {
    GDBusInterfaceInfo *iface = node->interfaces[i];
    for (guint m = 0; iface->methods && iface->methods[m]; m++) {
      GDBusMethodInfo *info = iface->methods[m];
      const HelperMethod *row = helper_method_lookup(iface->name, info->name);
      g_assert_nonnull(row);
      int flags_arg = -1;
      for (guint a = 0; info->in_args && info->in_args[a]; a++)
        if (g_str_equal(info->in_args[a]->name, "flags")) {
          g_assert_cmpstr(info->in_args[a]->signature, ==, "t");
          flags_arg = (int)a;
        }
      if (row->flags_arg != flags_arg)
        g_error("%s.%s: the table's flags argument is %d, the XML's %d", iface->name, info->name,
                row->flags_arg, flags_arg);
      gint64 documented = documented_flags(xml, info->name);
      if (flags_arg < 0) {
        g_assert_cmpint(documented, ==, -1);
        g_assert_cmpuint(row->flags, ==, 0);
        continue;
      }
      with_flags++;
      if (documented < 0)
        g_error("%s.%s takes flags but its XML comment does not document them", iface->name,
                info->name);
      if ((gint64)row->flags != documented)
        g_error("%s.%s allows flags 0x%" G_GINT64_MODIFIER
                "x, its XML documents 0x%" G_GINT64_MODIFIER "x",
                iface->name, info->name, row->flags, (guint64)documented);
    }
  }
  g_assert_cmpuint(with_flags, >=, 10);
}

static void
test_unknown_flags_are_refused_naming_them(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_flags_check(0, 0, &error));
  g_assert_true(helper_flags_check(1, 1, &error));
  g_assert_false(helper_flags_check(2, 0, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr(error->message, ==, "unknown flags 0x2 (none are defined; send 0)");
  g_clear_error(&error);
  /* LoadModules: only 1 = persist */
  const HelperMethod *r = helper_method_lookup(LCVM_IFACE_HOST, "LoadModules");
  g_assert_false(helper_flags_check(3, r->flags, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr(error->message, ==, "unknown flags 0x2 (defined: 0x1; send 0 for none)");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/authorizer/every_xml_method_has_a_rule", test_every_xml_method_has_a_rule);
  g_test_add_func("/authorizer/actions_exist_in_policy", test_actions_exist_in_policy);
  g_test_add_func("/authorizer/unknown_methods_are_not_in_table",
                  test_unknown_methods_are_not_in_table);
  g_test_add_func("/authorizer/flags_match_the_xml_documentation",
                  test_flags_match_the_xml_documentation);
  g_test_add_func("/authorizer/unknown_flags_are_refused_naming_them",
                  test_unknown_flags_are_refused_naming_them);
  return g_test_run();
}
