/* Parsing JSON that someone else wrote (an operator's definition or image metadata, a guest's
 * request) without letting its nesting exhaust the stack: json-glib's parser recurses once per
 * level and has no limit of its own, so a megabyte of '[' kills the process that parses it. */
#pragma once
#include <json-glib/json-glib.h>

/* Far deeper than any document lium-cvm reads (a manifest is 3 levels, docker's output < 10). */
#define LCVM_JSON_MAX_DEPTH 64

/* json_parser_load_from_data, refusing (JSON_PARSER_ERROR_PARSE) before json-glib sees it a
 * document nested deeper than LCVM_JSON_MAX_DEPTH, and one with anything outside its strings
 * that strict JSON does not have (comments, single quotes, NUL bytes: json-glib's scanner takes
 * them, and with them a nesting the count cannot see). len -1: data is NUL-terminated. */
gboolean lcvm_json_load_bounded(JsonParser *parser, const char *data, gssize len, GError **error);
