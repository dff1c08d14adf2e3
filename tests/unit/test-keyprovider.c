/* SPDX-License-Identifier: MIT */
/* The key provider's acts called straight, without a bus (helper-keyprovider.h,
 * helper-keyprovider-build.h): start, stop, status, logs and build with tests/fakes/fake-docker
 * as docker and data/key-provider/docker-compose.yml as the compose file, both root-owned under
 * the test's root (so these tests need root: docker and the compose project must be trusted).
 * tests/integration/test_keyprovider.py covers the same acts through the bus and polkitd. */
#include "helper-keyprovider-build.h"
#include "helper-keyprovider.h"
#include "lcvm-error.h"
#include "lcvm-layout.h"
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define AESMD_ID     "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define KP_ID        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define REBUILT_ID   "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define MRENCLAVE    "8a5c0c8a3b61d3f0b5d3e1a9f5c7e2b4d6a8c0e2f4a6b8d0c2e4f6a8b0d2e4f6"
#define BUILT_MRENCL "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

typedef struct {
  char *root;
  char *docker_state; /* ROOT/tools/fake-docker.json */
  LcvmConfig *config;
  GPtrArray *steps; /* every step's message */
} Fixture;

static void
record_step(gpointer data, double progress, gboolean audit, const char *message)
{
  g_ptr_array_add(data, g_strdup(message));
}

static gboolean
has_step(Fixture *f, const char *text)
{
  for (guint i = 0; i < f->steps->len; i++)
    if (strstr(f->steps->pdata[i], text) != NULL)
      return TRUE;
  return FALSE;
}

static char *
source_file(const char *rel)
{
  return g_test_build_filename(G_TEST_DIST, "..", "..", rel, NULL);
}

static void
copy_file(const char *from, const char *to, int mode)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(from, &text, &len, NULL));
  g_assert_true(
      g_file_set_contents_full(to, text, (gssize)len, G_FILE_SET_CONTENTS_NONE, mode, NULL));
}

static void
set_docker_state(Fixture *f, const char *images, const char *extra)
{
  g_autofree char *text =
      g_strdup_printf("{\"images\": {%s}, \"containers\": {}, \"calls\": [], %s \"logs\": {"
                      "\"aesmd\": [\"aesm_service[10]: The server sock is 0x5581\"],"
                      "\"gramine-sealing-key-provider\": [\"    mr_enclave: " MRENCLAVE "\","
                      " \"Enclave started in PRODUCTION mode\"]}}",
                      images, extra);
  g_assert_true(g_file_set_contents(f->docker_state, text, -1, NULL));
}

#define FIRST_IMAGES                                                                               \
  "\"lium-aesmd:local\": \"" AESMD_ID "\", \"lium-key-provider:local\": \"" KP_ID "\""

static char *
read_text(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  char *text = NULL;
  return g_file_get_contents(path, &text, NULL, NULL) ? text : g_strdup("");
}

