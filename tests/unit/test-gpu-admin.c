/* SPDX-License-Identifier: MIT */
/* gpu-admin-tools: the argv the helper runs (full BDF, modes from a fixed list), the reader of
 * its output (every line known, or an error quoting it; a mode is never guessed), and the check
 * that root may run the configured copy. Output samples follow reference/gpu-and-host.md §A.3,
 * the first one the real line of NVIDIA/gpu-admin-tools issue 13. */
#include "lcvm-error.h"
#include "lcvm-gpu-admin.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define TOOL "/opt/gpu-admin-tools/nvidia_gpu_tools.py"
#define SLOT "0000:3a:00.0"
#define DEV  "GPU 0000:3a:00.0 H100 0x2321 BAR0 0x7e042000000"
#define TS   "2025-09-16,12:34:15.925 "

#define BANNER                                                                                     \
  "NVIDIA GPU Tools version v2025.10.20o\n"                                                        \
  "Command line arguments: ['" TOOL "', '--gpu-bdf=" SLOT "', '--query-cc-mode']\n"                \
  "Topo:\n"                                                                                        \
  "  Intel root port 0000:39:01.0\n"                                                               \
  "   " DEV "\n"

static void
assert_strv(GStrv got, const char *const *want)
{
  g_autofree char *g = g_strjoinv(" ", got);
  g_autofree char *w = g_strjoinv(" ", (char **)want);
  g_assert_cmpstr(g, ==, w);
}

static void
assert_message_has(const GError *error, const char *fragment)
{
  g_assert_nonnull(error);
  if (strstr(error->message, fragment) == NULL)
    g_error("'%s' lacks '%s'", error->message, fragment);
}

/* ---- argv ---- */

static void
test_query_names_the_full_bdf_and_both_modes(void)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = lcvm_gpu_admin_query_argv(
      TOOL, SLOT, LCVM_GPU_ADMIN_QUERY_CC | LCVM_GPU_ADMIN_QUERY_PPCIE, &error);
  g_assert_no_error(error);
  const char *const want[] = {
    "/usr/bin/python3",   "-E", "-s", "-B", TOOL, "--gpu-bdf=" SLOT, "--query-cc-mode",
    "--query-ppcie-mode", NULL
  };
  assert_strv(argv, want);
}

static void
test_set_always_resets_after_the_switch(void)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) cc = lcvm_gpu_admin_set_argv(TOOL, SLOT, LCVM_GPU_KNOB_CC, "devtools", &error);
  g_assert_no_error(error);
  const char *const want_cc[] = { "/usr/bin/python3",
                                  "-E",
                                  "-s",
                                  "-B",
                                  TOOL,
                                  "--gpu-bdf=" SLOT,
                                  "--set-cc-mode=devtools",
                                  "--reset-after-cc-mode-switch",
                                  NULL };
  assert_strv(cc, want_cc);
  g_auto(GStrv) ppcie = lcvm_gpu_admin_set_argv(TOOL, SLOT, LCVM_GPU_KNOB_PPCIE, "off", &error);
  g_assert_no_error(error);
  g_assert_cmpstr(ppcie[6], ==, "--set-ppcie-mode=off");
  g_assert_cmpstr(ppcie[7], ==, "--reset-after-ppcie-mode-switch");
}

/* The tool matches BDFs by substring: a short or decorated slot could select another device. */
static void
test_argv_refuses_anything_but_a_canonical_slot(void)
{
  const char *bad[] = { "3a:00.0", "0000:3A:00.0", "0000:3a:00", "0000:3a:00.0 --set-cc-mode=off",
                        "",        "gpus[0]" };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    g_assert_null(lcvm_gpu_admin_query_argv(TOOL, bad[i], LCVM_GPU_ADMIN_QUERY_CC, &error));
    g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  }
}

