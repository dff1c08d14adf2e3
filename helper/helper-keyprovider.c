/* SPDX-License-Identifier: MIT */
/* The SGX key provider under docker compose (reference/lium.md §3, §8.7-8.11).
 *
 * docker runs as root, so everything it is told to run must be root's: the docker executable
 * and the compose directory, its compose file and its .env are root-owned and not writable by
 * group or others along their whole path (lcvm_trusted_path). docker gets a clean environment,
 * an explicit -f (so no override file is ever merged), `up -d --no-build --pull never`, and a
 * compose file that builds nothing and includes nothing. The image ids are pinned in state_dir
 * at the first start: a different image while any data disk exists is refused, because a
 * rebuilt enclave has a new MRENCLAVE and can never again unseal those disks' keys. Nothing here
 * builds or pulls an image, and nothing takes a path or a command from the caller. */
#include "helper-keyprovider.h"
#include "helper-keyprovider-build.h"
#include "helper-keyprovider-private.h"
#include "helper-authorizer.h"
#include "helper-job.h"
#include "helper-mrenclave.h"
#include "helper-tool.h"
#include "lcvm-error.h"
#include "lcvm-json-depth.h"
#include "lcvm-text.h"
#include "lcvm-safe-io.h"
#include "lcvm-trust.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMPOSE_MAX        (1024 * 1024)
#define PIN_MAX            (64 * 1024)
#define OUTPUT_MAX         (8 * 1024 * 1024)
#define QUERY_TIMEOUT_S    60
#define UP_TIMEOUT_S       300
#define PORT_TIMEOUT_S     3
#define LOG_LINES_DEFAULT  200
#define LOG_LINES_MAX      10000
#define STATUS_LOG_LINES   200
#define ENCLAVE_ERRORS_MAX 10

/* docker's whole environment. HOME is root's: docker reads its CLI config and plugins there. */
static const char *const docker_env[] = {
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  "HOME=/root",
  "LANG=C.UTF-8",
  NULL,
};

/* The names docker compose would pick up on its own; exactly one may exist. */
static const char *const compose_names[] = {
  "docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml", NULL,
};
static const char *const override_names[] = {
  "docker-compose.override.yml",
  "docker-compose.override.yaml",
  "compose.override.yml",
  "compose.override.yaml",
  NULL,
};

/* ---- the trusted compose project ---- */

void
helper_kp_compose_free(Compose *c)
{
  g_free(c->docker);
  g_free(c->dir);
  g_free(c->file);
  g_free(c);
}

gboolean
helper_kp_prefix_error(GError **error, const char *what)
{
  g_prefix_error(error, "%s: ", what);
  return FALSE;
}

/* A word followed by ':' as a YAML key: at the start of the text after indentation, '-', '{'
 * or ','. Deliberately broad (it also matches inside a quoted string): a false alarm costs an
 * edit of a root-owned file, a miss would let compose build or merge something. */
gboolean
helper_kp_line_has_key(const char *line, const char *key)
{
  gsize n = strlen(key);
  for (const char *p = strstr(line, key); p != NULL; p = strstr(p + 1, key)) {
    char before = p == line ? ' ' : p[-1];
    const char *after = p + n;
    while (*after == ' ' || *after == '\t')
      after++;
    if (*after == ':' &&
        (g_ascii_isspace(before) || before == '-' || before == '{' || before == ','))
      return TRUE;
  }
  return FALSE;
}

/* Refuses 'build:' (runtime files only), 'include:' and 'extends:'. */
static gboolean
helper_kp_check_compose_text(const char *file, const char *text, GError **error)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *line = lines[i] + strspn(lines[i], " \t");
    if (line[0] == '#')
      continue;
    if (helper_kp_line_has_key(line, "build")) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                  "%s line %u has 'build:': lium-cvm starts only images that already exist, "
                  "because a rebuilt key provider has a new MRENCLAVE and every data disk sealed "
                  "by the old one becomes undecryptable. Build the images once as root (see the "
                  "README), reference them by name and remove 'build:'",
                  file, i + 1);
      return FALSE;
    }
    if (helper_kp_line_has_key(line, "include") || helper_kp_line_has_key(line, "extends")) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                  "%s line %u pulls in another compose file ('include:'/'extends:'), which "
                  "lium-cvm cannot vet; put everything in this one root-owned file",
                  file, i + 1);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
