/* SPDX-License-Identifier: MIT */
/* The host side of the TD quote path, as `check --deep` judges it (field-2026 §4.4-4.5): the
 * journal of Intel's quote generation service (qgsd) with its known failure codes, Intel's
 * registration tool's answer, and a PCCS's HTTP status line. A listener on vsock 4050 is no
 * proof that quotes come out: only these show it. Pure parsers of text other programs print;
 * nothing here runs a program or opens a socket. */
#pragma once
#include <glib.h>

typedef struct {
  const char *code;    /* "0xb011" */
  const char *meaning; /* what it means, one line */
  const char *remedy;  /* what to do */
} LcvmQgsdFailure;

typedef struct {
  guint lines;                    /* journal lines read */
  const LcvmQgsdFailure *failure; /* the last known failure, or NULL */
  char *failure_line;             /* its journal line (at most 300 characters) */
  gboolean restarted_after;       /* qgsd (re)started after that failure */
} LcvmQgsdJournal;

/* Scans journal text (one entry a line, oldest first). A failure is one of the known codes as
 * a whole token ("0xb011", any case, not inside a longer hex number); a restart is a line
 * saying the service "Started". */
void lcvm_qgsd_journal_scan(const char *text, LcvmQgsdJournal *out);
void lcvm_qgsd_journal_clear(LcvmQgsdJournal *journal);

/* `mpa_manage -get_registration_status`: TRUE when it says "completed successfully"
 * (canonical/tdx check-registration.sh); *status gets its last non-empty line. */
gboolean lcvm_mpa_registration_complete(const char *output, char **status);

/* The status code of an HTTP/1.x status line ("HTTP/1.1 200 OK" → 200), 0 when it is not
 * one. */
guint lcvm_http_status(const char *response);
