/* SPDX-License-Identifier: MIT */
/* The GPU mode cache (see the header): read from the state dir on first use, written back
 * after every change; a cache that cannot be read starts empty (it only saves a query). */
#include "helper-gpumode-cache.h"

static GMutex cache_mutex;
static GHashTable *cache_table; /* slot → LcvmGpuMode */

static GHashTable *
cache_locked(const LcvmConfig *config)
{
  if (cache_table != NULL)
    return cache_table;
  g_autoptr(GError) error = NULL;
  cache_table = lcvm_gpu_modes_load(config->state_dir, &error);
  if (cache_table == NULL) {
    g_warning("starting with an empty GPU mode cache: %s", error->message);
    cache_table = lcvm_gpu_modes_new();
  }
  return cache_table;
}

static void
cache_save_locked(const LcvmConfig *config)
{
  g_autoptr(GError) error = NULL;
  if (!lcvm_gpu_modes_save(config->state_dir, cache_table, &error))
    g_warning("cannot write the GPU mode cache in %s: %s", config->state_dir, error->message);
}

void
helper_gpumode_cache_put(const LcvmConfig *config, const LcvmGpuMode *m)
{
  g_mutex_lock(&cache_mutex);
  g_hash_table_replace(cache_locked(config), g_strdup(m->slot), lcvm_gpu_mode_copy(m));
  cache_save_locked(config);
  g_mutex_unlock(&cache_mutex);
}

void
helper_gpumode_cache_drop(const LcvmConfig *config, const char *slot)
{
  g_mutex_lock(&cache_mutex);
  if (g_hash_table_remove(cache_locked(config), slot))
    cache_save_locked(config);
  g_mutex_unlock(&cache_mutex);
}
