/* SPDX-License-Identifier: MIT */
/* dstack's client.conf with configparser's semantics (see the header). */
#include "lcvm-client-conf.h"

#include <string.h>

typedef struct {
  const char *section; /* wanted section */
  char *key;           /* wanted key, lower-case */
  char *value;         /* last value in the wanted section */
  char *fallback;      /* last value in [DEFAULT] */
  gboolean have_section;
  char **current; /* the value being continued, or NULL */
} Lookup;

static gboolean
is_comment(const char *stripped)
{
  return stripped[0] == '#' || stripped[0] == ';';
}

/* "[name]…" → name (from the first '[' to the last ']', as configparser's SECTCRE). */
static char *
section_name(const char *stripped)
{
  const char *close = strrchr(stripped, ']');
  if (stripped[0] != '[' || close == NULL || close - stripped < 2)
    return NULL;
  return g_strndup(stripped + 1, close - stripped - 1);
}

static void
set_value(Lookup *l, char **slot, const char *value)
{
  g_free(*slot);
  *slot = g_strdup(value);
  l->current = slot;
}

/* A "key = value" or "key: value" line inside section (NULL before the first header). */
static void
option_line(Lookup *l, const char *section, char *stripped)
{
  l->current = NULL;
  char *sep = strpbrk(stripped, "=:");
  if (sep == NULL || section == NULL)
    return;
  *sep = '\0';
  g_autofree char *key = g_ascii_strdown(g_strstrip(stripped), -1);
  if (!g_str_equal(key, l->key))
    return;
  const char *value = g_strstrip(sep + 1);
  if (g_str_equal(section, l->section))
    set_value(l, &l->value, value);
  else if (g_str_equal(section, "DEFAULT"))
    set_value(l, &l->fallback, value);
}

static void
continue_value(Lookup *l, const char *stripped)
{
  char *joined = g_strconcat(*l->current, "\n", stripped, NULL);
  g_free(*l->current);
  *l->current = joined;
}

char *
lcvm_client_conf_get(const char *text, const char *section, const char *key)
{
  Lookup l = { .section = section, .key = g_ascii_strdown(key, -1) };
  g_autofree char *in_section = NULL;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    gboolean indented = lines[i][0] == ' ' || lines[i][0] == '\t';
    char *stripped = g_strstrip(lines[i]);
    if (stripped[0] == '\0' || is_comment(stripped)) {
      if (stripped[0] == '\0')
        l.current = NULL;
      continue;
    }
    if (indented && l.current != NULL) {
      continue_value(&l, stripped);
      continue;
    }
    char *name = section_name(stripped);
    if (name != NULL) {
      g_free(in_section);
      in_section = name;
      l.have_section = l.have_section || g_str_equal(name, section);
      l.current = NULL;
      continue;
    }
    option_line(&l, in_section, stripped);
  }
  g_free(l.key);
  if (l.value == NULL && l.have_section)
    return l.fallback;
  g_free(l.fallback);
  return l.value;
}

char *
lcvm_client_conf_docker_registry(const char *text)
{
  char *registry = lcvm_client_conf_get(text, "docker", "registry");
  if (registry != NULL && registry[0] == '\0')
    g_clear_pointer(&registry, g_free);
  return registry;
}