exists_at(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  struct stat st;
  return lstat(path, &st) == 0;
}

static char *
find_compose_file(const char *dir, GError **error)
{
  const char *found = NULL;
  for (guint i = 0; compose_names[i] != NULL; i++) {
    if (!exists_at(dir, compose_names[i]))
      continue;
    if (found != NULL) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                  "%s holds both %s and %s: keep exactly one compose file there", dir, found,
                  compose_names[i]);
      return NULL;
    }
    found = compose_names[i];
  }
  if (found == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s holds no docker-compose.yml: install the key provider's compose file there "
                "(an example is data/key-provider/docker-compose.yml)",
                dir);
    return NULL;
  }
  for (guint i = 0; override_names[i] != NULL; i++) {
    if (exists_at(dir, override_names[i])) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                  "%s/%s exists: lium-cvm never merges override files and refuses to run next "
                  "to one (a hand-run 'docker compose' there would merge it); remove it",
                  dir, override_names[i]);
      return NULL;
    }
  }
  return g_build_filename(dir, found, NULL);
}

Compose *
helper_kp_compose_open(const LcvmConfig *config, GError **error)
{
  g_autoptr(Compose) c = g_new0(Compose, 1);
  c->docker = lcvm_trusted_path(config->docker, error);
  if (c->docker == NULL)
    return helper_kp_prefix_error(error, "[tools] docker"), NULL;
  c->dir = lcvm_trusted_path(config->key_provider_compose_dir, error);
  if (c->dir == NULL)
    return helper_kp_prefix_error(error, "[key-provider] compose_dir"), NULL;
  g_autofree char *named = find_compose_file(c->dir, error);
  if (named == NULL)
    return NULL;
  c->file = lcvm_trusted_path(named, error);
  if (c->file == NULL)
    return NULL;
  if (exists_at(c->dir, ".env")) {
    g_autofree char *env = g_build_filename(c->dir, ".env", NULL);
    g_autofree char *trusted_env = lcvm_trusted_path(env, error);
    if (trusted_env == NULL)
      return NULL;
  }
  g_autofree char *text = NULL;
  gsize len = 0;
  struct stat st;
  if (stat(c->file, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > COMPOSE_MAX) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s must be a regular file of at most %d bytes", c->file, COMPOSE_MAX);
    return NULL;
  }
  if (!g_file_get_contents(c->file, &text, &len, error) ||
      !helper_kp_check_compose_text(c->file, text, error))
    return NULL;
  return g_steal_pointer(&c);
}

/* ---- running docker ---- */

/* The last max bytes of an error stream, for a message. */
static char *
tail_text(const GString *bytes, gsize max)
{
  if (bytes->len == 0)
    return g_strdup("(no output)");
  gsize len = MIN(bytes->len, max);
  g_autofree char *valid = g_utf8_make_valid(bytes->str + bytes->len - len, (gssize)len);
  return g_strdup(g_strstrip(valid));
}

HelperTool
helper_kp_docker(const Compose *c, const char *const *argv)
{
  return (HelperTool){ .argv = argv, .envp = docker_env, .cwd = c->dir };
}

/* Runs docker with args in dir, clean environment, stdin /dev/null; stdout on success. */
static char *
docker_run(const Compose *c, const char *const *args, guint timeout_s, GError **error)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new();
  g_ptr_array_add(argv, c->docker);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add(argv, (char *)args[i]);
  g_ptr_array_add(argv, NULL);
  HelperTool tool = helper_kp_docker(c, (const char *const *)argv->pdata);
  HelperCaptureOptions capture = { .timeout_ms = timeout_s * 1000, .max_output = OUTPUT_MAX };
  g_auto(HelperCaptured) run = { 0 };
  if (!helper_tool_run(&tool, &capture, &run, error))
    return helper_kp_prefix_error(error, c->docker), NULL;
  g_autofree char *what = g_strjoinv(" ", (char **)args);
  if (run.timed_out) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "docker %s: no answer in time (is dockerd running?)", what);
    return NULL;
  }
  if (!run.exited || run.status != 0) {
    g_autofree char *msg = tail_text(run.err, 2048);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "docker %s failed: %s", what, msg);
    return NULL;
  }
  if (run.out_cut) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "docker %s printed more than %d bytes", what,
                OUTPUT_MAX);
    return NULL;
  }
  return g_utf8_make_valid(run.out->str, (gssize)run.out->len);
}

