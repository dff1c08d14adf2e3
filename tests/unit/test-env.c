/* SPDX-License-Identifier: MIT */
/* The .env parser and its typed keys, as a table: each row is one behaviour, named after it.
 * The file is text: nothing in it is ever executed or expanded. */
#include "lcvm-env.h"
#include "lcvm-error.h"
#include <string.h>

typedef struct {
  const char *name;
  const char *input;
  gsize len;            /* 0: strlen(input) */
  const char *pairs[9]; /* expected KEY, VALUE, … in file order (NULL-terminated) */
  const char *error[4]; /* when set: parsing fails and the message contains each part */
} ParseCase;

static const ParseCase parse_cases[] = {
  { "plain_key_value", "A=1", 0, { "A", "1" } },
  { "blank_lines_and_comments_are_skipped",
    "\n# comment\n   # indented\n\nA=1\n",
    0,
    { "A", "1" } },
  { "export_prefix_is_stripped", "export A=1\n", 0, { "A", "1" } },
  { "export_prefix_with_a_tab", "export\tA=1", 0, { "A", "1" } },
  { "a_key_starting_with_export_is_a_key", "exportA=1", 0, { "exportA", "1" } },
  { "spaces_around_equals_are_allowed", "A = 1", 0, { "A", "1" } },
  { "double_quotes_are_removed", "A=\"x y\"", 0, { "A", "x y" } },
  { "single_quotes_are_removed", "A='x y'", 0, { "A", "x y" } },
  { "comment_after_unquoted_value", "A=1 # the port", 0, { "A", "1" } },
  { "hash_inside_a_word_is_text", "A=a#b", 0, { "A", "a#b" } },
  { "hash_right_after_equals_is_text", "A=#x", 0, { "A", "#x" } },
  { "hash_inside_quotes_is_text", "A=\"a # b\"", 0, { "A", "a # b" } },
  { "comment_after_quoted_value", "A=\"x\"  # note", 0, { "A", "x" } },
  { "text_after_closing_quote_is_refused",
    "A=\"x\"y",
    0,
    { NULL },
    { "line 1", "A", "after the closing quote" } },
  { "unterminated_quote_is_refused", "A=\"x\nB=1", 0, { NULL }, { "line 1", "never closed" } },
  { "crlf_line_ends", "A=1\r\nB=\"two\"\r\n", 0, { "A", "1", "B", "two" } },
  { "utf8_bom_is_skipped",
    "\xef\xbb\xbf"
    "A=1\n",
    0,
    { "A", "1" } },
  { "empty_value", "A=\n", 0, { "A", "" } },
  { "empty_quoted_value", "A=\"\"", 0, { "A", "" } },
  { "duplicate_key_is_refused",
    "A=1\nB=2\nA=3\n",
    0,
    { NULL },
    { "line 3", "A is already set on line 1" } },
  { "line_without_equals_is_refused",
    "A=1\nrm -rf /\n",
    0,
    { NULL },
    { "line 2", "not KEY=VALUE" } },
  { "key_starting_with_digit_is_refused", "1A=x", 0, { NULL }, { "not a variable name" } },
  { "key_with_dash_is_refused", "A-B=1", 0, { NULL }, { "'A-B'", "not a variable name" } },
  { "command_substitution_stays_text", "A=$(rm -rf /)", 0, { "A", "$(rm -rf /)" } },
  { "backticks_stay_text", "A=`id`", 0, { "A", "`id`" } },
  { "variable_references_are_not_expanded",
    "A=${HOME}/x\nB=\"$HOME\"",
    0,
    { "A", "${HOME}/x", "B", "$HOME" } },
  { "semicolons_and_pipes_stay_text", "A=1; rm -rf / | cat", 0, { "A", "1; rm -rf / | cat" } },
  { "no_escape_processing_in_double_quotes", "A=\"a\\nb\"", 0, { "A", "a\\nb" } },
  { "single_quote_inside_double_quotes", "A=\"it's\"", 0, { "A", "it's" } },
  { "utf8_values_are_kept",
    "A=h\xc3\xa9llo \xf0\x9f\x9a\x80",
    0,
    { "A", "h\xc3\xa9llo \xf0\x9f\x9a\x80" } },
  { "invalid_utf8_is_refused", "A=\xff\xfe", 0, { NULL }, { "line 1", "UTF-8" } },
  { "nul_byte_is_refused", "A=1\0B=2", 7, { NULL }, { "NUL" } },
  { "value_may_contain_equals", "A=b=c", 0, { "A", "b=c" } },
  { "trailing_blanks_are_trimmed", "A=1 \t ", 0, { "A", "1" } },
  { "every_bad_line_is_reported",
    "A\nB=\"x\n1C=2\nD=4",
    0,
    { NULL },
    { "line 1", "line 2", "line 3" } },
  { "file_order_is_kept", "Z=1\nA=2\nM=3", 0, { "Z", "1", "A", "2", "M", "3" } },
};

