/* SPDX-License-Identifier: MIT */
/* The key provider's image pin: the image ids pinned in state_dir at the first start
 * (LCVM_KEY_PROVIDER_PIN_FILE), and the VMs whose data disks depend on them. A different image
 * while any data disk exists is refused, because a rebuilt enclave has a new MRENCLAVE and can
 * never again unseal those disks' keys. */
#include "lcvm-json.h"
#include "helper-keyprovider-private.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"
#include "lcvm-json-depth.h"
#include "lcvm-layout.h"
#include "lcvm-safe-io.h"
#include <dirent.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <sys/stat.h>

#define PIN_MAX (64 * 1024)

/* name → image id of every image the compose file names. */
GHashTable *
helper_kp_image_ids(const Compose *c, GError **error)
{
  const char *config_args[] = { "config", "--images", NULL };
  g_autofree char *names = helper_kp_compose_run(c, config_args, HELPER_KP_QUERY_TIMEOUT_S, error);
  if (names == NULL)
    return NULL;
  g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  g_auto(GStrv) lines = g_strsplit(names, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *name = g_strstrip(lines[i]);
    if (name[0] == '\0' || g_hash_table_contains(ids, name))
      continue;
    const char *args[] = { "image", "inspect", "--format", "{{.Id}}", "--", name, NULL };
    g_autoptr(GError) local = NULL;
    g_autofree char *id = helper_kp_docker_run(c, args, HELPER_KP_QUERY_TIMEOUT_S, &local);
    if (id == NULL) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                  "the image %s is not on this host (%s). lium-cvm never builds or pulls key "
                  "provider images: build them once as root as the README describes",
                  name, local->message);
      return NULL;
    }
    g_hash_table_insert(ids, g_strdup(name), g_strdup(g_strstrip(id)));
  }
  if (g_hash_table_size(ids) == 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s names no images", c->file);
    return NULL;
  }
  return g_steal_pointer(&ids);
}

GHashTable *
helper_kp_pin_read(const LcvmConfig *config, GError **error)
{
  lcvm_autofd int state_fd = lcvm_open_dir_at(AT_FDCWD, config->state_dir, error);
  if (state_fd < 0)
    return NULL;
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  gboolean ok =
      lcvm_read_file_at(state_fd, LCVM_KEY_PROVIDER_PIN_FILE, PIN_MAX, &text, &len, &local);
  g_autoptr(GHashTable) pin = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  if (!ok && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    return g_steal_pointer(&pin); /* never started: empty */
  g_autoptr(JsonNode) root = ok ? lcvm_json_parse_bounded(text, (gssize)len, &local) : NULL;
  JsonObject *obj = root != NULL && JSON_NODE_HOLDS_OBJECT(root)
                        ? lcvm_json_object_member(json_node_get_object(root), "images")
                        : NULL;
  if (obj == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s/%s is unreadable or damaged (%s): restore it from a backup; only remove it "
                "when no VM has a data disk",
                config->state_dir, LCVM_KEY_PROVIDER_PIN_FILE, local ? local->message : "not JSON");
    return NULL;
  }
  g_autoptr(GList) names = json_object_get_members(obj);
  for (GList *l = names; l != NULL; l = l->next) {
    const char *id = lcvm_json_string_member(obj, l->data);
    if (id != NULL && id[0] != '\0')
      g_hash_table_insert(pin, g_strdup(l->data), g_strdup(id));
  }
  return g_steal_pointer(&pin);
}