/* `docker compose --project-directory DIR -f FILE args…` */
char *
helper_kp_compose_run(const Compose *c, const char *const *args, guint timeout_s, GError **error)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  const char *prefix[] = { "compose", "--project-directory", c->dir, "-f", c->file, NULL };
  g_strv_builder_addv(b, prefix);
  g_strv_builder_addv(b, (const char **)args);
  g_auto(GStrv) argv = g_strv_builder_end(b);
  return docker_run(c, (const char *const *)argv, timeout_s, error);
}

/* ---- images and the pin ---- */

/* docker's output is parsed, not trusted to have the expected types. */
static char *
member_string(JsonObject *o, const char *name)
{
  const char *s = lcvm_json_string_member(o, name);
  return g_strdup(s != NULL ? s : "");
}

static gint64
member_int(JsonObject *o, const char *name)
{
  gint64 v = 0;
  return lcvm_json_int_member(o, name, &v) ? v : 0;
}

static gboolean
state_running(JsonObject *o)
{
  JsonObject *state = lcvm_json_object_member(o, "State");
  JsonNode *running = state != NULL ? json_object_get_member(state, "Running") : NULL;
  return running != NULL && JSON_NODE_HOLDS_VALUE(running) &&
         json_node_get_value_type(running) == G_TYPE_BOOLEAN && json_node_get_boolean(running);
}

/* name → image id of every image the compose file names. */
GHashTable *
helper_kp_image_ids(const Compose *c, GError **error)
{
  const char *config_args[] = { "config", "--images", NULL };
  g_autofree char *names = helper_kp_compose_run(c, config_args, QUERY_TIMEOUT_S, error);
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
    g_autofree char *id = docker_run(c, args, QUERY_TIMEOUT_S, &local);
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

static GHashTable *
pin_read(const LcvmConfig *config, GError **error)
{
  int dirfd = lcvm_open_dir_at(AT_FDCWD, config->state_dir, error);
  if (dirfd < 0)
    return NULL;
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  gboolean ok = lcvm_read_file_at(dirfd, LCVM_KEY_PROVIDER_PIN_FILE, PIN_MAX, &text, &len, &local);
  close(dirfd);
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
    g_autofree char *id = member_string(obj, l->data);
    if (id[0] != '\0')
      g_hash_table_insert(pin, g_strdup(l->data), g_steal_pointer(&id));
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
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  json_generator_set_root(gen, root);
  gsize len = 0;
  g_autofree char *text = json_generator_to_data(gen, &len);
  int dirfd = lcvm_open_dir_at(AT_FDCWD, config->state_dir, error);
  if (dirfd < 0)
    return FALSE;
  gboolean ok =
      lcvm_write_file_atomic_at(dirfd, LCVM_KEY_PROVIDER_PIN_FILE, text, len, 0644, error);
  close(dirfd);
  return ok;
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
static GPtrArray *
helper_kp_data_disks(const LcvmConfig *config)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *path = lcvm_layout_instances_dir(config);
  int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0)
    return g_steal_pointer(&names);
  DIR *dir = fdopendir(dirfd);
  if (dir == NULL) {
    close(dirfd);
    return g_steal_pointer(&names);
  }
  for (struct dirent *e = readdir(dir); e != NULL; e = readdir(dir)) {
    if (e->d_name[0] == '.')
      continue;
    int vm = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (vm >= 0 && fstatat(vm, LCVM_INSTANCE_DATA_DISK, &st, AT_SYMLINK_NOFOLLOW) == 0)
      g_ptr_array_add(names, g_strdup(e->d_name));
    if (vm >= 0)
      close(vm);
  }
  closedir(dir);
  g_ptr_array_sort(names, compare_names);
  return g_steal_pointer(&names);
}

/* First start: pin. Same images: nothing. Different images: refused while a data disk exists,
 * re-pinned otherwise. */
