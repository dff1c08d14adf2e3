/* SPDX-License-Identifier: MIT */
/* dbus/io.lium.Cvm1.xml, the API both the helper's method table and the frontend's client
 * table are checked against: its text and its parsed node (test-authorizer.c, test-client.c). */
#pragma once
#include <gio/gio.h>

G_GNUC_UNUSED G_GNUC_NO_INLINE static char *
api_xml_text(void)
{
  g_autofree char *path =
      g_test_build_filename(G_TEST_DIST, "..", "..", "dbus", "io.lium.Cvm1.xml", NULL);
  char *xml = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(path, &xml, NULL, &error));
  return xml;
}

G_GNUC_UNUSED G_GNUC_NO_INLINE static GDBusNodeInfo *
api_xml_node(void)
{
  g_autofree char *xml = api_xml_text();
  g_autoptr(GError) error = NULL;
  GDBusNodeInfo *node = g_dbus_node_info_new_for_xml(xml, &error);
  g_assert_no_error(error);
  return node;
}