static void
test_parse(gconstpointer data)
{
  const ParseCase *c = data;
  g_autoptr(GError) error = NULL;
  gsize len = c->len ? c->len : strlen(c->input);
  g_autoptr(LcvmEnv) env = lcvm_env_parse(c->input, len, &error);
  if (c->error[0] != NULL) {
    g_assert_null(env);
    g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
    for (guint i = 0; i < G_N_ELEMENTS(c->error) && c->error[i]; i++)
      g_assert_nonnull(strstr(error->message, c->error[i]));
    return;
  }
  g_assert_no_error(error);
  guint n = 0;
  while (c->pairs[2 * n] != NULL)
    n++;
  g_assert_cmpuint(env->entries->len, ==, n);
  for (guint i = 0; i < n; i++) {
    LcvmEnvEntry *e = env->entries->pdata[i];
    g_assert_cmpstr(e->key, ==, c->pairs[2 * i]);
    g_assert_cmpstr(e->value, ==, c->pairs[2 * i + 1]);
    g_assert_cmpstr(lcvm_env_get(env, e->key), ==, c->pairs[2 * i + 1]);
  }
}

/* ---- typed keys ---- */

#define BASE "SSH_PORT=2200\nEXTERNAL_PORT=8001\n"

typedef struct {
  const char *name;
  const char *input;
  const char *error[4]; /* when set: apply fails and the message contains each part */
  const char *ports;    /* "host>guest,…" or NULL (not checked) */
  guint vcpus;          /* 0: not checked */
  guint64 memory_mib;   /* 0: not checked */
  guint64 disk_mib;     /* 0: not checked */
  const char *gpus;     /* comma list, "" none, NULL not checked */
  gboolean all_gpus;
  gboolean hugepages;
  gboolean pin_numa;
} TypedCase;