static gboolean
pin_check(const LcvmConfig *config, GHashTable *ids, HelperJob *job, GError **error)
{
  g_autoptr(GHashTable) pin = pin_read(config, error);
  if (pin == NULL)
    return FALSE;
  if (g_hash_table_size(pin) == 0) {
    helper_job_step(job, 0.4, "pinning the key provider images (first start)");
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
  helper_job_step(job, 0.4, "the images changed (%s); no VM has a data disk, pinning the new ones",
                  diff);
  return helper_kp_pin_write(config, ids, error);
}

/* ---- containers ---- */

typedef struct {
  char *id;
  char *name;
  char *service;
  char *state;
  char *image;    /* as the compose file names it */
  char *image_id; /* from docker inspect */
  gint64 restarts;
  gboolean running;
} Container;

static void
container_free(gpointer p)
{
  Container *c = p;
  g_free(c->id);
  g_free(c->name);
  g_free(c->service);
  g_free(c->state);
  g_free(c->image);
  g_free(c->image_id);
  g_free(c);
}

GPtrArray *
helper_keyprovider_docker_objects(const char *text, GError **error)
{
  g_autoptr(GPtrArray) objects = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
  g_autofree char *trimmed = g_strstrip(g_strdup(text));
  g_auto(GStrv) lines =
      trimmed[0] == '[' ? g_strdupv((char *[]){ trimmed, NULL }) : g_strsplit(trimmed, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    if (g_strstrip(lines[i])[0] == '\0')
      continue;
    g_autoptr(JsonParser) parser = json_parser_new_immutable();
    if (!lcvm_json_load_bounded(parser, lines[i], -1, error))
      return helper_kp_prefix_error(error, "unexpected docker output"), NULL;
    JsonNode *root = json_parser_get_root(parser);
    if (JSON_NODE_HOLDS_OBJECT(root)) {
      g_ptr_array_add(objects, json_node_copy(root));
    } else if (JSON_NODE_HOLDS_ARRAY(root)) {
      JsonArray *a = json_node_get_array(root);
      for (guint j = 0; j < json_array_get_length(a); j++)
        if (JSON_NODE_HOLDS_OBJECT(json_array_get_element(a, j)))
          g_ptr_array_add(objects, json_node_copy(json_array_get_element(a, j)));
    }
  }
  return g_steal_pointer(&objects);
}

static gboolean
inspect_containers(const Compose *c, GPtrArray *containers, GError **error)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  const char *prefix[] = { "inspect", "--type", "container", "--", NULL };
  g_strv_builder_addv(b, prefix);
  for (guint i = 0; i < containers->len; i++)
    g_strv_builder_add(b, ((Container *)containers->pdata[i])->id);
  g_auto(GStrv) args = g_strv_builder_end(b);
  g_autofree char *text = docker_run(c, (const char *const *)args, QUERY_TIMEOUT_S, error);
  g_autoptr(GPtrArray) objects = text ? helper_keyprovider_docker_objects(text, error) : NULL;
  if (objects == NULL)
    return FALSE;
  for (guint i = 0; i < objects->len; i++) {
    JsonObject *o = json_node_get_object(objects->pdata[i]);
    g_autofree char *id = member_string(o, "Id");
    for (guint j = 0; j < containers->len; j++) {
      Container *ct = containers->pdata[j];
      if (ct->id[0] == '\0' || !g_str_has_prefix(id, ct->id))
        continue;
      g_free(ct->image_id);
      ct->image_id = member_string(o, "Image");
      ct->restarts = member_int(o, "RestartCount");
      ct->running = state_running(o);
    }
  }
  return TRUE;
}

static GPtrArray *
list_containers(const Compose *c, GError **error)
{
  const char *args[] = { "ps", "--all", "--format", "json", NULL };
  g_autofree char *text = helper_kp_compose_run(c, args, QUERY_TIMEOUT_S, error);
  g_autoptr(GPtrArray) objects = text ? helper_keyprovider_docker_objects(text, error) : NULL;
  if (objects == NULL)
    return NULL;
  g_autoptr(GPtrArray) containers = g_ptr_array_new_with_free_func(container_free);
  for (guint i = 0; i < objects->len; i++) {
    JsonObject *o = json_node_get_object(objects->pdata[i]);
    Container *ct = g_new0(Container, 1);
    ct->id = member_string(o, "ID");
    ct->name = member_string(o, "Name");
    ct->service = member_string(o, "Service");
    ct->state = member_string(o, "State");
    ct->image = member_string(o, "Image");
    g_ptr_array_add(containers, ct);
  }
  if (containers->len > 0 && !inspect_containers(c, containers, error))
    return NULL;
  return g_steal_pointer(&containers);
}

