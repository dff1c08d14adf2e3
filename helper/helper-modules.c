/* SPDX-License-Identifier: MIT */
/* Module loading. Only the allow-list of lcvm-validate.c is ever loaded; a name is never
 * turned into a path. libkmod reads the real /lib/modules and /sys, so presence is checked
 * first under the configured sysfs_root (which is how tests redirect it). libkmod is opened on
 * the first load that needs it (as systemd does): linked, it would bring libcrypto's relocated
 * pages into every idle helper for an act that happens once per boot. */
#include "helper-modules.h"
#include "lcvm-error.h"
#include "lcvm-text.h"
#include "lcvm-safe-io.h"
#include "lcvm-validate.h"
#include <dlfcn.h>
#include <errno.h>
#include <libkmod.h>
#include <sys/utsname.h>

#define MODULES_MAX  16
#define PERSIST_FILE "lium-cvm.conf"
#define LIBKMOD      "libkmod.so.2"

/* The libkmod functions the helper calls, resolved once from LIBKMOD. */
static struct {
  __typeof__(kmod_new) *new_ctx;
  __typeof__(kmod_unref) *unref;
  __typeof__(kmod_module_new_from_lookup) *new_from_lookup;
  __typeof__(kmod_list_next) *list_next;
  __typeof__(kmod_module_get_module) *get_module;
  __typeof__(kmod_module_probe_insert_module) *probe_insert;
  __typeof__(kmod_module_unref) *module_unref;
  __typeof__(kmod_module_unref_list) *unref_list;
} kmod;

static gboolean
kmod_resolve(void *lib)
{
  /* clang-format off */
  return (*(void **)&kmod.new_ctx = dlsym(lib, "kmod_new")) != NULL &&
         (*(void **)&kmod.unref = dlsym(lib, "kmod_unref")) != NULL &&
         (*(void **)&kmod.new_from_lookup = dlsym(lib, "kmod_module_new_from_lookup")) != NULL &&
         (*(void **)&kmod.list_next = dlsym(lib, "kmod_list_next")) != NULL &&
         (*(void **)&kmod.get_module = dlsym(lib, "kmod_module_get_module")) != NULL &&
         (*(void **)&kmod.probe_insert = dlsym(lib, "kmod_module_probe_insert_module")) != NULL &&
         (*(void **)&kmod.module_unref = dlsym(lib, "kmod_module_unref")) != NULL &&
         (*(void **)&kmod.unref_list = dlsym(lib, "kmod_module_unref_list")) != NULL;
  /* clang-format on */
}

/* Thread-safe: loads run in worker threads. */
static gboolean
kmod_open(GError **error)
{
  static gsize done = 0;
  static gboolean ok = FALSE;
  if (g_once_init_enter(&done)) {
    void *lib = dlopen(LIBKMOD, RTLD_NOW | RTLD_LOCAL);
    ok = lib != NULL && kmod_resolve(lib);
    g_once_init_leave(&done, 1);
  }
  if (!ok)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "cannot use " LIBKMOD " to load kernel modules (install the kmod package)");
  return ok;
}

GStrv
helper_modules_validate(const char *const *modules, GError **error)
{
  guint n = modules ? g_strv_length((char **)modules) : 0;
  if (n == 0 || n > MODULES_MAX) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "give between 1 and %d module names (got %u)", MODULES_MAX, n);
    return NULL;
  }
  g_autoptr(GStrvBuilder) out = g_strv_builder_new();
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++) {
    g_autofree char *name = lcvm_module_normalize(modules[i]);
    if (!lcvm_module_allowed(name)) {
      g_autofree char *allowed = g_strjoinv(", ", (char **)lcvm_module_allow_list());
      g_autofree char *shown = lcvm_text_for_message(modules[i]);
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                  "module '%s' is not one the helper loads (allowed: %s)", shown, allowed);
      return NULL;
    }
    if (g_hash_table_add(seen, g_strdup(name)))
      g_strv_builder_add(out, name);
  }
  return g_strv_builder_end(out);
}

