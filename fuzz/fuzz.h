/* SPDX-License-Identifier: MIT */
/* What every libFuzzer target here shares (fuzz/README.md): a critical or a warning from GLib,
 * json-glib or our code is a finding (the helper runs with G_DEBUG=fatal-criticals), so both
 * abort; inputs arrive as bytes and are handed on NUL-terminated or split at NUL bytes. */
#pragma once
#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void
fuzz_abort_on_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
  g_printerr("%s: %s\n", domain ? domain : "", message);
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    abort(); /* SIGABRT, which libFuzzer reports with the input (GLib's own trap it does not) */
}

static inline void
fuzz_fatal_criticals(void)
{
  g_log_set_default_handler(fuzz_abort_on_log, NULL);
}

/* The LLVMFuzzerInitialize of a target that needs nothing but fatal criticals. */
#define FUZZ_PLAIN_INITIALIZE                                                                      \
  int LLVMFuzzerInitialize(int *argc, char ***argv)                                                \
  {                                                                                                \
    fuzz_fatal_criticals();                                                                        \
    return 0;                                                                                      \
  }

/* The input as a NUL-terminated string (what a reader of a file or a line gets). */
static inline char *
fuzz_text(const uint8_t *data, size_t size)
{
  return g_strndup((const char *)data, size);
}

/* The input cut at its first n-1 NUL bytes into n strings (missing parts are ""). */
static inline void
fuzz_split(const uint8_t *data, size_t size, guint n, char **parts)
{
  const char *p = (const char *)data, *end = p + size;
  for (guint i = 0; i < n; i++) {
    const char *nul = i + 1 < n ? memchr(p, '\0', (size_t)(end - p)) : NULL;
    const char *stop = nul != NULL ? nul : end;
    parts[i] = g_strndup(p, (gsize)(stop - p));
    p = nul != NULL ? nul + 1 : end;
  }
}