/* ---- jobs ---- */

/* The enclave prints its MRENCLAVE as it starts; record it for the VMs' start-time check. */
static void
record_mrenclave(const LcvmConfig *config, const Compose *c, HelperJob *job)
{
  g_autofree char *tail = g_strdup_printf("%d", STATUS_LOG_LINES);
  const char *log_args[] = { "logs", "--no-color", "--tail", tail, NULL };
  g_autofree char *logs = helper_kp_compose_run(c, log_args, QUERY_TIMEOUT_S, NULL);
  g_autofree char *mrenclave = logs ? helper_mrenclave_observe(config, logs) : NULL;
  if (mrenclave != NULL)
    helper_job_step(job, 0.95, "the enclave's MRENCLAVE is %s", mrenclave);
}

gboolean
helper_keyprovider_start_job(HelperJob *job, gpointer data, GError **error)
{
  const LcvmConfig *config = helper_job_daemon(job)->config;
  helper_job_step(job, 0.05, "checking docker and the compose directory");
  g_autoptr(Compose) c = helper_kp_compose_open(config, error);
  if (c == NULL)
    return FALSE;
  helper_job_step(job, 0.2, "finding the images %s names", c->file);
  g_autoptr(GHashTable) ids = helper_kp_image_ids(c, error);
  if (ids == NULL || !pin_check(config, ids, job, error))
    return FALSE;
  helper_job_step(job, 0.5,
                  "starting the containers (docker compose up -d --no-build --pull never)");
  const char *up[] = { "up", "-d", "--no-build", "--pull", "never", NULL };
  g_autofree char *out = helper_kp_compose_run(c, up, UP_TIMEOUT_S, error);
  if (out == NULL)
    return FALSE;
  helper_job_step(job, 0.9, "checking that the running images are the pinned ones");
  g_autoptr(GPtrArray) containers = list_containers(c, error);
  if (containers == NULL)
    return FALSE;
  for (guint i = 0; i < containers->len; i++) {
    Container *ct = containers->pdata[i];
    if (ct->image_id == NULL || !g_hash_table_contains(ids, ct->image) ||
        !g_str_equal(g_hash_table_lookup(ids, ct->image), ct->image_id)) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                  "container %s runs image %s, not the pinned %s: stop the key provider, "
                  "remove the container and start again",
                  ct->name, ct->image_id ? ct->image_id : "(unknown)", ct->image);
      return FALSE;
    }
  }
  record_mrenclave(config, c, job);
  helper_job_step(job, 1.0, "the key provider is started (%u containers)", containers->len);
  return TRUE;
}

gboolean
helper_keyprovider_stop_job(HelperJob *job, gpointer data, GError **error)
{
  const LcvmConfig *config = helper_job_daemon(job)->config;
  helper_job_step(job, 0.1, "checking docker and the compose directory");
  g_autoptr(Compose) c = helper_kp_compose_open(config, error);
  if (c == NULL)
    return FALSE;
  helper_job_step(job, 0.3, "stopping the containers (docker compose down)");
  const char *down[] = { "down", NULL };
  g_autofree char *out = helper_kp_compose_run(c, down, UP_TIMEOUT_S, error);
  if (out == NULL)
    return FALSE;
  helper_job_step(job, 1.0, "the key provider is stopped");
  return TRUE;
}

GStrv
helper_keyprovider_locks(HelperCall *call)
{
  const char *const keys[] = { HELPER_KP_LOCK, NULL };
  return g_strdupv((char **)keys);
}

/* ---- status ---- */

static gboolean
port_answers(const char *address)
{
  g_autoptr(GSocketConnectable) target = g_network_address_parse(address, 3443, NULL);
  if (target == NULL)
    return FALSE;
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_socket_client_set_enable_proxy(client, FALSE);
  g_socket_client_set_timeout(client, PORT_TIMEOUT_S);
  g_autoptr(GSocketConnection) conn = g_socket_client_connect(client, target, NULL, NULL);
  return conn != NULL;
}

