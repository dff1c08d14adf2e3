/* SPDX-License-Identifier: MIT */
/* The key provider's wire format as the bridge writes and reads it (reference/dstack.md §4.5):
 * u32 big-endian length + {"quote":[n,...]} out, {"encrypted_key":[…],"provider_quote":[…]}
 * back, frames of 1 byte to 8 MiB. */
#include "hostapi.h"
#include <string.h>

static void
test_request_is_a_big_endian_length_and_compact_json(void)
{
  const guint8 quote[] = { 0, 1, 255 };
  g_autoptr(GBytes) frame = hostapi_provider_encode(quote, sizeof quote);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(frame, &len);
  const char *json = "{\"quote\":[0,1,255]}";
  g_assert_cmpuint(len, ==, 4 + strlen(json));
  g_assert_cmpuint(data[0], ==, 0);
  g_assert_cmpuint(data[1], ==, 0);
  g_assert_cmpuint(data[2], ==, 0);
  g_assert_cmpuint(data[3], ==, strlen(json));
  g_assert_cmpmem(data + 4, len - 4, json, strlen(json));
}

static void
test_frame_length_is_accepted_from_1_byte_to_8_mib(void)
{
  const struct {
    guint8 header[4];
    gboolean ok;
  } cases[] = {
    { { 0, 0, 0, 0 }, FALSE },    { { 0, 0, 0, 1 }, TRUE },
    { { 0, 0x80, 0, 0 }, TRUE }, /* exactly 8 MiB */
    { { 0, 0x80, 0, 1 }, FALSE }, { { 0xff, 0xff, 0xff, 0xff }, FALSE },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    guint32 n = 0;
    g_autoptr(GError) error = NULL;
    g_assert_cmpint(hostapi_provider_frame_length(cases[i].header, &n, &error), ==, cases[i].ok);
    if (!cases[i].ok)
      g_assert_error(error, HOSTAPI_ERROR, HOSTAPI_ERROR_BAD_ANSWER);
  }
}

static void
test_answer_arrays_become_lowercase_hex(void)
{
  const char *json = "{\"encrypted_key\":[0,171,255],\"provider_quote\":[16],\"extra\":1}";
  g_autofree char *key = NULL;
  g_autofree char *quote = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(hostapi_provider_decode(json, strlen(json), &key, &quote, &error));
  g_assert_no_error(error);
  g_assert_cmpstr(key, ==, "00abff");
  g_assert_cmpstr(quote, ==, "10");
}

static void
test_malformed_answers_are_bad_answers(void)
{
  const char *bad[] = {
    "",
    "not json",
    "[1,2]",
    "{\"encrypted_key\":[1]}",
    "{\"encrypted_key\":[],\"provider_quote\":[1]}",
    "{\"encrypted_key\":[256],\"provider_quote\":[1]}",
    "{\"encrypted_key\":[-1],\"provider_quote\":[1]}",
    "{\"encrypted_key\":[1.5],\"provider_quote\":[1]}",
    "{\"encrypted_key\":[true],\"provider_quote\":[1]}",
    "{\"encrypted_key\":[\"1\"],\"provider_quote\":[1]}",
    "{\"encrypted_key\":[[1]],\"provider_quote\":[1]}",
    "{\"encrypted_key\":\"00\",\"provider_quote\":[1]}",
    "{\"encrypted_key\":[1],\"provider_quote\":null}",
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *key = NULL;
    g_autofree char *quote = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_false(hostapi_provider_decode(bad[i], strlen(bad[i]), &key, &quote, &error));
    g_assert_error(error, HOSTAPI_ERROR, HOSTAPI_ERROR_BAD_ANSWER);
    g_assert_null(key);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/hostapi-frame/request-is-a-big-endian-length-and-compact-json",
                  test_request_is_a_big_endian_length_and_compact_json);
  g_test_add_func("/hostapi-frame/frame-length-is-accepted-from-1-byte-to-8-mib",
                  test_frame_length_is_accepted_from_1_byte_to_8_mib);
  g_test_add_func("/hostapi-frame/answer-arrays-become-lowercase-hex",
                  test_answer_arrays_become_lowercase_hex);
  g_test_add_func("/hostapi-frame/malformed-answers-are-bad-answers",
                  test_malformed_answers_are_bad_answers);
  return g_test_run();
}
