/* SPDX-License-Identifier: MIT */
/* The Prometheus text exposition writer (see lcvm-prom.h). */
#include "lcvm-prom.h"
#include <stdarg.h>

/* Label values from outside lium-cvm are clipped to this many characters. */
#define LABEL_MAX_CHARS 128

LcvmProm *
lcvm_prom_new(void)
{
  LcvmProm *prom = g_new0(LcvmProm, 1);
  prom->text = g_string_new(NULL);
  return prom;
}

void
lcvm_prom_free(LcvmProm *prom)
{
  if (prom == NULL)
    return;
  g_string_free(prom->text, TRUE);
  g_free(prom->family);
  g_free(prom->header);
  g_free(prom);
}

static void
append_escaped(GString *out, const char *text, gboolean quote)
{
  for (const char *p = text; *p != '\0'; p++) {
    if (*p == '\\')
      g_string_append(out, "\\\\");
    else if (*p == '\n')
      g_string_append(out, "\\n");
    else if (*p == '"' && quote)
      g_string_append(out, "\\\"");
    else
      g_string_append_c(out, *p);
  }
}

char *
lcvm_prom_escape_label(const char *value, glong max_chars)
{
  g_autofree char *valid = g_utf8_make_valid(value ? value : "", -1);
  if (max_chars > 0 && g_utf8_strlen(valid, -1) > max_chars) {
    g_autofree char *head = g_utf8_substring(valid, 0, max_chars - 1);
    g_free(valid);
    valid = g_strconcat(head, "…", NULL);
  }
  GString *out = g_string_new(NULL);
  append_escaped(out, valid, TRUE);
  return g_string_free(out, FALSE);
}

void
lcvm_prom_family(LcvmProm *prom, const char *name, const char *type, const char *help)
{
  g_free(prom->family);
  prom->family = g_strdup(name);
  GString *header = g_string_new(NULL);
  g_string_append_printf(header, "# HELP %s ", name);
  append_escaped(header, help, FALSE);
  g_string_append_printf(header, "\n# TYPE %s %s\n", name, type);
  g_free(prom->header);
  prom->header = g_string_free(header, FALSE);
}

static void
append_value(GString *out, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append(out, g_ascii_dtostr(buf, sizeof buf, value));
}

void
lcvm_prom_sample(LcvmProm *prom, double value, ...)
{
  g_return_if_fail(prom->family != NULL);
  if (prom->header != NULL) {
    g_string_append(prom->text, prom->header);
    g_clear_pointer(&prom->header, g_free);
  }
  va_list ap;
  va_start(ap, value);
  g_string_append(prom->text, prom->family);
  int labels = 0;
  for (const char *name = va_arg(ap, const char *); name != NULL;
       name = va_arg(ap, const char *), labels++) {
    g_autofree char *escaped = lcvm_prom_escape_label(va_arg(ap, const char *), LABEL_MAX_CHARS);
    g_string_append_printf(prom->text, "%s%s=\"%s\"", labels == 0 ? "{" : ",", name, escaped);
  }
  va_end(ap);
  if (labels > 0)
    g_string_append_c(prom->text, '}');
  g_string_append_c(prom->text, ' ');
  append_value(prom->text, value);
  g_string_append_c(prom->text, '\n');
}