GPtrArray *
helper_keyprovider_enclave_errors(const char *logs)
{
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
  g_auto(GStrv) lines = g_strsplit(logs, "\n", -1);
  for (guint i = 0; lines[i] != NULL && found->len < ENCLAVE_ERRORS_MAX; i++) {
    g_autofree char *lower = g_ascii_strdown(lines[i], -1);
    gboolean load_failed =
        strstr(lower, "load_enclave") && (strstr(lower, "fail") || strstr(lower, "error") ||
                                          strstr(lower, "eperm") || strstr(lower, "einval"));
    if (strstr(lower, "error 44") || load_failed)
      g_ptr_array_add(found, lcvm_text_for_message_max(lines[i], ENCLAVE_ERROR_TEXT_MAX));
  }
  return g_steal_pointer(&found);
}

static GVariant *
strv_variant(GPtrArray *strings)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
  for (guint i = 0; i < strings->len; i++)
    g_variant_builder_add(&b, "s", (char *)strings->pdata[i]);
  return g_variant_builder_end(&b);
}

static GVariant *
containers_variant(GPtrArray *containers)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
  for (guint i = 0; i < containers->len; i++) {
    Container *ct = containers->pdata[i];
    g_variant_builder_open(&b, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&b, "{sv}", "name", g_variant_new_string(ct->name));
    g_variant_builder_add(&b, "{sv}", "service", g_variant_new_string(ct->service));
    g_variant_builder_add(&b, "{sv}", "state", g_variant_new_string(ct->state));
    g_variant_builder_add(&b, "{sv}", "image", g_variant_new_string(ct->image));
    g_variant_builder_add(&b, "{sv}", "image_id",
                          g_variant_new_string(ct->image_id ? ct->image_id : ""));
    g_variant_builder_add(&b, "{sv}", "restart_count", g_variant_new_int64(ct->restarts));
    g_variant_builder_add(&b, "{sv}", "running", g_variant_new_boolean(ct->running));
    g_variant_builder_close(&b);
  }
  return g_variant_builder_end(&b);
}

static GVariant *
pin_variant(GHashTable *pin)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{ss}"));
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, pin);
  while (g_hash_table_iter_next(&it, &k, &v))
    g_variant_builder_add(&b, "{ss}", (char *)k, (char *)v);
  return g_variant_builder_end(&b);
}

/* Every running container runs a pinned image. */
static gboolean
pin_matches(GHashTable *pin, GPtrArray *containers)
{
  if (g_hash_table_size(pin) == 0 || containers->len == 0)
    return FALSE;
  for (guint i = 0; i < containers->len; i++) {
    Container *ct = containers->pdata[i];
    const char *pinned = g_hash_table_lookup(pin, ct->image);
    if (pinned == NULL || ct->image_id == NULL || !g_str_equal(pinned, ct->image_id))
      return FALSE;
  }
  return TRUE;
}