static const TypedCase typed_cases[] = {
  { "defaults_when_only_the_ports_are_set",
    BASE,
    { NULL },
    "2200>2200,8001>8001",
    4,
    4096,
    20480,
    "" },
  { "ssh_public_port_defaults_to_ssh_port",
    "SSH_PORT=22\nEXTERNAL_PORT=8001",
    { NULL },
    "22>22,8001>8001" },
  { "ssh_public_port_is_the_host_side",
    "SSH_PORT=22\nSSH_PUBLIC_PORT=2222\nEXTERNAL_PORT=8001",
    { NULL },
    "2222>22,8001>8001" },
  { "empty_ssh_public_port_means_default",
    BASE "SSH_PUBLIC_PORT=\n",
    { NULL },
    "2200>2200,8001>8001" },
  { "renting_range_as_a_list",
    BASE "RENTING_PORT_RANGE=\"19001,19002,19003\"",
    { NULL },
    "2200>2200,8001>8001,19001>19001,19002>19002,19003>19003" },
  { "renting_range_as_a_dash_range",
    BASE "RENTING_PORT_RANGE=40000-40002",
    { NULL },
    "2200>2200,8001>8001,40000>40000,40001>40001,40002>40002" },
  { "renting_range_mixes_ports_and_ranges_with_spaces",
    BASE "RENTING_PORT_RANGE=\"19001, 19005 - 19006,\"",
    { NULL },
    "2200>2200,8001>8001,19001>19001,19005>19005,19006>19006" },
  { "renting_range_reversed_is_refused",
    BASE "RENTING_PORT_RANGE=19010-19001",
    { "RENTING_PORT_RANGE='19010-19001'", "'19010-19001' is not valid", "a-b ranges" } },
  { "renting_port_zero_is_refused", BASE "RENTING_PORT_RANGE=0", { "'0' is not valid" } },
  { "renting_port_above_65535_is_refused",
    BASE "RENTING_PORT_RANGE=65536",
    { "'65536' is not valid" } },
  { "renting_range_too_large_is_refused",
    BASE "RENTING_PORT_RANGE=40000-65535",
    { "25536 ports", "at most 1024" } },
  { "renting_mappings_are_json_guest_host_pairs",
    BASE "RENTING_PORT_MAPPINGS=\"[[46681, 56681], [46682, 56682]]\"",
    { NULL },
    "2200>2200,8001>8001,56681>46681,56682>46682" },
  { "renting_mappings_without_spaces",
    BASE "RENTING_PORT_MAPPINGS=[[1,30000]]",
    { NULL },
    "2200>2200,8001>8001,30000>1" },
  { "renting_mappings_multiline_spacing",
    BASE "RENTING_PORT_MAPPINGS=\"[ [ 5,6 ] ,[7 , 8]]\"",
    { NULL },
    "2200>2200,8001>8001,6>5,8>7" },
  { "renting_mappings_not_json_is_refused",
    BASE "RENTING_PORT_MAPPINGS=46681:56681",
    { "RENTING_PORT_MAPPINGS='46681:56681' is not valid", "[guest_port, host_port] pairs" } },
  { "renting_mappings_triple_is_refused",
    BASE "RENTING_PORT_MAPPINGS=[[1,2,3]]",
    { "entry 1", "[1,2,3]" } },
  { "renting_mappings_strings_are_refused",
    BASE "RENTING_PORT_MAPPINGS='[[\"1\",\"2\"]]'",
    { "entry 1" } },
  { "renting_mappings_port_zero_is_refused",
    BASE "RENTING_PORT_MAPPINGS=[[0,2]]",
    { "entry 1", "ports 1-65535" } },
  { "mappings_and_range_together_are_refused",
    BASE "RENTING_PORT_MAPPINGS=[[1,30000]]\nRENTING_PORT_RANGE=19001",
    { "both set" } },
  { "neither_mappings_nor_range_is_allowed", BASE, { NULL }, "2200>2200,8001>8001" },
  { "duplicate_host_port_is_refused",
    "SSH_PORT=8001\nEXTERNAL_PORT=8001",
    { "host port 8001 is used twice", "SSH_PUBLIC_PORT", "EXTERNAL_PORT" } },
  { "range_overlapping_another_port_is_refused",
    BASE "RENTING_PORT_RANGE=8000-8002",
    { "host port 8001 is used twice", "RENTING_PORT_RANGE" } },
  { "range_listing_a_port_twice_is_refused",
    BASE "RENTING_PORT_RANGE=19001,19001",
    { "host port 19001 is used twice" } },
  { "ssh_port_is_required", "EXTERNAL_PORT=8001", { "SSH_PORT is not set", "1-65535" } },
  { "external_port_is_required", "SSH_PORT=22", { "EXTERNAL_PORT is not set" } },
  { "port_that_is_not_a_number_is_refused",
    "SSH_PORT=ssh\nEXTERNAL_PORT=8001",
    { "SSH_PORT='ssh' is not valid", "a port number 1-65535" } },
  { "negative_port_is_refused", "SSH_PORT=-1\nEXTERNAL_PORT=8001", { "SSH_PORT='-1'" } },
  { "memory_in_gigabytes", BASE "CVM_MEMORY=64G", { NULL }, NULL, 0, 65536 },
  { "memory_suffixes_are_case_insensitive", BASE "CVM_MEMORY=2g", { NULL }, NULL, 0, 2048 },
  { "memory_in_megabytes", BASE "CVM_MEMORY=512M", { NULL }, NULL, 0, 512 },
  { "memory_in_terabytes", BASE "CVM_MEMORY=1T", { NULL }, NULL, 0, 1048576 },
  { "bare_memory_number_is_mib", BASE "CVM_MEMORY=8192", { NULL }, NULL, 0, 8192 },
  { "memory_with_k_suffix_is_refused",
    BASE "CVM_MEMORY=1048576K",
    { "CVM_MEMORY='1048576K' is not valid", "T, G or M suffix" } },
  { "memory_that_is_not_a_size_is_refused", BASE "CVM_MEMORY=lots", { "CVM_MEMORY='lots'" } },
  { "disk_below_one_gib_is_refused",
    BASE "CVM_DISK=512M",
    { "CVM_DISK='512M' is too small", "1024M" } },
  { "disk_in_gigabytes", BASE "CVM_DISK=200G", { NULL }, NULL, 0, 0, 204800 },
  { "vcpus_are_read", BASE "CVM_VCPUS=16", { NULL }, NULL, 16 },
  { "zero_vcpus_are_refused", BASE "CVM_VCPUS=0", { "CVM_VCPUS='0' is not valid", "1-1024" } },
  { "vcpus_that_are_not_a_number_are_refused", BASE "CVM_VCPUS=four", { "CVM_VCPUS='four'" } },
  { "gpu_slots_are_normalised",
    BASE "CVM_GPUS=\"19:00.0, 3B:00.0\"",
    { NULL },
    NULL,
    0,
    0,
    0,
    "0000:19:00.0,0000:3b:00.0" },
  { "gpus_all_is_resolved_later", BASE "CVM_GPUS=all", { NULL }, NULL, 0, 0, 0, "", TRUE },
  { "gpu_slot_that_is_not_a_slot_is_refused",
    BASE "CVM_GPUS=19:00.0,gpu0",
    { "CVM_GPUS='19:00.0,gpu0'", "'gpu0' is not valid", "BB:DD.F" } },
  { "gpu_slot_listed_twice_is_refused",
    BASE "CVM_GPUS=19:00.0,0000:19:00.0",
    { "0000:19:00.0 is listed twice" } },
  { "hugepages_and_pin_numa_are_booleans",
    BASE "CVM_HUGEPAGES=true\nCVM_PIN_NUMA=yes",
    { NULL },
    NULL,
    0,
    0,
    0,
    NULL,
    FALSE,
    TRUE,
    TRUE },
  { "hugepages_and_pin_numa_default_to_false",
    BASE "CVM_HUGEPAGES=\nCVM_PIN_NUMA=false",
    { NULL },
    NULL,
    0,
    0,
    0,
    NULL,
    FALSE,
    FALSE,
    FALSE },
  { "boolean_garbage_is_refused",
    BASE "CVM_PIN_NUMA=maybe",
    { "CVM_PIN_NUMA='maybe' is not valid", "true or false" } },
  { "every_bad_value_is_reported_at_once",
    "SSH_PORT=x\nEXTERNAL_PORT=8001\nCVM_MEMORY=64X\nCVM_VCPUS=0\nCVM_GPUS=nope",
    { "SSH_PORT='x'", "CVM_MEMORY='64X'", "CVM_VCPUS='0'" } },
};

