/* SPDX-License-Identifier: MIT */
/* The one way lium-cvm reads JSON that someone else wrote (an operator's definition, image
 * metadata, a guest's request, QEMU's QMP stream, docker's output, a cache file): json-glib
 * alone is not safe on hostile text. Its parser recurses once per level with no limit (a
 * megabyte of '[' kills the process), json-glib 1.6 accepts several top-level values and leaks
 * every one after the first (a guest grew its bridge by 500 MiB that way), it turns a lone
 * surrogate escape ("\ud800") into bytes that are not UTF-8 (which GVariant and GError refuse
 * with a critical), and an empty text loads "successfully" with no root at all. Nothing else in
 * the tree calls json_parser_load_from_data or json_from_string on such input.
 *
 * The typed member getters below never emit a critical on a member of the wrong type (the
 * json_object_get_*_member family does): they answer "absent". */
#pragma once
#include <json-glib/json-glib.h>

/* Far deeper than any document lium-cvm reads (a manifest is 3 levels, docker's output < 10). */
#define LCVM_JSON_MAX_DEPTH 64

/* json_parser_load_from_data on data (len -1: NUL-terminated), refusing (JSON_PARSER_ERROR_PARSE,
 * with a valid UTF-8 message) before json-glib sees it: an empty text, a root that is not an
 * object or an array, anything but whitespace after the root's closing bracket, nesting deeper
 * than LCVM_JSON_MAX_DEPTH, and anything outside strings that strict JSON does not have
 * (comments, single quotes, NUL bytes: json-glib's scanner takes them, and with them a nesting
 * the count cannot see), a \u0000 escape (json-glib would cut the string there); and after it: a
 * string or member name that is not valid UTF-8. On TRUE the parser's root is a non-NULL object or
 * array. */
gboolean lcvm_json_load_bounded(JsonParser *parser, const char *data, gssize len, GError **error);

/* The same, returning the root (a new reference) or NULL. */
JsonNode *lcvm_json_parse_bounded(const char *data, gssize len, GError **error);

/* Members of a given type, or NULL (FALSE) when absent, null or of another type. */
const char *lcvm_json_string_member(JsonObject *obj, const char *name);
JsonObject *lcvm_json_object_member(JsonObject *obj, const char *name);
/* An integer member (a JSON number without fraction or exponent). */
gboolean lcvm_json_int_member(JsonObject *obj, const char *name, gint64 *value);
