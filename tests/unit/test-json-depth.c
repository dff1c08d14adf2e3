/* lcvm_json_load_bounded: the nesting guard in front of json-glib, which recurses once per
 * level and would overflow the stack. Every hostile document here runs in this process: a
 * guard that lets one through crashes the test. */
#include "lcvm-json-depth.h"

#define DEEP (200 * 1000)

static gboolean
load(const char *text, gsize len, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  return lcvm_json_load_bounded(parser, text, (gssize)len, error);
}

/* prefix followed by DEEP '[' */
static char *
deep_after(const char *prefix, gsize *len)
{
  GString *s = g_string_new(prefix);
  for (guint i = 0; i < DEEP; i++)
    g_string_append_c(s, '[');
  *len = s->len;
  return g_string_free(s, FALSE);
}

static void
test_plain_documents_load(void)
{
  static const char *const ok[] = {
    "{\"event\": \"boot.progress\", \"payload\": \"a [[[ { \\\" ' /* # \"}",
    "[1, -2.5e+3, 1E2, true, false, null, \"x\"]\r\n",
    "{\"a\": {\"b\": [[[[{}]]]]}}",
    "{\"s\": \"caf\xc3\xa9\"}",
  };
  for (guint i = 0; i < G_N_ELEMENTS(ok); i++) {
    g_autoptr(GError) error = NULL;
    g_assert_true(load(ok[i], strlen(ok[i]), &error));
    g_assert_no_error(error);
  }
}

static void
test_nesting_past_the_limit_is_refused(void)
{
  gsize len = 0;
  g_autofree char *text = deep_after("", &len);
  g_autoptr(GError) error = NULL;
  g_assert_false(load(text, len, &error));
  g_assert_error(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE);
  g_assert_nonnull(strstr(error->message, "nested deeper than 64"));
}

static void
test_brackets_inside_strings_do_not_count(void)
{
  GString *s = g_string_new("{\"payload\": \"");
  for (guint i = 0; i < 1000; i++)
    g_string_append(s, "[{");
  g_string_append(s, "\\\"\"}");
  g_autoptr(GError) error = NULL;
  g_assert_true(load(s->str, s->len, &error));
  g_string_free(s, TRUE);
}

/* json-glib's scanner skips C comments and reads single-quoted strings: a '"' inside them
 * must not hide the brackets after it from the count. */
static void
test_a_quote_hidden_in_what_json_glib_skips_cannot_hide_nesting(void)
{
  static const char *const prefixes[] = { "/*\"*/", "//\"\n", "'\"'", "#\"\n", "[/*\"*/" };
  for (guint i = 0; i < G_N_ELEMENTS(prefixes); i++) {
    gsize len = 0;
    g_autofree char *text = deep_after(prefixes[i], &len);
    g_autoptr(GError) error = NULL;
    g_assert_false(load(text, len, &error));
    g_assert_error(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE);
  }
}

static void
test_comments_and_nul_bytes_are_not_json(void)
{
  static const char comment[] = "{\"a\": 1 /* c */}";
  static const char nul[] = "{\"a\": \"x\0\"}";
  g_autoptr(GError) error = NULL;
  g_assert_false(load(comment, sizeof comment - 1, &error));
  g_assert_nonnull(strstr(error->message, "not strict JSON"));
  g_clear_error(&error);
  g_assert_false(load(nul, sizeof nul - 1, &error));
  g_assert_nonnull(strstr(error->message, "not strict JSON"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/json-depth/plain_documents_load", test_plain_documents_load);
  g_test_add_func("/json-depth/nesting_past_the_limit_is_refused",
                  test_nesting_past_the_limit_is_refused);
  g_test_add_func("/json-depth/brackets_inside_strings_do_not_count",
                  test_brackets_inside_strings_do_not_count);
  g_test_add_func("/json-depth/a_quote_hidden_in_what_json_glib_skips_cannot_hide_nesting",
                  test_a_quote_hidden_in_what_json_glib_skips_cannot_hide_nesting);
  g_test_add_func("/json-depth/comments_and_nul_bytes_are_not_json",
                  test_comments_and_nul_bytes_are_not_json);
  return g_test_run();
}