static GVariant *
status_build(const LcvmConfig *config, GError **error)
{
  g_autoptr(Compose) c = helper_kp_compose_open(config, error);
  if (c == NULL)
    return NULL;
  g_autoptr(GPtrArray) containers = list_containers(c, error);
  if (containers == NULL)
    return NULL;
  g_autofree char *tail = g_strdup_printf("%d", STATUS_LOG_LINES);
  const char *log_args[] = { "logs", "--no-color", "--tail", tail, NULL };
  g_autofree char *logs =
      containers->len ? helper_kp_compose_run(c, log_args, QUERY_TIMEOUT_S, error) : g_strdup("");
  g_autoptr(GHashTable) pin = logs ? pin_read(config, error) : NULL;
  if (pin == NULL)
    return NULL;

  gboolean running = containers->len > 0;
  for (guint i = 0; i < containers->len; i++)
    running = running && ((Container *)containers->pdata[i])->running;
  gboolean answering = port_answers(config->key_provider_address);
  gboolean production = strstr(logs, "PRODUCTION mode") != NULL;
  g_autoptr(GPtrArray) errors = helper_keyprovider_enclave_errors(logs);
  gboolean pinned = pin_matches(pin, containers);
  g_autoptr(GPtrArray) disks = helper_kp_data_disks(config);
  g_autofree char *mrenclave = helper_mrenclave_observe(config, logs);
  g_autoptr(GPtrArray) mismatched = helper_mrenclave_mismatched(config, disks, mrenclave);

  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
  if (!running)
    g_ptr_array_add(problems, g_strdup("not all containers are running: run 'lium-cvm "
                                       "key-provider start'"));
  if (!answering)
    g_ptr_array_add(problems,
                    g_strdup_printf("nothing answers on %s", config->key_provider_address));
  if (!production)
    g_ptr_array_add(problems, g_strdup("'PRODUCTION mode' is not in the recent logs: see "
                                       "'lium-cvm key-provider logs'"));
  if (errors->len > 0)
    g_ptr_array_add(problems, g_strdup("the enclave failed to load (AESM error 44 / "
                                       "load_enclave): register the platform with Intel (SGX "
                                       "Auto MP Registration) and check the PCCS"));
  if (!pinned)
    g_ptr_array_add(problems, g_strdup("the running images are not the pinned ones (or "
                                       "nothing is pinned yet)"));
  if (mismatched->len > 0) {
    g_ptr_array_add(mismatched, NULL);
    g_autofree char *list = g_strjoinv(", ", (char **)mismatched->pdata);
    g_ptr_array_remove_index(mismatched, mismatched->len - 1);
    g_ptr_array_add(problems,
                    g_strdup_printf("data disks made under another MRENCLAVE will not open with "
                                    "this key provider: %s; run the key provider they were made "
                                    "with, or recreate those VMs",
                                    list));
  }

  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&b, "{sv}", "compose_file", g_variant_new_string(c->file));
  g_variant_builder_add(&b, "{sv}", "address", g_variant_new_string(config->key_provider_address));
  g_variant_builder_add(&b, "{sv}", "containers", containers_variant(containers));
  g_variant_builder_add(&b, "{sv}", "running", g_variant_new_boolean(running));
  g_variant_builder_add(&b, "{sv}", "port_answering", g_variant_new_boolean(answering));
  g_variant_builder_add(&b, "{sv}", "production_mode", g_variant_new_boolean(production));
  g_variant_builder_add(&b, "{sv}", "enclave_errors", strv_variant(errors));
  g_variant_builder_add(&b, "{sv}", "pinned", pin_variant(pin));
  g_variant_builder_add(&b, "{sv}", "pin_matches", g_variant_new_boolean(pinned));
  g_variant_builder_add(&b, "{sv}", "data_disks", strv_variant(disks));
  g_variant_builder_add(&b, "{sv}", "mrenclave", g_variant_new_string(mrenclave ? mrenclave : ""));
  g_variant_builder_add(&b, "{sv}", "mrenclave_mismatch", strv_variant(mismatched));
  g_variant_builder_add(&b, "{sv}", "ready", g_variant_new_boolean(problems->len == 0));
  g_variant_builder_add(&b, "{sv}", "problems", strv_variant(problems));
  return g_variant_builder_end(&b);
}

/* ---- status and logs: worker threads ---- */

GVariant *
helper_keyprovider_status(HelperDaemon *d, gpointer data, GError **error)
{
  GVariant *status = status_build(d->config, error);
  return status ? g_variant_new("(@a{sv})", status) : NULL;
}

gboolean
helper_keyprovider_logs_validate(HelperCall *call, GError **error)
{
  guint lines = 0;
  g_variant_get_child(call->args, 0, "u", &lines);
  if (lines > LOG_LINES_MAX) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "ask for at most %d lines (0 means %d)", LOG_LINES_MAX, LOG_LINES_DEFAULT);
    return FALSE;
  }
  call->data = GUINT_TO_POINTER(lines ? lines : LOG_LINES_DEFAULT);
  return TRUE;
}

GVariant *
helper_keyprovider_logs(HelperDaemon *d, gpointer data, GError **error)
{
  g_autoptr(Compose) c = helper_kp_compose_open(d->config, error);
  g_autofree char *n = g_strdup_printf("%u", GPOINTER_TO_UINT(data));
  const char *args[] = { "logs", "--no-color", "--tail", n, NULL };
  g_autofree char *text = c ? helper_kp_compose_run(c, args, QUERY_TIMEOUT_S, error) : NULL;
  return text ? g_variant_new("(s)", text) : NULL;
}
