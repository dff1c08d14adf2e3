/* SPDX-License-Identifier: MIT */
/* Unexpected exits, recorded and reported (see helper-crash.h). The record lives in the
 * root-owned instance directory and is reached without following a symlink. */
#include "helper-crash.h"
#include "lcvm-fd.h"
#include "helper-runtime-record.h"
#include "helper-vm-launch.h"
#include "lcvm-layout.h"
#include "lcvm-names.h"
#include "lcvm-safe-io.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#define GROUP      "last-exit"
#define RECORD_MAX (64 * 1024)
/* What Linux prints first when it panics; a call trace of a few dozen lines follows. */
#define PANIC_MARKER     "Kernel panic - not syncing"
#define PANIC_SCAN_LINES 64

void
helper_crash_free(HelperCrash *crash)
{
  if (crash == NULL)
    return;
  g_free(crash->name);
  g_free(crash->how);
  g_strfreev(crash->console);
  g_free(crash);
}

static char *
sanitize_line(const char *line, gsize len)
{
  g_autofree char *valid = g_utf8_make_valid(line, (gssize)len);
  GString *out = g_string_new(NULL);
  guint chars = 0;
  for (const char *p = valid; *p != '\0' && chars < HELPER_CRASH_LINE_MAX;
       p = g_utf8_next_char(p), chars++) {
    gunichar c = g_utf8_get_char(p);
    if (g_unichar_iscntrl(c) || c == 0xfffd)
      g_string_append_c(out, '?');
    else
      g_string_append_unichar(out, c);
  }
  return g_string_free(out, FALSE);
}

GStrv
helper_crash_console_lines(const char *bytes, gsize len, guint max_lines)
{
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
  gsize start = 0;
  for (gsize i = 0; i <= len; i++) {
    if (i < len && bytes[i] != '\n')
      continue;
    gsize end = i;
    while (end > start && (bytes[end - 1] == '\r' || bytes[end - 1] == ' '))
      end--;
    if (end > start)
      g_ptr_array_add(lines, sanitize_line(bytes + start, end - start));
    start = i + 1;
  }
  guint first = lines->len > max_lines ? lines->len - max_lines : 0;
  GStrv out = g_new0(char *, lines->len - first + 1);
  for (guint i = first; i < lines->len; i++)
    out[i - first] = g_strdup(lines->pdata[i]);
  return out;
}

HelperCrash *
helper_crash_new(const LcvmConfig *config, const char *name, const char *how)
{
  HelperCrash *crash = g_new0(HelperCrash, 1);
  crash->name = g_strdup(name);
  crash->exited_at = (guint64)(g_get_real_time() / G_USEC_PER_SEC);
  crash->how = g_strdup(how);
  g_autofree char *tail =
      helper_vm_log_tail(config, name, LCVM_INSTANCE_SERIAL_LOG, HELPER_CRASH_CONSOLE_LINES);
  crash->console = helper_crash_console_lines(tail, strlen(tail), HELPER_CRASH_CONSOLE_LINES);
  return crash;
}

gboolean
helper_crash_console_panicked(const LcvmConfig *config, const char *name)
{
  g_autofree char *tail =
      helper_vm_log_tail(config, name, LCVM_INSTANCE_SERIAL_LOG, PANIC_SCAN_LINES);
  return strstr(tail, PANIC_MARKER) != NULL;
}

static char *
format_time(guint64 when)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc((gint64)when);
  return t ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

char *
helper_crash_describe(const HelperCrash *crash)
{
  g_autofree char *when = format_time(crash->exited_at);
  return g_strdup_printf("exited unexpectedly at %s, %s", when, crash->how);
}

static void
journal_record(const HelperCrash *crash)
{
  g_autofree char *text = helper_crash_describe(crash);
  g_autofree char *console = g_strjoinv("\n", crash->console);
  g_autofree char *when = format_time(crash->exited_at);
  if (access("/run/systemd/journal/socket", W_OK) == 0) {
    sd_journal_send("MESSAGE_ID=" LCVM_CRASH_MESSAGE_ID, "PRIORITY=%d", 3,
                    "MESSAGE=VM %s %s; it is not restarted", crash->name, text, "LCVM_VM=%s",
                    crash->name, "LCVM_EXITED_AT=%s", when, "LCVM_EXIT=%s", crash->how,
                    "LCVM_CONSOLE=%s", console, NULL);
    return;
  }
  /* Quoted and C-escaped: a console line cannot forge another field. */
  g_autofree char *q_how = g_strescape(crash->how, NULL);
  g_autofree char *q_console = g_strescape(console, NULL);
  g_autofree char *line = g_strdup_printf("CRASH MESSAGE_ID=" LCVM_CRASH_MESSAGE_ID
                                          " vm=%s exited_at=%s exit=\"%s\" console=\"%s\"\n",
                                          crash->name, when, q_how, q_console);
  fputs(line, stderr);
  fflush(stderr);
}

void
helper_crash_report(const LcvmConfig *config, const HelperCrash *crash)
{
  journal_record(crash);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_key_file_set_uint64(kf, GROUP, "exited_at", crash->exited_at);
  g_key_file_set_string(kf, GROUP, "exit", crash->how);
  g_key_file_set_string_list(kf, GROUP, "console", (const char *const *)crash->console,
                             g_strv_length(crash->console));
  gsize len = 0;
  g_autofree char *text = g_key_file_to_data(kf, &len, NULL);
  g_autoptr(GError) error = NULL;
  lcvm_autofd int fd = helper_vm_instance_dir_open(config, crash->name, &error);
  if (fd < 0 || !lcvm_write_file_atomic_at(fd, LCVM_INSTANCE_LAST_EXIT, text, len, 0600, &error))
    g_warning("VM %s: its crash is not recorded for a helper restart: %s", crash->name,
              error->message);
}

HelperCrash *
helper_crash_load(const LcvmConfig *config, const char *name)
{
  lcvm_autofd int fd = helper_vm_instance_dir_open(config, name, NULL);
  g_autofree char *text = NULL;
  gsize len = 0;
  gboolean read =
      fd >= 0 && lcvm_read_file_at(fd, LCVM_INSTANCE_LAST_EXIT, RECORD_MAX, &text, &len, NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!read || !g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, NULL))
    return NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperCrash) crash = g_new0(HelperCrash, 1);
  crash->name = g_strdup(name);
  crash->exited_at = g_key_file_get_uint64(kf, GROUP, "exited_at", &error);
  g_autofree char *how = error ? NULL : g_key_file_get_string(kf, GROUP, "exit", &error);
  g_auto(GStrv) console =
      error ? NULL : g_key_file_get_string_list(kf, GROUP, "console", NULL, &error);
  if (error != NULL)
    return NULL;
  /* Written by this helper, but of guest-made lines: sanitized again on the way in. */
  crash->how = sanitize_line(how, strlen(how));
  g_autofree char *joined = g_strjoinv("\n", console);
  crash->console = helper_crash_console_lines(joined, strlen(joined), HELPER_CRASH_CONSOLE_LINES);
  return g_steal_pointer(&crash);
}

void
helper_crash_clear(const LcvmConfig *config, const char *name)
{
  lcvm_autofd int fd = helper_vm_instance_dir_open(config, name, NULL);
  if (fd < 0)
    return;
  unlinkat(fd, LCVM_INSTANCE_LAST_EXIT, 0);
}

GStrv
helper_crash_names(const LcvmConfig *config)
{
  g_autofree char *path = lcvm_layout_instances_dir(config);
  return helper_vm_dir_names(path, LCVM_INSTANCE_LAST_EXIT);
}
