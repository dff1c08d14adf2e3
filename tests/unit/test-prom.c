/* SPDX-License-Identifier: MIT */
/* The Prometheus text writer: families and samples in the exposition format (a family without
 * samples not at all), and label values
 * from a guest (boot progress) that try to end a label, a line or a sample early, or are not
 * UTF-8, come out as one harmless label value. */
#include "lcvm-prom.h"

static void
test_family_and_samples(void)
{
  g_autoptr(LcvmProm) p = lcvm_prom_new();
  lcvm_prom_family(p, "lium_cvm_empty", "gauge", "A family without samples leaves no trace");
  lcvm_prom_family(p, "lium_cvm_up", "gauge", "Up\\down\nsecond line");
  lcvm_prom_sample(p, 1, NULL);
  lcvm_prom_family(p, "lium_cvm_vm_state", "gauge", "State");
  lcvm_prom_sample(p, 0, "vm", "a", "state", "running", NULL);
  lcvm_prom_sample(p, 1764240000, "vm", NULL, NULL);
  lcvm_prom_sample(p, 0.25, NULL);
  g_assert_cmpstr(p->text->str, ==,
                  "# HELP lium_cvm_up Up\\\\down\\nsecond line\n"
                  "# TYPE lium_cvm_up gauge\n"
                  "lium_cvm_up 1\n"
                  "# HELP lium_cvm_vm_state State\n"
                  "# TYPE lium_cvm_vm_state gauge\n"
                  "lium_cvm_vm_state{vm=\"a\",state=\"running\"} 0\n"
                  "lium_cvm_vm_state{vm=\"\"} 1764240000\n"
                  "lium_cvm_vm_state 0.25\n");
}

static void
test_hostile_label_values_stay_inside_their_quotes(void)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
    { "plain", "plain" },
    { "a\"} 1\nlium_cvm_host_ready 1\n#", "a\\\"} 1\\nlium_cvm_host_ready 1\\n#" },
    { "back\\slash\\", "back\\\\slash\\\\" },
    { "\\\"", "\\\\\\\"" },
    { "bad \xff\xfe utf8", "bad \xef\xbf\xbd\xef\xbf\xbd utf8" },
    { "", "" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *escaped = lcvm_prom_escape_label(cases[i].in, 0);
    g_assert_cmpstr(escaped, ==, cases[i].out);
    g_assert_null(strchr(escaped, '\n'));
  }
}

static void
test_long_label_values_are_clipped(void)
{
  g_autofree char *long_value = g_strnfill(1000, 'x');
  g_autofree char *clipped = lcvm_prom_escape_label(long_value, 10);
  g_assert_cmpstr(clipped, ==, "xxxxxxxxx…");
  /* clipping never splits an escape or a multi-byte character */
  g_autofree char *quotes = lcvm_prom_escape_label("\"\"\"\"\"äääää", 6);
  g_assert_cmpstr(quotes, ==, "\\\"\\\"\\\"\\\"\\\"…");
  g_autofree char *umlauts = lcvm_prom_escape_label("ääääääää", 3);
  g_assert_cmpstr(umlauts, ==, "ää…");

  g_autoptr(LcvmProm) p = lcvm_prom_new();
  lcvm_prom_family(p, "lium_cvm_vm_boot_progress", "gauge", "Progress");
  lcvm_prom_sample(p, 1, "progress", long_value, NULL);
  g_assert_cmpuint(strlen(p->text->str), <, 300);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/prom/family-and-samples", test_family_and_samples);
  g_test_add_func("/prom/hostile-label-values-stay-inside-their-quotes",
                  test_hostile_label_values_stay_inside_their_quotes);
  g_test_add_func("/prom/long-label-values-are-clipped", test_long_label_values_are_clipped);
  return g_test_run();
}
