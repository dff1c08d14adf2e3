/* SPDX-License-Identifier: MIT */
/* Host.BuildKeyProvider: `lium-cvm key-provider build`, the guide's first-time step (`docker
 * compose up --build` in Lium's key-provider/) without root for the operator. Building is a
 * separate, explicitly authorized act (manage-key-provider): the compose file `up` uses stays
 * free of build:; the build reads only the root-owned docker-compose.build.yaml next to it, whose
 * build contexts must lie inside that root-owned directory and whose images must be exactly the
 * ones the runtime file runs. A rebuilt enclave has a new MRENCLAVE, so the build is refused
 * while any CVM data disk exists on the host (lium-cvm's or a Lium checkout's, as `lium-cvm
 * inventory` sees them) or the inventory is incomplete. docker runs with a clean environment;
 * its output is the job's progress; the new image ids are pinned. */
#include "helper-keyprovider-build.h"
#include "helper-keyprovider-private.h"
#include "lcvm-error.h"
#include "lcvm-inventory.h"
#include "lcvm-mrenclave.h"
#include "lcvm-text.h"
#include "lcvm-trust.h"

#include <string.h>
#include <sys/stat.h>

#define BUILD_FILE       "docker-compose.build.yaml"
#define BUILD_FILE_MAX   (1024 * 1024)
#define BUILD_TIMEOUT_S  (2 * 3600)
#define STEP_INTERVAL_US (500 * 1000)
#define TAIL_LINES       20
#define TAIL_LINE_MAX    512
#define BUILD_LINE_MAX   (64 * 1024)

/* ---- the build file ---- */

/* A build context or Dockerfile path: relative, inside the compose directory, not a URL. */
static gboolean
local_path(const char *value)
{
  g_autofree char *v = g_strstrip(g_strdup(value));
  gsize n = strlen(v);
  if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
    v[n - 1] = '\0';
    memmove(v, v + 1, n - 1);
  }
  return v[0] != '\0' && v[0] != '/' && v[0] != '~' && strstr(v, "..") == NULL &&
         strstr(v, "://") == NULL && strchr(v, '$') == NULL && !g_str_has_prefix(v, "git@");
}

static gboolean
refuse_line(GError **error, const char *file, guint line, const char *why)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s line %u %s; fix the root-owned file", file,
              line, why);
  return FALSE;
}

/* What the build may read lies in the root-owned compose directory; nothing is pulled in. */
static gboolean
check_build_text(const char *file, const char *text, GError **error)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *line = lines[i] + strspn(lines[i], " \t-");
    if (line[0] == '#')
      continue;
    if (helper_kp_line_has_key(lines[i], "include") || helper_kp_line_has_key(lines[i], "extends"))
      return refuse_line(error, file, i + 1, "pulls in another compose file");
    if (helper_kp_line_has_key(lines[i], "additional_contexts"))
      return refuse_line(error, file, i + 1, "adds build contexts outside the directory");
    static const char *const path_keys[] = { "context", "dockerfile", "build", NULL };
    for (guint k = 0; path_keys[k] != NULL; k++) {
      gsize n = strlen(path_keys[k]);
      if (strncmp(line, path_keys[k], n) != 0 || line[n] != ':')
        continue;
      g_autofree char *value = g_strstrip(g_strdup(line + n + 1));
      if (value[0] != '\0' && !local_path(value)) /* empty: a block follows */
        return refuse_line(error, file, i + 1,
                           "names a build context or Dockerfile outside the compose "
                           "directory (only relative paths below it, no '..', no URL)");
    }
  }
  return TRUE;
}

/* The build file, trusted and vetted; NULL with error saying what to do. */
static char *
open_build_file(const Compose *c, GError **error)
{
  g_autofree char *named = g_build_filename(c->dir, BUILD_FILE, NULL);
  if (!g_file_test(named, G_FILE_TEST_EXISTS)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "%s holds no %s: install the key provider's build file there as root (Lium's "
                "key-provider/docker-compose.build.yaml with its Dockerfiles and sources)",
                c->dir, BUILD_FILE);
    return NULL;
  }
  g_autofree char *file = lcvm_trusted_path(named, error);
  if (file == NULL)
    return NULL;
  struct stat st;
  g_autofree char *text = NULL;
  if (stat(file, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > BUILD_FILE_MAX) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s must be a regular file of at most %d bytes", file, BUILD_FILE_MAX);
    return NULL;
  }
  if (!g_file_get_contents(file, &text, NULL, error) || !check_build_text(file, text, error))
    return NULL;
  return g_steal_pointer(&file);
}

