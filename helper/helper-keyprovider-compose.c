/* SPDX-License-Identifier: MIT */
/* The key provider's compose project and docker (see helper-keyprovider-private.h).
 *
 * docker runs as root, so everything it is told to run must be root's: the docker executable
 * and the compose directory, its compose file and its .env are root-owned and not writable by
 * group or others along their whole path (lcvm_trusted_path). docker gets a clean environment,
 * an explicit -f (so no override file is ever merged), and a compose file that builds nothing
 * and includes nothing. Nothing here takes a path or a command from the caller. */
#include "helper-keyprovider-private.h"
#include "lcvm-error.h"
#include "lcvm-trust.h"
#include <string.h>
#include <sys/stat.h>

#define COMPOSE_MAX (1024 * 1024)
#define OUTPUT_MAX  (8 * 1024 * 1024)

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
check_compose_text(const char *file, const char *text, GError **error)
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
      !check_compose_text(c->file, text, error))
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

char *
helper_kp_docker_run(const Compose *c, const char *const *args, guint timeout_s, GError **error)
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

char *
helper_kp_compose_run(const Compose *c, const char *const *args, guint timeout_s, GError **error)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  const char *prefix[] = { "compose", "--project-directory", c->dir, "-f", c->file, NULL };
  g_strv_builder_addv(b, prefix);
  g_strv_builder_addv(b, (const char **)args);
  g_auto(GStrv) argv = g_strv_builder_end(b);
  return helper_kp_docker_run(c, (const char *const *)argv, timeout_s, error);
}