static gboolean
setup(Fixture *f)
{
  if (getuid() != 0) {
    g_test_skip("needs root: docker and the compose project must be root-owned");
    return FALSE;
  }
  f->root = g_dir_make_tmp("lcvm-kp-XXXXXX", NULL);
  g_assert_cmpint(g_chmod(f->root, 0755), ==, 0);
  g_autofree char *tools = g_build_filename(f->root, "tools", NULL);
  g_autofree char *compose = g_build_filename(f->root, "key-provider", NULL);
  g_autofree char *state = g_build_filename(f->root, "state", NULL);
  g_assert_cmpint(g_mkdir(tools, 0755), ==, 0);
  g_assert_cmpint(g_mkdir(compose, 0755), ==, 0);
  g_assert_cmpint(g_mkdir(state, 0755), ==, 0);
  f->config = lcvm_config_new_default();
  g_free(f->config->docker);
  f->config->docker = g_build_filename(tools, "docker", NULL);
  g_autofree char *fake = source_file("tests/fakes/fake-docker");
  copy_file(fake, f->config->docker, 0755);
  g_autofree char *example = source_file("data/key-provider/docker-compose.yml");
  g_autofree char *compose_file = g_build_filename(compose, "docker-compose.yml", NULL);
  copy_file(example, compose_file, 0644);
  g_free(f->config->key_provider_compose_dir);
  f->config->key_provider_compose_dir = g_steal_pointer(&compose);
  g_free(f->config->state_dir);
  f->config->state_dir = g_steal_pointer(&state);
  g_free(f->config->key_provider_address);
  f->config->key_provider_address = g_strdup("127.0.0.1:1"); /* nothing answers there */
  /* The build's data-disk inventory sees only this state dir. */
  g_free(f->config->lium_registry);
  f->config->lium_registry = g_strdup("");
  g_free(f->config->sweep_roots);
  f->config->sweep_roots = g_strdup("/nonexistent-lcvm-sweep");
  f->docker_state = g_build_filename(tools, "fake-docker.json", NULL);
  set_docker_state(f, FIRST_IMAGES, "");
  f->steps = g_ptr_array_new_with_free_func(g_free);
  return TRUE;
}

static void
teardown(Fixture *f)
{
  const char *argv[] = { "rm", "-rf", f->root, NULL };
  g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  lcvm_config_free(f->config);
  g_ptr_array_unref(f->steps);
  g_free(f->docker_state);
  g_free(f->root);
}

static void
test_start_pins_the_images_and_records_the_mrenclave(void)
{
  Fixture f = { 0 };
  if (!setup(&f))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_keyprovider_start(f.config, record_step, f.steps, &error));
  g_assert_no_error(error);
  g_assert_true(has_step(&f, "pinning the key provider images (first start)"));
  g_assert_true(has_step(&f, "the enclave's MRENCLAVE is " MRENCLAVE));
  g_assert_true(has_step(&f, "the key provider is started (2 containers)"));
  g_autofree char *pin = read_text(f.config->state_dir, LCVM_KEY_PROVIDER_PIN_FILE);
  g_assert_nonnull(strstr(pin, KP_ID));
  g_autofree char *calls = read_text(f.root, "tools/fake-docker.json");
  g_assert_nonnull(strstr(calls, "\"--no-build\""));
  teardown(&f);
}

static void
test_start_refuses_a_rebuilt_image_while_a_data_disk_exists(void)
{
  Fixture f = { 0 };
  if (!setup(&f))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_keyprovider_start(f.config, NULL, NULL, &error));
  g_autofree char *disk_dir = g_build_filename(f.config->state_dir, "instances", "vm1", NULL);
  g_assert_cmpint(g_mkdir_with_parents(disk_dir, 0755), ==, 0);
  g_autofree char *disk = g_build_filename(disk_dir, LCVM_INSTANCE_DATA_DISK, NULL);
  g_assert_true(g_file_set_contents(disk, "", 0, NULL));
  set_docker_state(&f,
                   "\"lium-aesmd:local\": \"" AESMD_ID "\", \"lium-key-provider:local\": "
                   "\"" REBUILT_ID "\"",
                   "");
  g_autofree char *before = read_text(f.config->state_dir, LCVM_KEY_PROVIDER_PIN_FILE);
  g_assert_false(helper_keyprovider_start(f.config, NULL, NULL, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "refusing to start a different key provider"));
  g_assert_nonnull(strstr(error->message, "the data disks of vm1"));
  g_autofree char *after = read_text(f.config->state_dir, LCVM_KEY_PROVIDER_PIN_FILE);
  g_assert_cmpstr(before, ==, after);
  teardown(&f);
}

