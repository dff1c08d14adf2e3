/* SPDX-License-Identifier: MIT */
/* The fake HGX host of tests/fakes/fakepci.py for unit tests of the device acts (test-vfio.c,
 * test-gpumode.c): built once per run and copied for each test, its kernel simulator acting on
 * sysfs writes asynchronously, as the kernel does, and a config pointing into it. */
#pragma once
#include "lcvm-config.h"
#include "lcvm-pci.h"
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <unistd.h>

typedef struct {
  char *root;
  char *script;
  LcvmConfig *config;
  GSubprocess *kernel;
} Fixture;

static inline void
run_script(Fixture *f, const char *const *args, char **out)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, "python3");
  g_ptr_array_add(argv, f->script);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add(argv, (gpointer)args[i]);
  g_ptr_array_add(argv, NULL);
  int status = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out,
                             NULL, &status, &error));
  g_assert_no_error(error);
  g_assert_true(g_spawn_check_wait_status(status, NULL));
}

static inline void
start_kernel(Fixture *f, const char *mode)
{
  g_autofree char *ready = g_build_filename(f->root, "kernel.ready", NULL);
  g_autoptr(GError) error = NULL;
  f->kernel =
      g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, &error, "python3", f->script, "simulate", f->root,
                       "--delay", "0.02", "--mode", mode, "--ready-file", ready, NULL);
  g_assert_no_error(error);
  for (int i = 0; i < 500 && !g_file_test(ready, G_FILE_TEST_EXISTS); i++)
    g_usleep(10 * 1000);
  g_assert_true(g_file_test(ready, G_FILE_TEST_EXISTS));
}

/* Built once per run and copied for each test: building is the slow part. */
static char *templates[2];

static inline const char *
template_for(Fixture *f, gboolean iommu)
{
  if (templates[iommu] == NULL) {
    templates[iommu] = g_dir_make_tmp("lcvm-vfio-tpl-XXXXXX", NULL);
    const char *args[] = { "build", templates[iommu], iommu ? NULL : "--no-iommu", NULL };
    run_script(f, args, NULL);
  }
  return templates[iommu];
}

static inline void
copy_tree(const char *from, const char *to)
{
  g_autofree char *src = g_build_filename(from, ".", NULL);
  const char *argv[] = { "cp", "-a", src, to, NULL };
  int status = 0;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                             &status, NULL));
  g_assert_true(g_spawn_check_wait_status(status, NULL));
}

static inline void
remove_tree(const char *path)
{
  const char *argv[] = { "rm", "-rf", path, NULL };
  g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
}

static inline void
setup(Fixture *f, gboolean iommu, const char *mode)
{
  f->root = g_dir_make_tmp("lcvm-vfio-XXXXXX", NULL);
  f->script = g_test_build_filename(G_TEST_DIST, "..", "fakes", "fakepci.py", NULL);
  copy_tree(template_for(f, iommu), f->root);
  f->config = lcvm_config_new_default();
  g_free(f->config->sysfs_root);
  f->config->sysfs_root = g_build_filename(f->root, "sys", NULL);
  g_free(f->config->dev_root);
  f->config->dev_root = g_build_filename(f->root, "dev", NULL);
  g_free(f->config->proc_root);
  f->config->proc_root = g_build_filename(f->root, "proc", NULL);
  g_free(f->config->runtime_dir);
  f->config->runtime_dir = g_build_filename(f->root, "run", NULL);
  g_free(f->config->modprobe_dir);
  f->config->modprobe_dir = g_build_filename(f->root, "modprobe.d", NULL);
  g_mkdir(f->config->modprobe_dir, 0755);
  g_free(f->config->state_dir);
  f->config->state_dir = g_build_filename(f->root, "state", NULL);
  g_mkdir(f->config->state_dir, 0755);
  f->config->bind_timeout = 1;
  if (mode != NULL)
    start_kernel(f, mode);
}

static inline void
teardown(Fixture *f)
{
  if (f->kernel != NULL) {
    g_subprocess_send_signal(f->kernel, SIGTERM);
    g_subprocess_wait(f->kernel, NULL, NULL);
    g_object_unref(f->kernel);
  }
  remove_tree(f->root);
  lcvm_config_free(f->config);
  g_free(f->script);
  g_free(f->root);
}

static inline char *
snapshot(Fixture *f)
{
  char *out = NULL;
  const char *args[] = { "snapshot", f->root, NULL };
  run_script(f, args, &out);
  return out;
}

static inline LcvmPciState
state_of(Fixture *f, const char *slot)
{
  LcvmPciState st = { 0 };
  lcvm_pci_state_read(f->config->sysfs_root, slot, &st);
  return st;
}

/* At the end of main: the templates go. */
static inline void
templates_remove(void)
{
  for (guint i = 0; i < G_N_ELEMENTS(templates); i++)
    if (templates[i] != NULL)
      remove_tree(templates[i]);
}