static gboolean
module_present(const LcvmConfig *config, const char *name)
{
  g_autofree char *rel = g_build_filename("module", name, NULL);
  g_autofree char *path = lcvm_config_path(config->sysfs_root, rel);
  return g_file_test(path, G_FILE_TEST_IS_DIR);
}

static gboolean
load_one(struct kmod_ctx *ctx, const char *name, GError **error)
{
  struct kmod_list *list = NULL;
  struct utsname uts;
  uname(&uts);
  int r = kmod.new_from_lookup(ctx, name, &list);
  if (r < 0 || list == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "kernel module %s was not found for kernel %s: install the kernel's module "
                "package (on Ubuntu: linux-modules-extra-%s) or boot a kernel that has it",
                name, uts.release, uts.release);
    return FALSE;
  }
  for (struct kmod_list *l = list; l != NULL; l = kmod.list_next(list, l)) {
    struct kmod_module *mod = kmod.get_module(l);
    r = kmod.probe_insert(mod, KMOD_PROBE_APPLY_BLACKLIST, NULL, NULL, NULL, NULL);
    kmod.module_unref(mod);
    if (r < 0)
      break;
  }
  kmod.unref_list(list);
  if (r < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "loading kernel module %s failed: %s (see 'dmesg' for the kernel's reason)", name,
                g_strerror(r == -EPERM || r == -EACCES ? EPERM : -r));
    return FALSE;
  }
  return TRUE;
}

gboolean
helper_modules_load(const LcvmConfig *config, const char *const *modules, GError **error)
{
  struct kmod_ctx *ctx = NULL;
  gboolean ok = TRUE;
  for (guint i = 0; ok && modules[i] != NULL; i++) {
    if (module_present(config, modules[i]))
      continue;
    if (ctx == NULL) {
      if (!kmod_open(error))
        return FALSE;
      ctx = kmod.new_ctx(NULL, NULL);
      if (ctx == NULL) {
        g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                            "cannot initialise libkmod (is /lib/modules present?)");
        return FALSE;
      }
    }
    ok = load_one(ctx, modules[i], error);
  }
  if (ctx != NULL)
    kmod.unref(ctx);
  return ok;
}

gboolean
helper_modules_persist(const LcvmConfig *config, const char *const *modules, GError **error)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *old = NULL;
  g_autofree char *path = lcvm_config_path(config->modules_load_dir, PERSIST_FILE);

  if (g_file_get_contents(path, &old, NULL, NULL)) {
    g_auto(GStrv) lines = g_strsplit(old, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
      g_autofree char *n = lcvm_module_normalize(g_strstrip(lines[i]));
      if (lcvm_module_allowed(n) && !g_ptr_array_find_with_equal_func(names, n, g_str_equal, NULL))
        g_ptr_array_add(names, g_steal_pointer(&n));
    }
  }
  for (guint i = 0; modules[i] != NULL; i++)
    if (!g_ptr_array_find_with_equal_func(names, modules[i], g_str_equal, NULL))
      g_ptr_array_add(names, g_strdup(modules[i]));

  GString *text = g_string_new("# Written by lium-cvm-helper: kernel modules the CVMs need.\n");
  for (guint i = 0; i < names->len; i++)
    g_string_append_printf(text, "%s\n", (char *)names->pdata[i]);
  g_autofree char *data = g_string_free(text, FALSE);
  return helper_persist_write(config->modules_load_dir, PERSIST_FILE, data, error);
}

gboolean
helper_persist_write(const char *dir, const char *name, const char *text, GError **error)
{
  if (g_mkdir_with_parents(dir, 0755) < 0) {
    int err = errno;
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "cannot create directory %s: %s (create it as root, mode 0755)", dir,
                g_strerror(err));
    return FALSE;
  }
  return lcvm_write_file_atomic(dir, name, text, strlen(text), 0644, error);
}
