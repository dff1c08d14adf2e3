/* SPDX-License-Identifier: MIT */
/* Text someone else wrote (a guest, QEMU, an operator's file, a caller on the bus) on its way
 * to a GError, a D-Bus string, an audit record or a terminal. GVariant and GError want valid
 * UTF-8; a terminal obeys escape sequences (a guest's OSC 52 writes the operator's clipboard);
 * an echoed value must not make a message or a journal line megabytes long. */
#pragma once
#include <glib.h>

/* How much of a caller's value an error text or an audit record echoes. */
#define LCVM_TEXT_MAX_ECHO 128

/* TRUE when text is valid UTF-8 without C0 controls, DEL or C1 controls (tab included: an event
 * payload is one line of plain text). */
gboolean lcvm_text_is_plain(const char *text, gsize len);

/* For a message: valid UTF-8 (bad bytes as \xNN), controls as \xNN / \u00NN (newline and tab
 * too), at most max bytes of the original (0: LCVM_TEXT_MAX_ECHO), "…" when cut. */
char *lcvm_text_for_message_max(const char *text, gsize max);
char *lcvm_text_for_message(const char *text);

/* At most max bytes of text, cut at a character boundary, "…" appended when cut; bytes that
 * are not UTF-8 replaced (U+FFFD). For what must stay readable as it is (an audit record, an
 * error text on the bus) yet bounded. */
char *lcvm_text_cut(const char *text, gsize max);

/* For a terminal: len bytes (-1: NUL-terminated) with C0 and C1 controls and DEL escaped
 * (\xNN, \u00NN) except newline and tab, and bytes that are not UTF-8 as \xNN. Appended. */
void lcvm_text_append_for_tty(GString *out, const char *bytes, gssize len);
