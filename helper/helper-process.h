/* SPDX-License-Identifier: MIT */
/* A process the helper watches through a pidfd: the proof that a recorded pid still is that
 * process (pidfd first, then start time and cmdline, so a recycled pid never passes), signals
 * sent through the pidfd (never by a pid that may have been recycled), the exit watch (the
 * pidfd in the main loop, no polling), reaping and bounded waits. The checks read the real
 * /proc (the pid is a real process), never proc_root, which tests point at a fake tree. */
#pragma once
#include <glib.h>
#include <signal.h>
#include <sys/types.h>

#include "helper-runtime-record.h"

/* Field 22 of /proc/PID/stat. */
gboolean helper_process_start_time(pid_t pid, guint64 *start_time, GError **error);

/* A pidfd for record's QEMU when the process with that pid still is the one recorded (same
 * start time, same argv); -1 with error saying what differs. Works for processes that are not
 * the helper's children (they can be watched and signalled, not reaped). */
int helper_process_adopt(const HelperRecord *record, GError **error);
/* The same for any recorded process; what names it in messages ("QEMU", "the bridge"). */
int helper_process_adopt_pid(pid_t pid, guint64 start_time, const char *const *argv,
                             const char *what, GError **error);

/* Sends sig to the process behind pidfd. Returns 0 when it was sent or the process has already
 * exited (nothing left to signal), else the errno value. */
int helper_process_signal(int pidfd, int sig);

/* Calls func(data) once in the main loop when the process behind pidfd has exited. Returns
 * the GSource id. */
typedef void (*HelperExitFunc)(gpointer data);
guint helper_process_watch(int pidfd, HelperExitFunc func, gpointer data);
/* The same; destroy(data) runs when the watch ends, fired or removed. */
guint helper_process_watch_full(int pidfd, HelperExitFunc func, gpointer data,
                                GDestroyNotify destroy);

/* Reaps an exited child: TRUE with info filled; FALSE when it is not the helper's child (a
 * re-adopted VM) and its exit status cannot be known. */
gboolean helper_process_reap(int pidfd, siginfo_t *info);

/* Blocks (worker threads only) until the process exits or timeout_ms passes: TRUE if exited. */
gboolean helper_process_wait(int pidfd, guint timeout_ms);
