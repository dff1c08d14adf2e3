/* SPDX-License-Identifier: MIT */
/* Following a VM's event file, runtime_dir/NAME/events: the JSON lines
 * {"time_us", "event", "payload"} its host-API bridge appends for the guest's Notify calls
 * (boot.progress, boot.error, shutdown.progress; reference/dstack.md §4.2). Read from the
 * start — so a re-adopting helper replays what the guest reported while none watched — then
 * whenever inotify says the file grew; never polled. The bridge is fed by a hostile guest:
 * every line is size-capped and parsed as untrusted JSON; a bad line is skipped. */
#pragma once
#include <glib.h>

#include "lcvm-config.h"

/* The longest line taken; the bridge's own cap on a payload is 4 KiB. */
#define HELPER_EVENTS_MAX_LINE (16 * 1024)
/* The most read from the file per main-loop iteration while following it. */
#define HELPER_EVENTS_MAX_BATCH (256 * 1024)

typedef struct _HelperEvents HelperEvents;

/* Called in the main loop for each complete line, in file order. */
typedef void (*HelperEventFunc)(const char *event, const char *payload, gpointer data);
/* Called once after the lines of one read (to flush property changes once). */
typedef void (*HelperEventsDoneFunc)(gpointer data);

/* Reads what the file holds now (calling func for each line) and watches it. NULL with error
 * when the file cannot be opened or watched. data must outlive the follower. */
HelperEvents *helper_events_follow(const LcvmConfig *config, const char *name, HelperEventFunc func,
                                   HelperEventsDoneFunc done, gpointer data, GError **error);

/* Reads whatever was appended since the last read (the VM's last words before its exit). */
void helper_events_catch_up(HelperEvents *events);

void helper_events_free(HelperEvents *events);

/* One line of the file: TRUE with event and payload when it is a JSON object whose "event" and
 * "payload" are strings of plain text (no control characters), FALSE for anything else. */
gboolean helper_events_parse_line(const char *text, gsize len, char **event, char **payload);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperEvents, helper_events_free)