/* The build file must build exactly the images the runtime file runs. */
static gboolean
check_build_images(const Compose *c, const char *build_file, GError **error)
{
  const char *args[] = { "config", "--images", NULL };
  Compose build = { .docker = c->docker, .dir = c->dir, .file = (char *)build_file };
  g_autofree char *built = helper_kp_compose_run(&build, args, HELPER_KP_QUERY_TIMEOUT_S, error);
  g_autofree char *run =
      built ? helper_kp_compose_run(c, args, HELPER_KP_QUERY_TIMEOUT_S, error) : NULL;
  if (run == NULL)
    return FALSE;
  g_auto(GStrv) a = g_strsplit(g_strstrip(built), "\n", -1);
  g_auto(GStrv) b = g_strsplit(g_strstrip(run), "\n", -1);
  gboolean same = g_strv_length(a) == g_strv_length(b);
  for (guint i = 0; same && a[i] != NULL; i++)
    same = g_strv_contains((const char *const *)b, g_strstrip(a[i]));
  if (same)
    return TRUE;
  g_autofree char *built_list = g_strjoinv(", ", a);
  g_autofree char *run_list = g_strjoinv(", ", b);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "%s builds the images %s, but %s runs %s: they must name the same images", build_file,
              built_list, c->file, run_list);
  return FALSE;
}

/* ---- no data disk anywhere ---- */

static gboolean
no_data_disks(const LcvmConfig *config, GError **error)
{
  g_autoptr(LcvmInventory) inv = lcvm_inventory_scan(config);
  if (lcvm_inventory_status(inv) == LCVM_INVENTORY_NONE)
    return TRUE;
  g_autoptr(GString) what = g_string_new(NULL);
  for (guint i = 0; i < inv->disks->len; i++) {
    const LcvmInventoryDisk *d = inv->disks->pdata[i];
    g_string_append_printf(what, "%s%s/" LCVM_INSTANCE_DATA_DISK, what->len ? ", " : "", d->dir);
  }
  for (guint i = 0; i < inv->incomplete->len; i++)
    g_string_append_printf(what, "%s%s", what->len ? "; " : "", (char *)inv->incomplete->pdata[i]);
  g_set_error(
      error, LCVM_ERROR, LCVM_ERROR_BUSY,
      "refusing to build the key provider: %s %s. A rebuilt enclave has a new MRENCLAVE, "
      "and a data disk sealed by the old one could never be opened again. Remove those "
      "VMs first ('lium-cvm inventory' lists every data disk)",
      inv->incomplete->len ? "the disk inventory is incomplete:" : "data disks exist:", what->str);
  return FALSE;
}

/* ---- running the build ---- */

typedef struct {
  HelperActStep step;
  gpointer step_data;
  GQueue tail;      /* the last TAIL_LINES lines (char*) */
  char *mrenclave;  /* what gramine-sgx-sigstruct-view printed during the build */
  gint64 last_step; /* monotonic time of the last step sent */
} BuildOutput;

static void
build_line(BuildOutput *o, const char *line)
{
  g_autofree char *mr = lcvm_mrenclave_from_logs(line);
  if (mr != NULL) {
    g_free(o->mrenclave);
    o->mrenclave = g_steal_pointer(&mr);
  }
  /* Kept for the failure's text (a Job result on the bus): bounded, valid UTF-8, no controls. */
  g_queue_push_tail(&o->tail, lcvm_text_for_message_max(line, TAIL_LINE_MAX));
  if (g_queue_get_length(&o->tail) > TAIL_LINES)
    g_free(g_queue_pop_head(&o->tail));
  gint64 now = g_get_monotonic_time();
  if (now - o->last_step >= STEP_INTERVAL_US && line[0] != '\0') {
    o->last_step = now;
    g_autofree char *shown = lcvm_text_for_message_max(line, 300);
    helper_act_step(o->step, o->step_data, 0.5, FALSE, "%s", shown);
  }
}

