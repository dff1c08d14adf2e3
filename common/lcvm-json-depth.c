/* The nesting check (see the header). It counts brackets outside strings; everything else
 * about the text is json-glib's to judge once the count passed. json-glib's scanner also reads
 * single-quoted strings and skips C comments, where a '"' would make this count see a string
 * that json-glib does not: so outside strings only what strict JSON has there is accepted, and
 * a NUL byte nowhere. */
#include "lcvm-json-depth.h"

typedef enum {
  DEPTH_OK,
  DEPTH_TOO_DEEP,
  DEPTH_NOT_STRICT,
} DepthVerdict;

/* Whitespace, structure and the characters of numbers, true, false and null. */
static gboolean
strict_outside_strings(char c)
{
  return g_ascii_isalnum(c) || strchr(" \t\r\n[]{}:,.+-", c) != NULL;
}

static DepthVerdict
depth_within(const char *data, gsize len, guint max)
{
  guint depth = 0;
  gboolean in_string = FALSE;
  for (gsize i = 0; i < len; i++) {
    char c = data[i];
    if (c == '\0')
      return DEPTH_NOT_STRICT;
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"') {
      in_string = TRUE;
    } else if (!strict_outside_strings(c)) {
      return DEPTH_NOT_STRICT;
    } else if (c == '[' || c == '{') {
      if (++depth > max)
        return DEPTH_TOO_DEEP;
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return DEPTH_OK;
}

gboolean
lcvm_json_load_bounded(JsonParser *parser, const char *data, gssize len, GError **error)
{
  gsize n = len < 0 ? strlen(data) : (gsize)len;
  switch (depth_within(data, n, LCVM_JSON_MAX_DEPTH)) {
  case DEPTH_TOO_DEEP:
    g_set_error(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE,
                "the document is nested deeper than %d levels", LCVM_JSON_MAX_DEPTH);
    return FALSE;
  case DEPTH_NOT_STRICT:
    g_set_error_literal(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE,
                        "the document is not strict JSON (a comment, a single-quoted string or "
                        "a NUL byte)");
    return FALSE;
  case DEPTH_OK:
    break;
  }
  return json_parser_load_from_data(parser, data, (gssize)n, error);
}