gboolean
helper_kp_pin_write(const LcvmConfig *config, GHashTable *ids, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *when = g_date_time_format_iso8601(now);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "pinned_at");
  json_builder_add_string_value(b, when);
  json_builder_set_member_name(b, "images");
  json_builder_begin_object(b);
  g_autoptr(GList) names = g_list_sort(g_hash_table_get_keys(ids), (GCompareFunc)g_strcmp0);
  for (GList *l = names; l != NULL; l = l->next) {
    json_builder_set_member_name(b, l->data);
    json_builder_add_string_value(b, g_hash_table_lookup(ids, l->data));
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  gsize len = 0;
  g_autofree char *text = lcvm_json_pretty(b, &len);
  lcvm_autofd int state_fd = lcvm_open_dir_at(AT_FDCWD, config->state_dir, error);
  return state_fd >= 0 &&
         lcvm_write_file_atomic_at(state_fd, LCVM_KEY_PROVIDER_PIN_FILE, text, len, 0644, error);
}

/* The first difference between the pin and the images now, as text; NULL when equal. */
static char *
pin_difference(GHashTable *pin, GHashTable *ids)
{
  GHashTableIter it;
  gpointer name, id;
  g_hash_table_iter_init(&it, ids);
  while (g_hash_table_iter_next(&it, &name, &id)) {
    const char *pinned = g_hash_table_lookup(pin, name);
    if (pinned == NULL)
      return g_strdup_printf("%s (%s) was not among the pinned images", (char *)name, (char *)id);
    if (!g_str_equal(pinned, id))
      return g_strdup_printf("%s is now %s but was pinned as %s", (char *)name, (char *)id, pinned);
  }
  g_hash_table_iter_init(&it, pin);
  while (g_hash_table_iter_next(&it, &name, &id)) {
    if (!g_hash_table_contains(ids, name))
      return g_strdup_printf("the pinned image %s (%s) is no longer used", (char *)name,
                             (char *)id);
  }
  return NULL;
}

static int
compare_names(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

/* The VMs with a data disk (state_dir/instances/NAME/hda.img), names sorted. */
GPtrArray *
helper_kp_data_disks(const LcvmConfig *config)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *path = lcvm_layout_instances_dir(config);
  lcvm_autofd int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
  if (dir == NULL)
    return g_steal_pointer(&names);
  lcvm_steal_fd(&fd); /* closedir closes it */
  for (struct dirent *e = readdir(dir); e != NULL; e = readdir(dir)) {
    if (e->d_name[0] == '.')
      continue;
    lcvm_autofd int vm =
        openat(dirfd(dir), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (vm >= 0 && fstatat(vm, LCVM_INSTANCE_DATA_DISK, &st, AT_SYMLINK_NOFOLLOW) == 0)
      g_ptr_array_add(names, g_strdup(e->d_name));
  }
  closedir(dir);
  g_ptr_array_sort(names, compare_names);
  return g_steal_pointer(&names);
}

/* First start: pin. Same images: nothing. Different images: refused while a data disk exists,
 * re-pinned otherwise. */
gboolean
helper_kp_pin_check(const LcvmConfig *config, GHashTable *ids, HelperActStep step,
                    gpointer step_data, GError **error)
{
  g_autoptr(GHashTable) pin = helper_kp_pin_read(config, error);
  if (pin == NULL)
    return FALSE;
  if (g_hash_table_size(pin) == 0) {
    helper_act_step(step, step_data, 0.4, FALSE, "pinning the key provider images (first start)");
    return helper_kp_pin_write(config, ids, error);
  }
  g_autofree char *diff = pin_difference(pin, ids);
  if (diff == NULL)
    return TRUE;
  g_autoptr(GPtrArray) disks = helper_kp_data_disks(config);
  if (disks->len > 0) {
    g_ptr_array_add(disks, NULL);
    g_autofree char *list = g_strjoinv(", ", (char **)disks->pdata);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "refusing to start a different key provider: %s. A rebuilt enclave has a new "
                "MRENCLAVE, so the data disks of %s could never be decrypted again. Put the "
                "pinned image back (docker tag ID NAME), or remove those VMs' data disks first",
                diff, list);
    return FALSE;
  }
  helper_act_step(step, step_data, 0.4, FALSE,
                  "the images changed (%s); no VM has a data disk, pinning the new ones", diff);
  return helper_kp_pin_write(config, ids, error);
}
