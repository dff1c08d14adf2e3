/* SPDX-License-Identifier: MIT */
/* dstack's client.conf read as Python's configparser reads it (dstack.py), including the
 * inputs a careless or hostile edit produces. */
#include "lcvm-client-conf.h"

static void
registry_is_the_stripped_value_of_docker_registry(void)
{
  g_autofree char *r = lcvm_client_conf_docker_registry(
      "[qemu]\npath = /q\n[docker]\nregistry =  reg.example:5000 \n");
  g_assert_cmpstr(r, ==, "reg.example:5000");
}

static void
registry_keeps_quotes_and_inline_comments_as_configparser_does(void)
{
  g_autofree char *q = lcvm_client_conf_docker_registry("[docker]\nregistry = \"r.io\"\n");
  g_assert_cmpstr(q, ==, "\"r.io\"");
  g_autofree char *c = lcvm_client_conf_docker_registry("[docker]\nregistry = r.io # mirror\n");
  g_assert_cmpstr(c, ==, "r.io # mirror");
}

static void
registry_colon_separator_and_key_case(void)
{
  g_autofree char *r = lcvm_client_conf_docker_registry("[docker]\nRegistry: http://r:5000/x\n");
  /* The first ':' or '=' separates: the value keeps its own colons. */
  g_assert_cmpstr(r, ==, "http://r:5000/x");
}

static void
registry_absent_empty_or_in_another_section_is_null(void)
{
  const char *cases[] = {
    "",
    "[docker]\n",
    "[docker]\nregistry =\n",
    "[docker]\n# registry = commented\n; registry = also\n",
    "[Docker]\nregistry = wrong-case-section\n",
    "registry = before-any-section\n[docker]\n",
    "[image]\nregistry = elsewhere\n",
    "[docker\nregistry = broken-header\n",
    "[]\nregistry = empty-header\n",
    "[DEFAULT]\nregistry = no-docker-section\n",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *r = lcvm_client_conf_docker_registry(cases[i]);
    g_assert_null(r);
  }
}

static void
registry_last_assignment_and_sections_win(void)
{
  g_autofree char *r = lcvm_client_conf_docker_registry(
      "[docker]\nregistry = a\n[qemu]\npath=/q\n[docker]\nregistry = b\n");
  g_assert_cmpstr(r, ==, "b");
}

static void
registry_from_default_when_docker_has_none(void)
{
  g_autofree char *r =
      lcvm_client_conf_docker_registry("[DEFAULT]\nregistry = d\n[docker]\nother = 1\n");
  g_assert_cmpstr(r, ==, "d");
  g_autofree char *own =
      lcvm_client_conf_docker_registry("[DEFAULT]\nregistry = d\n[docker]\nregistry = own\n");
  g_assert_cmpstr(own, ==, "own");
}

static void
continuation_lines_join_with_newlines(void)
{
  g_autofree char *r =
      lcvm_client_conf_docker_registry("[docker]\nregistry = a\n  b\n\tc\nx = 1\n");
  g_assert_cmpstr(r, ==, "a\nb\nc");
  /* An indented line after another key does not continue the registry. */
  g_autofree char *s = lcvm_client_conf_docker_registry("[docker]\nregistry = a\nx = 1\n  b\n");
  g_assert_cmpstr(s, ==, "a");
}

static void
hostile_bytes_do_not_break_the_parser(void)
{
  /* CRs, NULs cut the text (C string), control characters, huge lines, lone brackets. */
  g_autofree char *crlf = lcvm_client_conf_docker_registry("[docker]\r\nregistry = r\r\n");
  g_assert_cmpstr(crlf, ==, "r");
  g_autoptr(GString) big = g_string_new("[docker]\nregistry = ");
  for (int i = 0; i < 100000; i++)
    g_string_append_c(big, 'x');
  g_string_append(big, "\n]]]\n[[[\n=\n:\n");
  g_autofree char *r = lcvm_client_conf_docker_registry(big->str);
  g_assert_cmpuint(strlen(r), ==, 100000);
  g_autofree char *ctl = lcvm_client_conf_docker_registry("[docker]\nregistry = a\x01\x1b[0mb\n");
  g_assert_cmpstr(ctl, ==, "a\x01\x1b[0mb");
  g_autofree char *noeq = lcvm_client_conf_docker_registry("[docker]\nregistry\n");
  g_assert_null(noeq);
}

static void
qemu_path_uses_the_same_parser_and_strips_one_pair_of_quotes(void)
{
  g_autofree char *p = lcvm_client_conf_get("[qemu]\nPATH: '/opt/q'\n", "qemu", "path");
  g_assert_cmpstr(p, ==, "'/opt/q'");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/client-conf/registry-is-the-stripped-value",
                  registry_is_the_stripped_value_of_docker_registry);
  g_test_add_func("/client-conf/registry-keeps-quotes-and-inline-comments",
                  registry_keeps_quotes_and_inline_comments_as_configparser_does);
  g_test_add_func("/client-conf/registry-colon-separator-and-key-case",
                  registry_colon_separator_and_key_case);
  g_test_add_func("/client-conf/registry-absent-empty-or-elsewhere-is-null",
                  registry_absent_empty_or_in_another_section_is_null);
  g_test_add_func("/client-conf/registry-last-assignment-wins",
                  registry_last_assignment_and_sections_win);
  g_test_add_func("/client-conf/registry-from-default", registry_from_default_when_docker_has_none);
  g_test_add_func("/client-conf/continuation-lines", continuation_lines_join_with_newlines);
  g_test_add_func("/client-conf/hostile-bytes", hostile_bytes_do_not_break_the_parser);
  g_test_add_func("/client-conf/qemu-path-same-parser",
                  qemu_path_uses_the_same_parser_and_strips_one_pair_of_quotes);
  return g_test_run();
}
