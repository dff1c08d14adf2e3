/* SPDX-License-Identifier: MIT */
/* lcvm_json_load_bounded: the guard in front of json-glib — nesting (json-glib recurses once
 * per level and would overflow the stack), one object or array per document (json-glib 1.6
 * leaks every value after the first), strings valid UTF-8 (json-glib decodes a lone surrogate
 * into bytes GVariant refuses), error texts valid UTF-8 — and the typed member getters. Every
 * hostile document here runs in this process: a guard that lets one through crashes the test
 * (G_DEBUG=fatal-criticals turns a critical into an abort). */
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
  /* json-glib would end the C string at the escape and drop the rest without a word. */
  g_clear_error(&error);
  static const char nul_escape[] = "{\"a\": \"x\\u0000y\"}";
  static const char escaped_backslash[] = "{\"a\": \"x\\\\u0000y\"}";
  g_assert_false(load(nul_escape, sizeof nul_escape - 1, &error));
  g_assert_nonnull(strstr(error->message, "\\u0000"));
  g_clear_error(&error);
  g_assert_true(load(escaped_backslash, sizeof escaped_backslash - 1, &error));
}

static void
assert_refused(const char *text, gsize len, const char *why)
{
  g_autoptr(GError) error = NULL;
  g_assert_false(load(text, len, &error));
  g_assert_nonnull(error);
  g_assert_true(g_utf8_validate(error->message, -1, NULL));
  if (strstr(error->message, why) == NULL)
    g_error("'%s' not in: %s", why, error->message);
}

/* Found by fuzzing: a guest grew its bridge by 500 MiB with bodies of many values. */
static void
test_anything_after_the_first_value_is_refused(void)
{
  static const char *const texts[] = { "{}[]", "{\"a\": 1} {\"b\": 2}", "[1]\n[2]\n", "{}x", "[]]",
                                       "{}}" };
  for (guint i = 0; i < G_N_ELEMENTS(texts); i++)
    assert_refused(texts[i], strlen(texts[i]), "more after its first JSON value");
  g_autoptr(GError) error = NULL;
  g_assert_true(load("  {}\r\n\t ", 8, &error));
}

static void
test_only_an_object_or_array_is_a_document(void)
{
  static const char *const scalars[] = { "1", "\"x\"", "true", "null", "-1", "]", "}" };
  for (guint i = 0; i < G_N_ELEMENTS(scalars); i++)
    assert_refused(scalars[i], strlen(scalars[i]), "must be a JSON object or array");
  assert_refused("", 0, "empty");
  assert_refused(" \n", 2, "empty");
}

/* Found by fuzzing: "\udc80" became the bytes ED B2 80, which GVariant and GError refuse. */
static void
test_a_lone_surrogate_is_refused_a_pair_is_not(void)
{
  static const char *const lone[] = { "{\"a\": \"\\ud800 b\"}", "[\"\\udc80x\"]",
                                      "{\"\\ud800x\": 1}" };
  for (guint i = 0; i < G_N_ELEMENTS(lone); i++) {
    /* json-glib >= 1.10 (Debian 13) refuses them itself, as a parse error ("<data>:1:14:
     * Parse error: …surrogate…"); older ones decode them and our own check refuses the bytes. */
    g_autoptr(GError) error = NULL;
    g_assert_false(load(lone[i], strlen(lone[i]), &error));
    g_assert_true(g_utf8_validate(error->message, -1, NULL));
    if (strstr(error->message, "not valid UTF-8") == NULL &&
        strstr(error->message, "Parse error") == NULL)
      g_error("neither our 'not valid UTF-8' nor json-glib's parse error: %s", error->message);
  }
  static const char unpaired[] = "[\"\\udc80\"]"; /* json-glib's scanner refuses this one */
  assert_refused(unpaired, sizeof unpaired - 1, "");
  static const char raw[] = "[\"\xff\xfe\"]";
  assert_refused(raw, sizeof raw - 1, "");
  g_autoptr(GError) error = NULL;
  g_assert_true(load("[\"\\ud83d\\ude00\"]", 16, &error));
}

/* json-glib quotes the text near an error, cut at a byte count, possibly inside a character. */
static void
test_an_error_text_is_valid_utf8_and_short(void)
{
  GString *s = g_string_new("{\"a\": ");
  for (guint i = 0; i < 2000; i++)
    g_string_append(s, "\xc3\xa9");
  g_string_append(s, "}");
  assert_refused(s->str, s->len, "");
  g_autoptr(GError) error = NULL;
  g_assert_false(load(s->str, s->len, &error));
  g_assert_cmpuint(strlen(error->message), <=, 300);
  g_string_free(s, TRUE);
}

static void
test_typed_members_answer_absent_for_another_type(void)
{
  static const char text[] = "{\"s\": \"x\", \"i\": 7, \"d\": 1.5, \"o\": {}, \"a\": [\"e\", 1],"
                             " \"n\": null}";
  g_autoptr(JsonNode) root = lcvm_json_parse_bounded(text, -1, NULL);
  g_assert_nonnull(root);
  JsonObject *o = json_node_get_object(root);
  gint64 v = 0;
  g_assert_cmpstr(lcvm_json_string_member(o, "s"), ==, "x");
  g_assert_true(lcvm_json_int_member(o, "i", &v));
  g_assert_cmpint(v, ==, 7);
  g_assert_nonnull(lcvm_json_object_member(o, "o"));
  static const char *const names[] = { "s", "i", "d", "o", "a", "n", "missing" };
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    const char *n = names[i];
    if (!g_str_equal(n, "s"))
      g_assert_null(lcvm_json_string_member(o, n));
    if (!g_str_equal(n, "i"))
      g_assert_false(lcvm_json_int_member(o, n, &v));
    if (!g_str_equal(n, "o"))
      g_assert_null(lcvm_json_object_member(o, n));
  }
  g_assert_null(lcvm_json_string_member(NULL, "s"));
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
  g_test_add_func("/json-depth/anything_after_the_first_value_is_refused",
                  test_anything_after_the_first_value_is_refused);
  g_test_add_func("/json-depth/only_an_object_or_array_is_a_document",
                  test_only_an_object_or_array_is_a_document);
  g_test_add_func("/json-depth/a_lone_surrogate_is_refused_a_pair_is_not",
                  test_a_lone_surrogate_is_refused_a_pair_is_not);
  g_test_add_func("/json-depth/an_error_text_is_valid_utf8_and_short",
                  test_an_error_text_is_valid_utf8_and_short);
  g_test_add_func("/json-depth/typed_members_answer_absent_for_another_type",
                  test_typed_members_answer_absent_for_another_type);
  return g_test_run();
}
