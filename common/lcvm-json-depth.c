/* The nesting check (see the header). It only counts brackets outside strings; everything
 * else about the text is json-glib's to judge, after the count passed. */
#include "lcvm-json-depth.h"

static gboolean
depth_within(const char *data, gsize len, guint max)
{
  guint depth = 0;
  gboolean in_string = FALSE;
  for (gsize i = 0; i < len; i++) {
    char c = data[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"') {
      in_string = TRUE;
    } else if (c == '[' || c == '{') {
      if (++depth > max)
        return FALSE;
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return TRUE;
}

gboolean
lcvm_json_load_bounded(JsonParser *parser, const char *data, gssize len, GError **error)
{
  gsize n = len < 0 ? strlen(data) : (gsize)len;
  if (!depth_within(data, n, LCVM_JSON_MAX_DEPTH)) {
    g_set_error(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE,
                "the document is nested deeper than %d levels", LCVM_JSON_MAX_DEPTH);
    return FALSE;
  }
  return json_parser_load_from_data(parser, data, (gssize)n, error);
}