static char *
ports_text(const LcvmManifest *m)
{
  g_autoptr(GString) s = g_string_new(NULL);
  for (guint i = 0; i < m->ports->len; i++) {
    const LcvmPortForward *p = &g_array_index(m->ports, LcvmPortForward, i);
    g_assert_cmpstr(p->address, ==, "0.0.0.0");
    g_assert_cmpint(p->protocol, ==, LCVM_PROTOCOL_TCP);
    g_string_append_printf(s, "%s%u>%u", i ? "," : "", p->host_port, p->guest_port);
  }
  return g_string_free(g_steal_pointer(&s), FALSE);
}

static void
test_typed(gconstpointer data)
{
  const TypedCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmEnv) env = lcvm_env_parse(c->input, strlen(c->input), &error);
  g_assert_no_error(error);
  g_autoptr(LcvmManifest) m = lcvm_manifest_new();
  gboolean ok = lcvm_env_apply(env, m, &error);
  if (c->error[0] != NULL) {
    g_assert_false(ok);
    g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
    for (guint i = 0; i < G_N_ELEMENTS(c->error) && c->error[i]; i++)
      if (strstr(error->message, c->error[i]) == NULL)
        g_error("'%s' not in: %s", c->error[i], error->message);
    return;
  }
  g_assert_no_error(error);
  g_assert_true(ok);
  if (c->ports != NULL) {
    g_autofree char *ports = ports_text(m);
    g_assert_cmpstr(ports, ==, c->ports);
  }
  if (c->vcpus)
    g_assert_cmpuint(m->vcpus, ==, c->vcpus);
  if (c->memory_mib)
    g_assert_cmpuint(m->memory, ==, c->memory_mib << 20);
  if (c->disk_mib)
    g_assert_cmpuint(m->disk, ==, c->disk_mib << 20);
  if (c->gpus != NULL) {
    g_autofree char *gpus = g_strjoinv(",", m->gpus);
    g_assert_cmpstr(gpus, ==, c->gpus);
  }
  g_assert_cmpint(m->gpu_attach, ==, c->all_gpus ? LCVM_GPU_ATTACH_ALL : LCVM_GPU_ATTACH_LISTED);
  g_assert_cmpint(m->hugepages, ==, c->hugepages);
  g_assert_cmpint(m->pin_numa, ==, c->pin_numa);
}

