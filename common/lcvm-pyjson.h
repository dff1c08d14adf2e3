/* SPDX-License-Identifier: MIT */
/* A JSON writer that produces exactly the bytes of Python's json.dumps(obj, indent=...) with
 * its defaults (ensure_ascii=True: \uXXXX escapes, surrogate pairs beyond the BMP; separators
 * ", "/": " without indent and ","/": " with it; object keys in insertion order). The compose
 * hash the Lium validator whitelists is a sha256 of such bytes, so nothing here may "improve"
 * the format. Floating-point numbers are refused: nothing we write has one, and Python's
 * float repr is not worth emulating for nothing. */
#pragma once
#include <json-glib/json-glib.h>

/* No indent: Python's indent=None (one line). */
#define LCVM_PYJSON_NO_INDENT (-1)

/* Serialises node. Strings must be valid UTF-8 without NUL bytes; a double value or invalid
 * text is an error. Objects are written in insertion order. The result has no trailing
 * newline (json.dump writes none). */
char *lcvm_pyjson_dump(JsonNode *node, int indent, gsize *len, GError **error);
