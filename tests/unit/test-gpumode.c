/* SPDX-License-Identifier: MIT */
/* The GPU mode acts called straight, without a bus (helper-gpumode.h): on the fake HGX host of
 * tests/fakes/fakepci.py with its kernel simulator, and the fake gpu-admin-tools of
 * tests/fakes/fake-gpu-admin-tools installed root-owned under the test's root, as an operator
 * would (so these tests need root: the tool must be trusted). tests/integration/test_gpumode.py
 * covers the same acts through the bus and polkitd. */
#include "fake-host.h"
#include "helper-gpumode.h"
#include "helper-vfio.h"
#include "lcvm-error.h"
#include <json-glib/json-glib.h>
#include <string.h>

#define GPU      "0000:19:00.0" /* on nvidia until bound */
#define FREE_GPU "0000:db:00.0" /* no driver */
#define SWITCH   "0000:07:00.0" /* no driver */

typedef struct {
  GPtrArray *shown;   /* every step's message */
  GPtrArray *audited; /* the steps reported as audit records */
} Steps;

static void
record_step(gpointer data, double progress, gboolean audit, const char *message)
{
  Steps *s = data;
  g_ptr_array_add(s->shown, g_strdup(message));
  if (audit)
    g_ptr_array_add(s->audited, g_strdup(message));
}

static void
steps_init(Steps *s)
{
  s->shown = g_ptr_array_new_with_free_func(g_free);
  s->audited = g_ptr_array_new_with_free_func(g_free);
}

static void
steps_clear(Steps *s)
{
  g_ptr_array_unref(s->shown);
  g_ptr_array_unref(s->audited);
}

static gboolean
has_step(GPtrArray *steps, const char *text)
{
  for (guint i = 0; i < steps->len; i++)
    if (strstr(steps->pdata[i], text) != NULL)
      return TRUE;
  return FALSE;
}

/* The fake tool, root-owned in ROOT/tools (fake-gpu-admin-tools.json tells it where the fake
 * host is). */
static void
install_tool(Fixture *f)
{
  g_autofree char *dir = g_build_filename(f->root, "tools", NULL);
  g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
  g_autofree char *fake =
      g_test_build_filename(G_TEST_DIST, "..", "fakes", "fake-gpu-admin-tools", NULL);
  g_autofree char *fakes = g_path_get_dirname(fake);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(fake, &text, &len, NULL));
  g_free(f->config->gpu_admin_tools);
  f->config->gpu_admin_tools = g_build_filename(dir, "nvidia_gpu_tools.py", NULL);
  g_assert_true(g_file_set_contents_full(f->config->gpu_admin_tools, text, (gssize)len,
                                         G_FILE_SET_CONTENTS_NONE, 0755, NULL));
  g_autofree char *json = g_build_filename(dir, "fake-gpu-admin-tools.json", NULL);
  g_autofree char *conf = g_strdup_printf("{\"root\": \"%s\", \"fakes\": \"%s\"}", f->root, fakes);
  g_assert_true(g_file_set_contents_full(json, conf, -1, G_FILE_SET_CONTENTS_NONE, 0644, NULL));
  f->config->gpu_admin_tools_timeout = 20;
}

static gboolean
gpumode_setup(Fixture *f)
{
  if (getuid() != 0) {
    g_test_skip("needs root: gpu-admin-tools runs only from a root-owned path");
    return FALSE;
  }
  setup(f, TRUE, "normal");
  install_tool(f);
  return TRUE;
}

