/* SPDX-License-Identifier: MIT */
/* A VM whose QEMU exited unexpectedly (helper-stop.h says which exits are) stays visibly
 * failed: "exited unexpectedly at TIME, HOW" and the guest console's last lines on its Vm
 * object, one journal record (MESSAGE_ID LCVM_CRASH_MESSAGE_ID; a stderr line without a
 * journal), and the record instances/NAME/last-exit (root, 0600), so a restarted helper shows
 * it again. Lium's policy (reference/field-2026.md §5.2): the host never restarts a guest on
 * its own — nothing here starts anything; the record goes when the VM is started again or
 * removed. The console is written by the guest, which is hostile to the host: its lines are
 * made valid UTF-8, stripped of control characters and capped before anyone sees them. */
#pragma once
#include <glib.h>

#include "lcvm-config.h"
#include "lcvm-layout.h" /* the record: LCVM_INSTANCE_LAST_EXIT */

#define HELPER_CRASH_CONSOLE_LINES 10
#define HELPER_CRASH_LINE_MAX      240

typedef struct {
  char *name;
  guint64 exited_at; /* unix seconds */
  char *how;         /* ExitStatus: "killed by signal 9", "exit status 1", … */
  GStrv console;     /* the guest console's last lines, sanitized */
} HelperCrash;

void helper_crash_free(HelperCrash *crash);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperCrash, helper_crash_free)

/* The crash of VM name now, with its console's last lines. */
HelperCrash *helper_crash_new(const LcvmConfig *config, const char *name, const char *how);
/* "exited unexpectedly at 2026-12-06T02:40:00Z, killed by signal 9". */
char *helper_crash_describe(const HelperCrash *crash);

/* Records it (instances/NAME/last-exit) and writes its journal record. */
void helper_crash_report(const LcvmConfig *config, const HelperCrash *crash);
/* The recorded crash of VM name; NULL when there is none (or it is unreadable). */
HelperCrash *helper_crash_load(const LcvmConfig *config, const char *name);
/* Forgets it (the VM started again). */
void helper_crash_clear(const LcvmConfig *config, const char *name);
/* The VMs whose instance holds a crash record. */
GStrv helper_crash_names(const LcvmConfig *config);

/* Whether this start's console shows a Linux panic ("Kernel panic - not syncing" among its
 * last lines): a guest booted with panic=1 resets after a panic, and under -action
 * reboot=shutdown that exit is as clean as a poweroff. Only the guest's word — it can fake
 * its own crash, never hide another VM's. */
gboolean helper_crash_console_panicked(const LcvmConfig *config, const char *name);

/* The last max_lines non-empty lines of bytes (len, any content), each valid UTF-8 without
 * control characters (each becomes '?') and cut to HELPER_CRASH_LINE_MAX characters. */
GStrv helper_crash_console_lines(const char *bytes, gsize len, guint max_lines);