static char *
tail_text(BuildOutput *o)
{
  g_autoptr(GString) s = g_string_new(NULL);
  for (GList *l = o->tail.head; l != NULL; l = l->next)
    g_string_append_printf(s, "\n  %s", (char *)l->data);
  return g_string_free(g_steal_pointer(&s), FALSE);
}

/* A line of docker's output as it comes: bytes, not UTF-8, so a stray byte never stops the
 * reading while docker still writes. */
static void
on_build_line(const char *raw, gpointer data)
{
  g_autofree char *line = g_utf8_make_valid(raw, -1);
  build_line(data, line);
}

static gboolean
run_build(const Compose *c, const char *build_file, BuildOutput *o, GError **error)
{
  const char *argv[] = { c->docker,  "compose", "--project-directory", c->dir,  "-f",
                         build_file, "build",   "--progress",          "plain", NULL };
  HelperTool tool = helper_kp_docker(c, argv);
  tool.merge_stderr = TRUE;
  /* The lines go to on_build_line; only a little is kept beside them. */
  HelperCaptureOptions capture = { .timeout_ms = BUILD_TIMEOUT_S * 1000,
                                   .max_output = BUILD_LINE_MAX,
                                   .on_line = on_build_line,
                                   .line_data = o };
  g_auto(HelperCaptured) run = { 0 };
  if (!helper_tool_run(&tool, &capture, &run, error))
    return helper_kp_prefix_error(error, c->docker);
  if (!run.timed_out && run.exited && run.status == 0)
    return TRUE;
  g_autofree char *tail = tail_text(o);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "docker compose build %s; its last lines:%s",
              run.timed_out ? "took longer than its limit and was stopped" : "failed", tail);
  return FALSE;
}

gboolean
helper_keyprovider_build(const LcvmConfig *config, HelperActStep step, gpointer step_data,
                         GError **error)
{
  helper_act_step(step, step_data, 0.02, FALSE,
                  "looking for CVM data disks on this host (a rebuild changes "
                  "MRENCLAVE)");
  if (!no_data_disks(config, error))
    return FALSE;
  helper_act_step(step, step_data, 0.05, FALSE, "checking docker, the compose directory and %s",
                  BUILD_FILE);
  g_autoptr(Compose) c = helper_kp_compose_open(config, error);
  if (c == NULL)
    return FALSE;
  g_autofree char *build_file = open_build_file(c, error);
  if (build_file == NULL || !check_build_images(c, build_file, error))
    return FALSE;
  helper_act_step(step, step_data, 0.1, FALSE, "building the images (docker compose -f %s build)",
                  build_file);
  BuildOutput o = { .step = step, .step_data = step_data };
  g_queue_init(&o.tail);
  gboolean ok = run_build(c, build_file, &o, error);
  g_queue_clear_full(&o.tail, g_free);
  g_autofree char *mrenclave = g_steal_pointer(&o.mrenclave);
  if (!ok)
    return FALSE;
  /* The build took long and VM starts do not wait for it: a data disk made meanwhile under the
   * old enclave must keep it, so look again before the new images are pinned. */
  helper_act_step(step, step_data, 0.9, FALSE,
                  "looking for CVM data disks again, then pinning the new image ids");
  if (!no_data_disks(config, error))
    return FALSE;
  g_autoptr(GHashTable) ids = helper_kp_image_ids(c, error);
  if (ids == NULL || !helper_kp_pin_write(config, ids, error))
    return FALSE;
  g_autofree char *which = mrenclave ? g_strdup_printf(" (MRENCLAVE %s)", mrenclave) : NULL;
  helper_act_step(step, step_data, 1.0, FALSE,
                  "built and pinned%s; run 'lium-cvm key-provider start' to run the new images",
                  which ? which : "");
  return TRUE;
}