/* A member of the fake firmware's state (DEVICE/.fake-fw.json). */
static char *
fw_string(Fixture *f, const char *slot, const char *member)
{
  g_autofree char *dir = lcvm_pci_device_dir(f->config->sysfs_root, slot);
  g_autofree char *path = g_build_filename(dir, ".fake-fw.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_file(parser, path, NULL))
    return g_strdup("off"); /* never written: the defaults */
  JsonObject *o = json_node_get_object(json_parser_get_root(parser));
  return g_strdup(json_object_get_string_member_with_default(o, member, "off"));
}

static char *
cached(Fixture *f)
{
  g_autofree char *path = g_build_filename(f->config->state_dir, "gpu-modes.json", NULL);
  char *text = NULL;
  return g_file_get_contents(path, &text, NULL, NULL) ? text : g_strdup("");
}

static void
test_query_answers_and_caches_the_mode(void)
{
  Fixture f = { 0 };
  if (!gpumode_setup(&f))
    return;
  g_autoptr(HelperGpuRequest) r = helper_gpumode_request_new(f.config, FREE_GPU);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmGpuMode) m = helper_gpumode_query(r, 20, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(m->cc, ==, "off");
  g_assert_cmpstr(m->ppcie, ==, "off");
  g_assert_cmpstr(m->kind, ==, "gpu");
  g_assert_nonnull(r->model);
  g_autofree char *cache = cached(&f);
  g_assert_nonnull(strstr(cache, FREE_GPU));
  teardown(&f);
}

static void
test_set_takes_a_bound_gpu_off_vfio_switches_it_and_binds_it_back(void)
{
  Fixture f = { 0 };
  if (!gpumode_setup(&f))
    return;
  const char *slots[] = { GPU, NULL };
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_vfio_bind(f.config, slots, NULL, NULL, &error));
  g_autoptr(HelperGpuRequest) r = helper_gpumode_request_new(f.config, GPU);
  r->cc = g_strdup("on");
  r->ppcie = g_strdup("off");
  g_assert_true(helper_gpumode_check(r, TRUE, &error));
  g_assert_no_error(error);
  Steps s;
  steps_init(&s);
  gboolean ok = helper_gpumode_set(r, record_step, &s, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  g_assert_cmpstr(r->result, ==, GPU ": CC on, PPCIe off");
  /* The steps that change the device are audited; verifying is only shown. */
  g_assert_true(has_step(s.audited, "taking " GPU " off vfio-pci and clearing driver_override"));
  g_assert_true(has_step(s.audited, "CC on on " GPU ": gpu-admin-tools --gpu-bdf=" GPU
                                    " --set-cc-mode=on --reset-after-cc-mode-switch"));
  g_assert_true(has_step(s.audited, "binding " GPU " to vfio-pci again"));
  g_assert_cmpuint(s.audited->len, ==, 4);
  g_assert_true(has_step(s.shown, "verifying " GPU));
  g_assert_false(has_step(s.audited, "verifying"));
  g_auto(LcvmPciState) st = state_of(&f, GPU);
  g_assert_cmpstr(st.driver, ==, "vfio-pci");
  g_autofree char *cc = fw_string(&f, GPU, "cc");
  g_assert_cmpstr(cc, ==, "on");
  steps_clear(&s);
  teardown(&f);
}

static void
test_set_refuses_a_gpu_on_another_driver_and_touches_nothing(void)
{
  Fixture f = { 0 };
  if (!gpumode_setup(&f))
    return;
  g_autofree char *before = snapshot(&f);
  g_autoptr(HelperGpuRequest) r = helper_gpumode_request_new(f.config, GPU);
  r->cc = g_strdup("on");
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_gpumode_check(r, TRUE, &error));
  g_assert_false(helper_gpumode_set(r, NULL, NULL, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, GPU " is bound to nvidia"));
  g_autofree char *after = snapshot(&f);
  g_assert_cmpstr(before, ==, after);
  teardown(&f);
}

static void
test_check_refuses_what_the_device_cannot_do(void)
{
  Fixture f = { 0 };
  if (!gpumode_setup(&f))
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperGpuRequest) cc_on_switch = helper_gpumode_request_new(f.config, SWITCH);
  cc_on_switch->cc = g_strdup("on");
  g_assert_false(helper_gpumode_check(cc_on_switch, TRUE, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(error->message, "is an NVSwitch: it has no CC mode"));
  g_clear_error(&error);
  g_autoptr(HelperGpuRequest) all = helper_gpumode_request_new(f.config, "all");
  g_assert_false(helper_gpumode_check(all, TRUE, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  teardown(&f);
}

static void
test_reset_drops_the_cached_mode_and_audits_the_reset(void)
{
  Fixture f = { 0 };
  if (!gpumode_setup(&f))
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperGpuRequest) q = helper_gpumode_request_new(f.config, FREE_GPU);
  g_autoptr(LcvmGpuMode) m = helper_gpumode_query(q, 20, &error);
  g_assert_no_error(error);
  g_autoptr(HelperGpuRequest) r = helper_gpumode_request_new(f.config, FREE_GPU);
  g_assert_true(helper_gpumode_check(r, FALSE, &error));
  Steps s;
  steps_init(&s);
  g_assert_true(helper_gpumode_reset(r, record_step, &s, &error));
  g_assert_no_error(error);
  g_assert_true(has_step(s.audited, "resetting " FREE_GPU " (sysfs reset"));
  g_assert_true(has_step(s.shown, "its cached mode was dropped"));
  g_autofree char *cache = cached(&f);
  g_assert_null(strstr(cache, FREE_GPU));
  steps_clear(&s);
  teardown(&f);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/gpumode/query-answers-and-caches", test_query_answers_and_caches_the_mode);
  g_test_add_func("/gpumode/set-off-vfio-and-back",
                  test_set_takes_a_bound_gpu_off_vfio_switches_it_and_binds_it_back);
  g_test_add_func("/gpumode/set-refuses-another-driver",
                  test_set_refuses_a_gpu_on_another_driver_and_touches_nothing);
  g_test_add_func("/gpumode/check-refuses-what-the-device-cannot-do",
                  test_check_refuses_what_the_device_cannot_do);
  g_test_add_func("/gpumode/reset-drops-the-cache",
                  test_reset_drops_the_cached_mode_and_audits_the_reset);
  int status = g_test_run();
  templates_remove();
  return status;
}
