/* SPDX-License-Identifier: MIT */
/* Parsing `qemu --version` output and caching it per binary. Pure: no process is spawned
 * and no file is opened here. */
#include "lcvm-qemu-probe.h"
#include "lcvm-error.h"
#include "lcvm-text.h"

#include <string.h>

/* Markers distribution packages put in the parenthesised package version
 * ("QEMU emulator version 9.2.1 (Debian 1:9.2.1+ds-1ubuntu5)"). The dstack build is compiled
 * from source and carries none of them. */
static const char *const distro_markers[] = { "debian", "ubuntu", "dfsg", "+ds",
                                              ".el",    ".fc",    "suse", NULL };

static gboolean
looks_like_version(const char *word)
{
  return g_ascii_isdigit(word[0]) && strchr(word, '.') != NULL;
}

/* The word after "version" when it looks like a version, else the first that does — the
 * same choice the reference launcher makes, so vm_config's qemu_version string matches. */
static const char *
version_word(char **words)
{
  for (guint i = 0; words[i]; i++)
    if (g_str_equal(words[i], "version") && words[i + 1] && looks_like_version(words[i + 1]))
      return words[i + 1];
  for (guint i = 0; words[i]; i++)
    if (looks_like_version(words[i]))
      return words[i];
  return NULL;
}

static gboolean
parse_number(const char **p, guint *out)
{
  const char *s = *p;
  guint64 value = 0;
  if (!g_ascii_isdigit(*s))
    return FALSE;
  while (g_ascii_isdigit(*s) && value <= G_MAXUINT16)
    value = value * 10 + (guint64)(*s++ - '0');
  if (g_ascii_isdigit(*s) || value > G_MAXUINT16)
    return FALSE;
  *out = (guint)value;
  *p = s;
  return TRUE;
}

/* MAJOR.MINOR or MAJOR.MINOR.PATCH, nothing else. */
static gboolean
parse_triple(const char *text, LcvmQemuVersion *version)
{
  const char *p = text;
  version->patch = 0;
  if (!parse_number(&p, &version->major) || *p++ != '.' || !parse_number(&p, &version->minor))
    return FALSE;
  if (*p == '.' && (p++, !parse_number(&p, &version->patch)))
    return FALSE;
  return *p == '\0';
}

static gboolean
is_distro_package(const char *line)
{
  const char *open = strchr(line, '(');
  if (!open)
    return FALSE;
  g_autofree char *note = g_ascii_strdown(open, -1);
  for (guint i = 0; distro_markers[i]; i++)
    if (strstr(note, distro_markers[i]))
      return TRUE;
  return FALSE;
}

gboolean
lcvm_qemu_version_parse(const char *output, LcvmQemuVersion *version, GError **error)
{
  g_autofree char *first = g_strndup(output, strcspn(output, "\n"));
  g_strstrip(first);
  g_auto(GStrv) words = g_strsplit_set(first, " \t", -1);
  const char *word = version_word(words);
  g_autofree char *text = word ? g_strndup(word, strcspn(word, "+")) : NULL;
  LcvmQemuVersion parsed = { 0 };
  if (!text || strlen(text) >= sizeof parsed.text || !parse_triple(text, &parsed)) {
    g_autofree char *shown = lcvm_text_for_message(first);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "cannot read a QEMU version from '%s' (expected \"QEMU emulator version "
                "X.Y.Z\"); check that [qemu] path names a qemu-system-x86_64 binary",
                shown);
    return FALSE;
  }
  g_strlcpy(parsed.text, text, sizeof parsed.text);
  parsed.distro_package = is_distro_package(first);
  *version = parsed;
  return TRUE;
}

gboolean
lcvm_qemu_version_at_least(const LcvmQemuVersion *version, guint major, guint minor, guint patch)
{
  if (version->major != major)
    return version->major > major;
  if (version->minor != minor)
    return version->minor > minor;
  return version->patch >= patch;
}

typedef struct {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  LcvmQemuVersion version;
} ProbeRecord;

struct _LcvmQemuProbeCache {
  GHashTable *records; /* path → ProbeRecord */
};

LcvmQemuProbeCache *
lcvm_qemu_probe_cache_new(void)
{
  LcvmQemuProbeCache *cache = g_new0(LcvmQemuProbeCache, 1);
  cache->records = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  return cache;
}

void
lcvm_qemu_probe_cache_free(LcvmQemuProbeCache *cache)
{
  if (!cache)
    return;
  g_hash_table_unref(cache->records);
  g_free(cache);
}

static gboolean
record_matches(const ProbeRecord *record, const struct stat *st)
{
  return record->dev == st->st_dev && record->ino == st->st_ino && record->size == st->st_size &&
         record->mtime.tv_sec == st->st_mtim.tv_sec && record->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

gboolean
lcvm_qemu_probe_cache_lookup(LcvmQemuProbeCache *cache, const char *path, const struct stat *st,
                             LcvmQemuVersion *version)
{
  const ProbeRecord *record = g_hash_table_lookup(cache->records, path);
  if (!record || !record_matches(record, st))
    return FALSE;
  *version = record->version;
  return TRUE;
}

void
lcvm_qemu_probe_cache_store(LcvmQemuProbeCache *cache, const char *path, const struct stat *st,
                            const LcvmQemuVersion *version)
{
  ProbeRecord *record = g_new0(ProbeRecord, 1);
  record->dev = st->st_dev;
  record->ino = st->st_ino;
  record->size = st->st_size;
  record->mtime = st->st_mtim;
  record->version = *version;
  g_hash_table_replace(cache->records, g_strdup(path), record);
}
