/* SPDX-License-Identifier: MIT */
/* The key provider's MRENCLAVE read from its container logs, which lium-cvm does not trust,
 * and from record files. */
#include "lcvm-mrenclave.h"

#include <string.h>

#define MR  "8a5c0c8a3b61d3f0b5d3e1a9f5c7e2b4d6a8c0e2f4a6b8d0c2e4f6a8b0d2e4f6"
#define MR2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
sigstruct_view_output_as_docker_compose_prints_it(void)
{
  const char *logs = "dstack-key-provider  | Attributes:\n"
                     "dstack-key-provider  |     mr_signer: " MR2 "\n"
                     "dstack-key-provider  |     mr_enclave: " MR "\n"
                     "dstack-key-provider  |     isv_prod_id: 0\n"
                     "dstack-key-provider  | Gramine is starting. PRODUCTION mode\n";
  g_autofree char *mr = lcvm_mrenclave_from_logs(logs);
  g_assert_cmpstr(mr, ==, MR);
}

static void
labelled_forms_and_case(void)
{
  const char *forms[] = {
    "MRENCLAVE: " MR,
    "MRENCLAVE=" MR,
    "mrenclave " MR,
    "[INFO] key provider MRENCLAVE: \"" MR "\"",
    "MR_ENCLAVE:\t" MR,
    "mr_enclave: 8A5C0C8A3B61D3F0B5D3E1A9F5C7E2B4D6A8C0E2F4A6B8D0C2E4F6A8B0D2E4F6",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(forms); i++) {
    g_autofree char *mr = lcvm_mrenclave_from_logs(forms[i]);
    g_assert_cmpstr(mr, ==, MR);
  }
}

static void
the_last_one_printed_wins(void)
{
  g_autofree char *mr =
      lcvm_mrenclave_from_logs("mr_enclave: " MR2 "\nrestarting\nmr_enclave: " MR "\n");
  g_assert_cmpstr(mr, ==, MR);
}

static void
hostile_or_unlabelled_text_gives_nothing(void)
{
  const char *cases[] = {
    "",
    "no label here " MR,
    "mr_signer: " MR,
    "mr_enclave: " MR "0",                  /* 65 hex digits */
    "mr_enclave: 8a5c0c8a3b61d3f0b5d3e1a9", /* too short */
    "mr_enclave: " MR "x",                  /* glued to more text */
    "mr_enclave: g" MR,
    "mr_enclave:\n" MR, /* the value is on the next line */
    "mrenclave_hash: " MR,
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *mr = lcvm_mrenclave_from_logs(cases[i]);
    if (mr != NULL)
      g_error("case %" G_GSIZE_FORMAT " ('%s') gave %s", i, cases[i], mr);
  }
  /* A huge line is skipped unread, the next line still counts. */
  g_autoptr(GString) big = g_string_new("mr_enclave: " MR2);
  for (int i = 0; i < 100000; i++)
    g_string_append_c(big, ' ');
  g_string_append(big, "\nmr_enclave: " MR "\n");
  g_autofree char *mr = lcvm_mrenclave_from_logs(big->str);
  g_assert_cmpstr(mr, ==, MR);
}

static void
records_hold_exactly_one_lower_case_value(void)
{
  g_autofree char *ok = lcvm_mrenclave_from_record(MR "\n", strlen(MR) + 1);
  g_assert_cmpstr(ok, ==, MR);
  const char *bad[] = { "", MR "0\n", "8A5C" MR "\n", "x", MR "\n\n\n", MR " \n" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *v = lcvm_mrenclave_from_record(bad[i], strlen(bad[i]));
    g_assert_null(v);
  }
  g_assert_false(
      lcvm_mrenclave_valid("8A5C0C8A3B61D3F0B5D3E1A9F5C7E2B4D6A8C0E2F4A6B8D0C2E4F6A8B0D2E4F6"));
  g_assert_true(lcvm_mrenclave_valid(MR));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/mrenclave/sigstruct-view-output-as-docker-compose-prints-it",
                  sigstruct_view_output_as_docker_compose_prints_it);
  g_test_add_func("/mrenclave/labelled-forms-and-case", labelled_forms_and_case);
  g_test_add_func("/mrenclave/the-last-one-printed-wins", the_last_one_printed_wins);
  g_test_add_func("/mrenclave/hostile-or-unlabelled-text-gives-nothing",
                  hostile_or_unlabelled_text_gives_nothing);
  g_test_add_func("/mrenclave/records-hold-exactly-one-lower-case-value",
                  records_hold_exactly_one_lower_case_value);
  return g_test_run();
}