static void
test_user_config_is_python_json_in_file_order(void)
{
  const char *text = "Z=1\nexport A=\"caf\xc3\xa9 \\ q\"\nEMPTY=\n";
  g_autoptr(LcvmEnv) env = lcvm_env_parse(text, strlen(text), NULL);
  g_assert_nonnull(env);
  gsize len = 0;
  g_autofree char *json = lcvm_env_user_config(env, &len, NULL);
  g_assert_cmpstr(json, ==,
                  "{\n    \"env_vars\": {\n        \"Z\": \"1\",\n"
                  "        \"A\": \"caf\\u00e9 \\\\ q\",\n        \"EMPTY\": \"\"\n    }\n}");
  g_assert_cmpuint(len, ==, strlen(json));
}

/* Found by fuzzing: json-glib recursed once per '[' of a 150 KB value and overflowed the stack.
 * The refusal echoes a bounded, printable part of the value. */
static void
test_mappings_nested_past_the_limit_are_refused_not_a_crash(void)
{
  GString *text = g_string_new(BASE "RENTING_PORT_MAPPINGS=");
  for (guint i = 0; i < 150 * 1000; i++)
    g_string_append_c(text, '[');
  g_string_append(text, "\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmEnv) env = lcvm_env_parse(text->str, text->len, &error);
  g_assert_no_error(error);
  g_autoptr(LcvmManifest) m = lcvm_manifest_new();
  g_assert_false(lcvm_env_apply(env, m, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(error->message, "RENTING_PORT_MAPPINGS='[[["));
  g_assert_cmpuint(strlen(error->message), <, 1024);
  g_string_free(text, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS(parse_cases); i++) {
    g_autofree char *path = g_strdup_printf("/env/parse/%s", parse_cases[i].name);
    g_test_add_data_func(path, &parse_cases[i], test_parse);
  }
  for (guint i = 0; i < G_N_ELEMENTS(typed_cases); i++) {
    g_autofree char *path = g_strdup_printf("/env/typed/%s", typed_cases[i].name);
    g_test_add_data_func(path, &typed_cases[i], test_typed);
  }
  g_test_add_func("/env/mappings_nested_past_the_limit_are_refused_not_a_crash",
                  test_mappings_nested_past_the_limit_are_refused_not_a_crash);
  g_test_add_func("/env/user_config_is_python_json_in_file_order",
                  test_user_config_is_python_json_in_file_order);
  return g_test_run();
}
