/* SPDX-License-Identifier: MIT */
/* The known-good list: the shipped data file says what field-2026 §4 says validators accept,
 * and the parser refuses every malformed value instead of accepting or rejecting everything. */
#include "lcvm-known-good.h"

#include <string.h>

#define LIUM_0511 "a6eafc5f007f642d8ea90c7fa8881f1e6715720ccb531941a28218f4f26d7b02"

static LcvmKnownGood *
parse(const char *text, GError **error)
{
  return lcvm_known_good_parse(text, strlen(text), "test.conf", error);
}

static LcvmKnownGood *
shipped(void)
{
  g_autofree char *path =
      g_test_build_filename(G_TEST_DIST, "..", "..", "data", "known-good.conf", NULL);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path, &text, &len, NULL));
  g_autoptr(GError) error = NULL;
  LcvmKnownGood *kg = lcvm_known_good_parse(text, len, path, &error);
  g_assert_no_error(error);
  return kg;
}

static LcvmQemuVersion
qemu(const char *line)
{
  LcvmQemuVersion v;
  g_assert_true(lcvm_qemu_version_parse(line, &v, NULL));
  return v;
}

static void
shipped_list_accepts_lium_0511_and_the_dstack_qemu(void)
{
  g_autoptr(LcvmKnownGood) kg = shipped();
  const LcvmKnownImage *image = lcvm_known_good_image(kg, "dstack-nvidia-0.5.11");
  g_assert_nonnull(image);
  g_assert_cmpstr(image->digests[0], ==, LIUM_0511);
  g_autofree char *reason = NULL;
  g_assert_true(lcvm_known_good_image_ok(kg, "dstack-nvidia-0.5.11", LIUM_0511, &reason));
  g_assert_null(reason);
  LcvmQemuVersion v = qemu("QEMU emulator version 9.2.1 (v9.2.1-12-gdbcec07c08)");
  g_assert_cmpint(lcvm_known_good_qemu(kg, &v, &reason), ==, LCVM_KNOWN_GOOD_ACCEPTED);
  g_assert_cmpuint(kg->tdx_min_major, ==, 2);
  g_assert_cmpuint(kg->tdx_min_build, ==, 882);
}

static void
other_digests_and_qemus_are_rejected_in_those_words(void)
{
  g_autoptr(LcvmKnownGood) kg = shipped();
  g_autofree char *reason = NULL;
  const char *other = "0000000000000000000000000000000000000000000000000000000000000000";
  g_assert_false(lcvm_known_good_image_ok(kg, "dstack-nvidia-0.5.11", other, &reason));
  g_assert_nonnull(strstr(reason, "validators will reject"));
  g_assert_nonnull(strstr(reason, LIUM_0511));
  g_clear_pointer(&reason, g_free);
  g_assert_false(lcvm_known_good_image_ok(kg, "dstack-0.6.0", NULL, &reason));
  g_assert_nonnull(strstr(reason, "(none)"));
  g_clear_pointer(&reason, g_free);

  LcvmQemuVersion ten = qemu("QEMU emulator version 10.2.1");
  g_assert_cmpint(lcvm_known_good_qemu(kg, &ten, &reason), ==, LCVM_KNOWN_GOOD_REJECTED);
  g_assert_nonnull(strstr(reason, "validators will reject"));
  g_clear_pointer(&reason, g_free);
  LcvmQemuVersion distro = qemu("QEMU emulator version 9.2.1 (Debian 1:9.2.1+ds-1ubuntu5)");
  g_assert_cmpint(lcvm_known_good_qemu(kg, &distro, &reason), ==, LCVM_KNOWN_GOOD_DOUBTFUL);
}

static void
tdx_minimum_applies_to_its_series_only(void)
{
  g_autoptr(LcvmKnownGood) kg = shipped();
  g_autofree char *reason = NULL;
  LcvmTdxVersion low = { .major = 2, .minor = 0, .build_num = 786 };
  g_assert_cmpint(lcvm_known_good_tdx_module(kg, &low, &reason), ==, LCVM_KNOWN_GOOD_REJECTED);
  g_assert_nonnull(strstr(reason, "No matching TCB level found"));
  g_clear_pointer(&reason, g_free);
  LcvmTdxVersion ok = { .major = 2, .minor = 0, .build_num = 882 };
  g_assert_cmpint(lcvm_known_good_tdx_module(kg, &ok, &reason), ==, LCVM_KNOWN_GOOD_ACCEPTED);
  LcvmTdxVersion old_series = { .major = 1, .minor = 5, .build_num = 1 };
  g_assert_cmpint(lcvm_known_good_tdx_module(kg, &old_series, &reason), ==,
                  LCVM_KNOWN_GOOD_ACCEPTED);
  g_assert_nonnull(strstr(reason, "applies to the 2.x series only"));
}

