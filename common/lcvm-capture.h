/* SPDX-License-Identifier: MIT */
/* Running a helper program the frontend asks something (`qemu --version`, journalctl,
 * mpa_manage): clean environment, stdin /dev/null, stderr discarded, stdout captured up to a
 * limit, killed at a deadline. Unprivileged callers only: the helper spawns confined
 * (helper-spawn.c). */
#pragma once
#include <glib.h>

/* stdout of argv (valid UTF-8), and its wait status in *status; NULL with error when it cannot
 * start or misses the deadline (then it is killed). */
char *lcvm_capture(const char *const *argv, guint timeout_ms, gsize max, int *status,
                   GError **error);
