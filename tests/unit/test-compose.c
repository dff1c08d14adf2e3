/* SPDX-License-Identifier: MIT */
/* app-compose.json construction and the Python-json writer under it. The byte-for-byte
 * comparison with Python itself runs in tests/vm (test_app_compose_golden.py); these cases
 * pin the rules so a failure names the rule. */
#include "lcvm-compose.h"
#include "lcvm-error.h"
#include "lcvm-pyjson.h"
#include <string.h>

#define DIGEST "sha256:8c07d3a91f8900bd3f0e19025fb7a2c32f82577385550187b28c7769060d18b7"

static char *
dump(const char *json, int indent)
{
  g_autoptr(JsonNode) node = json_from_string(json, NULL);
  g_assert_nonnull(node);
  g_autoptr(GError) error = NULL;
  char *out = lcvm_pyjson_dump(node, indent, NULL, &error);
  g_assert_no_error(error);
  return out;
}

static void
test_pyjson_escapes_like_python(void)
{
  g_autofree char *s =
      dump("[\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"]", LCVM_PYJSON_NO_INDENT);
  g_assert_cmpstr(s, ==, "[\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"]");
}

static void
test_pyjson_escapes_non_ascii_as_utf16(void)
{
  g_autofree char *s =
      dump("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\x80\xef\xbb\xbf\"]", LCVM_PYJSON_NO_INDENT);
  g_assert_cmpstr(s, ==, "[\"\\u00e9\\u20ac\\ud83d\\ude80\\ufeff\"]");
}

static void
test_pyjson_separators_without_indent(void)
{
  g_autofree char *s = dump("{\"b\":1,\"a\":[true,false,null,{}],\"c\":[]}", LCVM_PYJSON_NO_INDENT);
  g_assert_cmpstr(s, ==, "{\"b\": 1, \"a\": [true, false, null, {}], \"c\": []}");
}

static void
test_pyjson_indent_layout_and_insertion_order(void)
{
  g_autofree char *s = dump("{\"z\":{\"y\":[1,[]],\"x\":{}},\"a\":-5}", 4);
  g_assert_cmpstr(s, ==,
                  "{\n    \"z\": {\n        \"y\": [\n            1,\n            []\n        ],\n"
                  "        \"x\": {}\n    },\n    \"a\": -5\n}");
  g_autofree char *zero = dump("[1,2]", 0);
  g_assert_cmpstr(zero, ==, "[\n1,\n2\n]");
}