static void
test_status_and_logs_report_the_running_provider(void)
{
  Fixture f = { 0 };
  if (!setup(&f))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_keyprovider_start(f.config, NULL, NULL, &error));
  g_autoptr(GVariant) status = helper_keyprovider_status(f.config, &error);
  g_assert_no_error(error);
  g_autoptr(GVariantDict) d = g_variant_dict_new(status);
  gboolean running = FALSE, production = FALSE, pinned = FALSE, answering = TRUE, ready = TRUE;
  const char *mrenclave = NULL;
  g_assert_true(g_variant_dict_lookup(d, "running", "b", &running));
  g_assert_true(g_variant_dict_lookup(d, "production_mode", "b", &production));
  g_assert_true(g_variant_dict_lookup(d, "pin_matches", "b", &pinned));
  g_assert_true(g_variant_dict_lookup(d, "port_answering", "b", &answering));
  g_assert_true(g_variant_dict_lookup(d, "ready", "b", &ready));
  g_assert_true(g_variant_dict_lookup(d, "mrenclave", "&s", &mrenclave));
  g_assert_true(running && production && pinned);
  g_assert_false(answering); /* nothing listens on 127.0.0.1:1 */
  g_assert_false(ready);
  g_assert_cmpstr(mrenclave, ==, MRENCLAVE);
  g_autofree char *logs = helper_keyprovider_logs(f.config, 5, &error);
  g_assert_no_error(error);
  g_assert_nonnull(strstr(logs, "Enclave started in PRODUCTION mode"));
  teardown(&f);
}

static void
test_stop_runs_compose_down(void)
{
  Fixture f = { 0 };
  if (!setup(&f))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_keyprovider_stop(f.config, record_step, f.steps, &error));
  g_assert_no_error(error);
  g_assert_true(has_step(&f, "the key provider is stopped"));
  g_autofree char *calls = read_text(f.root, "tools/fake-docker.json");
  g_assert_nonnull(strstr(calls, "\"down\""));
  teardown(&f);
}

static void
test_build_pins_the_new_images_and_names_their_mrenclave(void)
{
  Fixture f = { 0 };
  if (!setup(&f))
    return;
  g_autofree char *build_file =
      g_build_filename(f.config->key_provider_compose_dir, "docker-compose.build.yaml", NULL);
  g_assert_true(g_file_set_contents(build_file,
                                    "services:\n"
                                    "  aesmd:\n"
                                    "    image: lium-aesmd:local\n"
                                    "    build:\n"
                                    "      context: .\n"
                                    "  gramine-sealing-key-provider:\n"
                                    "    image: lium-key-provider:local\n"
                                    "    build:\n"
                                    "      context: .\n",
                                    -1, NULL));
  set_docker_state(&f, FIRST_IMAGES, "\"built_mrenclave\": \"" BUILT_MRENCL "\",");
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_keyprovider_build(f.config, record_step, f.steps, &error));
  g_assert_no_error(error);
  g_assert_true(has_step(&f, "built and pinned (MRENCLAVE " BUILT_MRENCL ")"));
  g_autofree char *pin = read_text(f.config->state_dir, LCVM_KEY_PROVIDER_PIN_FILE);
  g_assert_null(strstr(pin, KP_ID)); /* the rebuilt image is pinned, not the old one */
  g_assert_nonnull(strstr(pin, "lium-key-provider:local"));
  teardown(&f);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/keyprovider/start-pins-and-records-mrenclave",
                  test_start_pins_the_images_and_records_the_mrenclave);
  g_test_add_func("/keyprovider/start-refuses-rebuilt-image-with-data-disk",
                  test_start_refuses_a_rebuilt_image_while_a_data_disk_exists);
  g_test_add_func("/keyprovider/status-and-logs", test_status_and_logs_report_the_running_provider);
  g_test_add_func("/keyprovider/stop-runs-down", test_stop_runs_compose_down);
  g_test_add_func("/keyprovider/build-pins-new-images",
                  test_build_pins_the_new_images_and_names_their_mrenclave);
  return g_test_run();
}