static void
digests_are_compared_case_insensitively_as_lower_case(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmKnownGood) kg =
      parse("[image x]\ndigests=" LIUM_0511 ";\n[qemu]\nversions=9.2.1\n", &error);
  g_assert_no_error(error);
  g_autoptr(LcvmKnownGood) upper =
      parse("[image x]\ndigests=A6EAFC5F007F642D8EA90C7FA8881F1E6715720CCB531941A28218F4F26D7B02\n"
            "[qemu]\nversions=9.2.1\n",
            &error);
  g_assert_no_error(error);
  g_autofree char *reason = NULL;
  g_assert_true(lcvm_known_good_image_ok(upper, "x", LIUM_0511, &reason));
  g_assert_cmpuint(kg->tdx_min_major, ==, 0); /* no [tdx-module]: not judged */
}

static void
malformed_lists_are_refused_naming_group_and_key(void)
{
  static const struct {
    const char *text;
    const char *needle;
  } cases[] = {
    { "[qemu]\nversions=9.2.1\n[image x]\n", "[image x] digests" },
    { "[qemu]\nversions=9.2.1\n[image x]\ndigests=;\n", "[image x] digests" },
    { "[qemu]\nversions=9.2.1\n[image x]\ndigests=abc\n", "[image x] digests" },
    { "[qemu]\nversions=9.2.1\n[image x]\ndigests=" LIUM_0511 "0\n", "[image x] digests" },
    { "[qemu]\nversions=9.2.1\n[image x]\ndigests=" LIUM_0511 "\ntarball_sha256=zz\n",
      "tarball_sha256" },
    { "[qemu]\nversions=9.2.1\n[image ]\ndigests=" LIUM_0511 "\n", "image NAME" },
    { "[qemu]\n", "[qemu] versions" },
    { "[image x]\ndigests=" LIUM_0511 "\n", "[qemu] versions" },
    { "[qemu]\nversions=9.2\n", "[qemu] versions" },
    { "[qemu]\nversions=9.2.1.4\n", "[qemu] versions" },
    { "[qemu]\nversions=9.x.1\n", "[qemu] versions" },
    { "[qemu]\nversions=9.2.1\ndistro_packages=maybe\n", "distro_packages" },
    { "[qemu]\nversions=9.2.1\n[tdx-module]\nmin_build=-1\n", "min_build" },
    { "[qemu]\nversions=9.2.1\n[tdx-module]\nmin_build=99999999999\n", "min_build" },
    { "[qemu]\nversions=9.2.1\n[tdx-module]\nmin_major=300\n", "min_major" },
    { "[qemu]\nversions=9.2.1\n[imagex]\n", "[imagex]" },
    { "[qemu]\nversions=9.2.1\nnot a key file line\n", "test.conf" },
    { "\xff\xfe[qemu]\n", "test.conf" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(LcvmKnownGood) kg = parse(cases[i].text, &error);
    g_assert_null(kg);
    g_assert_nonnull(error);
    if (strstr(error->message, cases[i].needle) == NULL)
      g_error("case %" G_GSIZE_FORMAT ": '%s' does not name '%s'", i, error->message,
              cases[i].needle);
  }
}

static void
config_selects_the_file_and_a_missing_one_is_an_error(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmConfig) config =
      lcvm_config_load_data("[attestation]\nknown_good=/nonexistent/known-good.conf\n", &error);
  g_assert_no_error(error);
  g_autofree char *path = lcvm_known_good_path(config);
  g_assert_cmpstr(path, ==, "/nonexistent/known-good.conf");
  g_autoptr(LcvmKnownGood) kg = lcvm_known_good_load(config, &error);
  g_assert_null(kg);
  g_assert_nonnull(strstr(error->message, "set [attestation] known_good"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/known-good/shipped-list-accepts-lium-0511-and-the-dstack-qemu",
                  shipped_list_accepts_lium_0511_and_the_dstack_qemu);
  g_test_add_func("/known-good/other-digests-and-qemus-are-rejected-in-those-words",
                  other_digests_and_qemus_are_rejected_in_those_words);
  g_test_add_func("/known-good/tdx-minimum-applies-to-its-series-only",
                  tdx_minimum_applies_to_its_series_only);
  g_test_add_func("/known-good/digests-are-compared-as-lower-case",
                  digests_are_compared_case_insensitively_as_lower_case);
  g_test_add_func("/known-good/malformed-lists-are-refused-naming-group-and-key",
                  malformed_lists_are_refused_naming_group_and_key);
  g_test_add_func("/known-good/config-selects-the-file-and-a-missing-one-is-an-error",
                  config_selects_the_file_and_a_missing_one_is_an_error);
  return g_test_run();
}