static void
test_pyjson_refuses_floats(void)
{
  g_autoptr(JsonNode) node = json_from_string("[1.5]", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_null(lcvm_pyjson_dump(node, 4, NULL, &error));
  g_assert_nonnull(error);
}

static void
test_decode_normalises_line_ends_like_python(void)
{
  const char in[] = "a\r\nb\rc\n\r\r\nd";
  g_autofree char *out = lcvm_compose_decode_text("x", in, sizeof in - 1, NULL);
  g_assert_cmpstr(out, ==, "a\nb\nc\n\n\nd");
}

static void
test_decode_refuses_invalid_utf8_and_nul(void)
{
  g_autoptr(GError) e1 = NULL;
  g_assert_null(lcvm_compose_decode_text("compose.yml", "ok\xff", 3, &e1));
  g_assert_nonnull(strstr(e1->message, "compose.yml is not valid UTF-8 (at byte 2)"));
  g_autoptr(GError) e2 = NULL;
  g_assert_null(lcvm_compose_decode_text("compose.yml", "a\0b", 3, &e2));
  g_assert_nonnull(strstr(e2->message, "NUL"));
  g_autoptr(GError) e3 = NULL;
  g_assert_null(lcvm_compose_decode_text("s", "\xed\xa0\x80", 3, &e3)); /* a UTF-16 surrogate */
  g_assert_nonnull(e3);
}

static void
test_digest_is_needed_only_for_the_braced_reference(void)
{
  g_assert_true(lcvm_compose_needs_runner_digest("image: x@${EXECUTOR_RUNNER_IMAGE_DIGEST}"));
  g_assert_false(lcvm_compose_needs_runner_digest("image: x@$EXECUTOR_RUNNER_IMAGE_DIGEST"));
  g_assert_false(lcvm_compose_needs_runner_digest("image: x"));
}

static void
test_stamping_follows_envsubst(void)
{
  const char *in = "a ${EXECUTOR_RUNNER_IMAGE_DIGEST} b $EXECUTOR_RUNNER_IMAGE_DIGEST c "
                   "$EXECUTOR_RUNNER_IMAGE_DIGESTX d ${EXECUTOR_RUNNER_IMAGE_DIGEST:-x} e "
                   "$$EXECUTOR_RUNNER_IMAGE_DIGEST f ${OTHER} $";
  g_autofree char *out = lcvm_compose_stamp_runner_digest(in, DIGEST, NULL);
  g_assert_cmpstr(out, ==,
                  "a " DIGEST " b " DIGEST " c $EXECUTOR_RUNNER_IMAGE_DIGESTX d "
                  "${EXECUTOR_RUNNER_IMAGE_DIGEST:-x} e $" DIGEST " f ${OTHER} $");
}

static void
test_stamping_requires_a_valid_digest(void)
{
  g_autoptr(GError) unset = NULL;
  g_assert_null(lcvm_compose_stamp_runner_digest("${EXECUTOR_RUNNER_IMAGE_DIGEST}", NULL, &unset));
  g_assert_nonnull(strstr(unset->message, "EXECUTOR_RUNNER_IMAGE_DIGEST is not set (required to "
                                          "pin the measured executor-runner)"));
  const char *bad[] = { "8c07d3a91f8900bd3f0e19025fb7a2c32f82577385550187b28c7769060d18b7",
                        "sha256:8C07D3A91F8900BD3F0E19025FB7A2C32F82577385550187B28C7769060D18B7",
                        "sha256:abc",
                        "sha512:8c07d3a91f8900bd3f0e19025fb7a2c32f82577385550187b28c7769060d18b7",
                        NULL };
  for (guint i = 0; bad[i]; i++) {
    g_autoptr(GError) error = NULL;
    g_assert_null(lcvm_compose_stamp_runner_digest("x", bad[i], &error));
    g_assert_nonnull(strstr(error->message, "expected sha256: followed by 64 lower-case hex"));
    g_assert_nonnull(strstr(error->message, bad[i]));
  }
}

static void
test_build_key_order_without_options(void)
{
  LcvmComposeInput in = { "services: {}\n", NULL, NULL, FALSE, FALSE };
  g_autofree char *s = lcvm_compose_build(&in, NULL, NULL);
  g_assert_cmpstr(s, ==,
                  "{\n    \"manifest_version\": 1,\n    \"name\": \"example\",\n"
                  "    \"version\": \"1.0.0\",\n    \"features\": [],\n"
                  "    \"runner\": \"docker-compose\",\n"
                  "    \"docker_compose_file\": \"services: {}\\n\",\n"
                  "    \"local_key_provider_enabled\": true,\n    \"public_logs\": false,\n"
                  "    \"secure_time\": false\n}");
}

static void
test_build_key_order_with_every_option(void)
{
  LcvmComposeInput in = { "c", "i", "", TRUE, TRUE };
  g_autofree char *s = lcvm_compose_build(&in, NULL, NULL);
  g_assert_cmpstr(s, ==,
                  "{\n    \"manifest_version\": 1,\n    \"name\": \"example\",\n"
                  "    \"version\": \"1.0.0\",\n    \"features\": [],\n"
                  "    \"runner\": \"docker-compose\",\n    \"docker_compose_file\": \"c\",\n"
                  "    \"local_key_provider_enabled\": true,\n    \"public_logs\": true,\n"
                  "    \"secure_time\": false,\n    \"public_sysinfo\": true,\n"
                  "    \"public_tcbinfo\": true,\n    \"init_script\": \"i\",\n"
                  "    \"pre_launch_script\": \"\"\n}");
}

static void
test_hash_is_sha256_hex(void)
{
  g_autofree char *h = lcvm_compose_hash("abc", 3);
  g_assert_cmpstr(h, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  g_assert_true(lcvm_sha256_hex_valid(h));
  g_assert_false(
      lcvm_sha256_hex_valid("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/pyjson/escapes_like_python", test_pyjson_escapes_like_python);
  g_test_add_func("/pyjson/escapes_non_ascii_as_utf16", test_pyjson_escapes_non_ascii_as_utf16);
  g_test_add_func("/pyjson/separators_without_indent", test_pyjson_separators_without_indent);
  g_test_add_func("/pyjson/indent_layout_and_insertion_order",
                  test_pyjson_indent_layout_and_insertion_order);
  g_test_add_func("/pyjson/refuses_floats", test_pyjson_refuses_floats);
  g_test_add_func("/compose/decode_normalises_line_ends_like_python",
                  test_decode_normalises_line_ends_like_python);
  g_test_add_func("/compose/decode_refuses_invalid_utf8_and_nul",
                  test_decode_refuses_invalid_utf8_and_nul);
  g_test_add_func("/compose/digest_is_needed_only_for_the_braced_reference",
                  test_digest_is_needed_only_for_the_braced_reference);
  g_test_add_func("/compose/stamping_follows_envsubst", test_stamping_follows_envsubst);
  g_test_add_func("/compose/stamping_requires_a_valid_digest",
                  test_stamping_requires_a_valid_digest);
  g_test_add_func("/compose/build_key_order_without_options", test_build_key_order_without_options);
  g_test_add_func("/compose/build_key_order_with_every_option",
                  test_build_key_order_with_every_option);
  g_test_add_func("/compose/hash_is_sha256_hex", test_hash_is_sha256_hex);
  return g_test_run();
}
