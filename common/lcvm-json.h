/* SPDX-License-Identifier: MIT */
/* Small json-glib helpers shared by every --json writer. */
#pragma once
#include <json-glib/json-glib.h>

/* name: value, or name: null when value is NULL. */
void lcvm_json_add_string_or_null(JsonBuilder *b, const char *name, const char *value);
/* name: value, or name: null when value is negative (meaning "unknown"). */
void lcvm_json_add_int_or_null(JsonBuilder *b, const char *name, gint64 value);
/* The document b built, pretty-printed (the state files operators read); *len its length. */
char *lcvm_json_pretty(JsonBuilder *b, gsize *len);