static void
test_argv_refuses_modes_outside_the_list(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(lcvm_gpu_admin_set_argv(TOOL, SLOT, LCVM_GPU_KNOB_PPCIE, "devtools", &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_clear_error(&error);
  g_assert_null(lcvm_gpu_admin_set_argv(TOOL, SLOT, LCVM_GPU_KNOB_CC, "on --log=debug", &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_clear_error(&error);
  g_assert_null(lcvm_gpu_admin_query_argv(TOOL, SLOT, 0, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
}

/* ---- output ---- */

static void
test_query_output_gives_both_modes(void)
{
  const char *err = TS "INFO     Selected " DEV "\n" TS "INFO     " DEV " CC mode is on\n" TS
                       "WARNING  " DEV " has CC mode on, some functionality may not work\n" TS
                       "INFO     " DEV " PPCIe mode is off\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(SLOT, BANNER, err, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(o->selected, ==, DEV);
  g_assert_cmpstr(o->cc, ==, "on");
  g_assert_cmpstr(o->ppcie, ==, "off");
  g_assert_false(o->broken);
  g_assert_cmpuint(o->problems->len, ==, 0);
}

static void
test_set_output_shows_the_set_and_the_reset(void)
{
  const char *err = TS "INFO     Selected " DEV "\n" TS "INFO     " DEV
                       " CC mode set to on. It will be active after GPU reset.\n" TS "INFO     " DEV
                       " was reset to apply the new CC mode.\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(SLOT, BANNER, err, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(o->set[LCVM_GPU_KNOB_CC], ==, "on");
  g_assert_true(o->reset[LCVM_GPU_KNOB_CC]);
  g_assert_null(o->set[LCVM_GPU_KNOB_PPCIE]);
  g_assert_false(o->reset[LCVM_GPU_KNOB_PPCIE]);
  g_assert_null(o->cc);
}

static void
test_invalid_devtools_state_is_a_known_mode(void)
{
  const char *err = TS "INFO     " DEV " CC mode is invalid-devtools-only-fix-by-setting-cc-mode\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(SLOT, "", err, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(o->cc, ==, "invalid-devtools-only-fix-by-setting-cc-mode");
}

static void
test_a_line_of_no_known_form_is_an_error_quoting_it(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(
      lcvm_gpu_admin_parse(SLOT, BANNER, "GPU 0000:3a:00.0 CC mode: on (probably)\n", &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  assert_message_has(error, "stderr line 1: \"GPU 0000:3a:00.0 CC mode: on (probably)\"");
  g_clear_error(&error);
  g_assert_null(lcvm_gpu_admin_parse(SLOT, BANNER "CC on\n", "", &error));
  assert_message_has(error, "stdout line 6: \"CC on\"");
}

static void
test_an_unknown_mode_value_is_an_error_not_a_guess(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(
      lcvm_gpu_admin_parse(SLOT, "", TS "INFO     " DEV " CC mode is partially-on\n", &error));
  assert_message_has(error, "a mode lium-cvm does not know");
  assert_message_has(error, "CC mode is partially-on");
}

static void
test_a_mode_of_another_device_is_refused(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(
      lcvm_gpu_admin_parse("0000:3a:00.1", "", TS "INFO     " DEV " CC mode is on\n", &error));
  assert_message_has(error, "not of 0000:3a:00.1");
  g_clear_error(&error);
  g_assert_null(lcvm_gpu_admin_parse("0000:3a:00.1", "", TS "INFO     Selected " DEV "\n", &error));
  assert_message_has(error, "selected \"" DEV "\" when asked for 0000:3a:00.1");
}

/* reference/lium.md §8.12: a GPU wedged after a reset; the field saw this AttributeError. */
static void
test_broken_gpu_is_reported_as_broken(void)
{
  const char *broken = "GPU " SLOT " [broken, cfg space working 1 bars configured 1]";
  g_autofree char *err = g_strdup_printf(
      TS "ERROR    Config space working True\n" TS "INFO     Selected %s\n"
         "Traceback (most recent call last):\n"
         "  File \"/opt/gpu-admin-tools/nvidia_gpu_tools.py\", line 54, in <module>\n"
         "    main()\n"
         "  File \"/opt/gpu-admin-tools/cli/per_gpu.py\", line 171, in main_per_gpu\n"
         "    if not gpu.is_gpu() or not gpu.is_cc_query_supported:\n"
         "AttributeError: 'BrokenGpu' object has no attribute 'is_cc_query_supported'\n",
      broken);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(SLOT, "", err, &error);
  g_assert_no_error(error);
  g_assert_true(o->broken);
  g_assert_null(o->cc);
  g_autofree char *quote = lcvm_gpu_admin_quote(o);
  g_assert_cmpstr(quote, ==,
                  "\"Config space working True\" / \"AttributeError: 'BrokenGpu' object has no "
                  "attribute 'is_cc_query_supported'\"");
}

static void
test_old_firmware_without_ppcie_is_recognised(void)
{
  const char *err =
      TS "ERROR    " DEV " does not support PPCIe on current FW. A FW update is required.\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(SLOT, BANNER, err, &error);
  g_assert_no_error(error);
  g_assert_true(o->ppcie_fw_too_old);
  g_assert_cmpuint(o->problems->len, ==, 1);
}

/* traceback.print_tb() prints frames without the "Traceback" header before the re-raise. */
static void
test_failed_switch_trace_is_quoted(void)
{
  const char *err =
      TS "INFO     " DEV " CC mode set to on. It will be active after GPU reset.\n"
         "  File \"/opt/gpu-admin-tools/cli/per_gpu.py\", line 187, in main_per_gpu\n"
         "    raise GpuError(f\"{gpu} failed to switch\")\n"
         "Traceback (most recent call last):\n"
         "  File \"/opt/gpu-admin-tools/nvidia_gpu_tools.py\", line 54, in <module>\n"
         "    main()\n"
         "gpu.error.GpuError: " DEV " failed to switch to CC mode on, current mode is off.\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(SLOT, BANNER, err, &error);
  g_assert_no_error(error);
  g_assert_false(o->reset[LCVM_GPU_KNOB_CC]);
  g_autofree char *quote = lcvm_gpu_admin_quote(o);
  g_assert_cmpstr(quote, ==,
                  "\"gpu.error.GpuError: " DEV
                  " failed to switch to CC mode on, current mode is off.\"");
}

static void
test_an_exception_line_outside_a_traceback_is_unknown(void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null(lcvm_gpu_admin_parse(SLOT, "", "ValueError: nope\n", &error));
  assert_message_has(error, "ValueError: nope");
}

/* Found by fuzzing: GRegex's JIT read past the end of a stderr line that is not UTF-8 (SEGV);
 * the fuzzer's input, as a regression. */
static void
test_output_that_is_not_utf8_is_parsed_safely(void)
{
  static const char err[] = "\n\n\n\n\n\n\n\n\n\n\n\n\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe"
                            "\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe"
                            "\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\n\n\n\n\n\n  File\x02 u\"e";
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(SLOT, "  \n\n\n\n", err, &error);
  if (o == NULL)
    g_assert_true(g_utf8_validate(error->message, -1, NULL));
  else
    g_assert_true(o->last_stderr == NULL || g_utf8_validate(o->last_stderr, -1, NULL));
}

/* ---- trust ---- */

typedef struct {
  char *root;
  char *tool;
  char *lib;
} Tree;

static void
tree_setup(Tree *t, gconstpointer data)
{
  if (geteuid() != 0) {
    g_test_skip("needs root to create files owned by root and by others");
    return;
  }
  t->root = g_dir_make_tmp("lcvm-gpu-admin-XXXXXX", NULL);
  g_assert_cmpint(g_chmod(t->root, 0755), ==, 0);
  g_autofree char *cli = g_build_filename(t->root, "cli", NULL);
  g_assert_cmpint(g_mkdir(cli, 0755), ==, 0);
  t->tool = g_build_filename(t->root, "nvidia_gpu_tools.py", NULL);
  t->lib = g_build_filename(cli, "main.py", NULL);
  g_assert_true(g_file_set_contents(t->tool, "", -1, NULL));
  g_assert_true(g_file_set_contents(t->lib, "", -1, NULL));
  g_assert_cmpint(g_chmod(t->tool, 0755), ==, 0);
  g_assert_cmpint(g_chmod(t->lib, 0644), ==, 0);
}

static void
tree_teardown(Tree *t, gconstpointer data)
{
  if (t->root) {
    const char *argv[] = { "rm", "-rf", t->root, NULL };
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                 NULL);
  }
  g_free(t->root);
  g_free(t->tool);
  g_free(t->lib);
}

static void
test_root_owned_tool_tree_is_run(Tree *t, gconstpointer data)
{
  if (!t->root)
    return;
  g_autoptr(GError) error = NULL;
  g_autofree char *real = lcvm_gpu_admin_resolve(t->tool, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(real, ==, t->tool);
}

/* The seed clones the tool into a user's home: that user would get root through it. */
static void
test_tool_in_a_user_directory_is_refused_with_the_safe_install(Tree *t, gconstpointer data)
{
  if (!t->root)
    return;
  g_assert_cmpint(chown(t->root, 65534, 65534), ==, 0);
  g_autoptr(GError) error = NULL;
  g_assert_null(lcvm_gpu_admin_resolve(t->tool, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  assert_message_has(error, "owned by uid 65534");
  assert_message_has(error, "/opt/gpu-admin-tools && chown -R root:root");
}

/* python imports cli/main.py from the tool's own tree. */
static void
test_writable_module_beside_the_tool_is_refused(Tree *t, gconstpointer data)
{
  if (!t->root)
    return;
  g_assert_cmpint(g_chmod(t->lib, 0666), ==, 0);
  g_autoptr(GError) error = NULL;
  g_assert_null(lcvm_gpu_admin_resolve(t->tool, &error));
  g_autofree char *expected = g_strdup_printf("%s is writable by others than root", t->lib);
  assert_message_has(error, expected);
}

static void
test_missing_tool_says_how_to_install_it(Tree *t, gconstpointer data)
{
  if (!t->root)
    return;
  g_autofree char *missing = g_build_filename(t->root, "nope.py", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_null(lcvm_gpu_admin_resolve(missing, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND);
  assert_message_has(error, "not installed");
  assert_message_has(error, "/opt/gpu-admin-tools");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/gpu-admin/argv/query-names-the-full-bdf-and-both-modes",
                  test_query_names_the_full_bdf_and_both_modes);
  g_test_add_func("/gpu-admin/argv/set-always-resets-after-the-switch",
                  test_set_always_resets_after_the_switch);
  g_test_add_func("/gpu-admin/argv/refuses-anything-but-a-canonical-slot",
                  test_argv_refuses_anything_but_a_canonical_slot);
  g_test_add_func("/gpu-admin/argv/refuses-modes-outside-the-list",
                  test_argv_refuses_modes_outside_the_list);
  g_test_add_func("/gpu-admin/parse/query-output-gives-both-modes",
                  test_query_output_gives_both_modes);
  g_test_add_func("/gpu-admin/parse/set-output-shows-the-set-and-the-reset",
                  test_set_output_shows_the_set_and_the_reset);
  g_test_add_func("/gpu-admin/parse/invalid-devtools-state-is-a-known-mode",
                  test_invalid_devtools_state_is_a_known_mode);
  g_test_add_func("/gpu-admin/parse/a-line-of-no-known-form-is-an-error-quoting-it",
                  test_a_line_of_no_known_form_is_an_error_quoting_it);
  g_test_add_func("/gpu-admin/parse/an-unknown-mode-value-is-an-error-not-a-guess",
                  test_an_unknown_mode_value_is_an_error_not_a_guess);
  g_test_add_func("/gpu-admin/parse/a-mode-of-another-device-is-refused",
                  test_a_mode_of_another_device_is_refused);
  g_test_add_func("/gpu-admin/parse/broken-gpu-is-reported-as-broken",
                  test_broken_gpu_is_reported_as_broken);
  g_test_add_func("/gpu-admin/parse/old-firmware-without-ppcie-is-recognised",
                  test_old_firmware_without_ppcie_is_recognised);
  g_test_add_func("/gpu-admin/parse/failed-switch-trace-is-quoted",
                  test_failed_switch_trace_is_quoted);
  g_test_add_func("/gpu-admin/parse/an-exception-line-outside-a-traceback-is-unknown",
                  test_an_exception_line_outside_a_traceback_is_unknown);
  g_test_add_func("/gpu-admin/parse/output-that-is-not-utf8-is-parsed-safely",
                  test_output_that_is_not_utf8_is_parsed_safely);
#define ADD(name, fn)                                                                              \
  g_test_add("/gpu-admin/trust/" name, Tree, NULL, tree_setup, fn, tree_teardown)
  ADD("root-owned-tool-tree-is-run", test_root_owned_tool_tree_is_run);
  ADD("tool-in-a-user-directory-is-refused-with-the-safe-install",
      test_tool_in_a_user_directory_is_refused_with_the_safe_install);
  ADD("writable-module-beside-the-tool-is-refused",
      test_writable_module_beside_the_tool_is_refused);
  ADD("missing-tool-says-how-to-install-it", test_missing_tool_says_how_to_install_it);
  return g_test_run();
}
