/* SPDX-License-Identifier: MIT */
/* The SGX key provider under docker compose (reference/lium.md §3, §8.7-8.11): the acts start,
 * stop and logs (status: helper-keyprovider-status.c; build: helper-keyprovider-build.c),
 * callable without a bus, and the method table's thin adapters from a call or Job to them.
 *
 * docker runs as root from the root-owned compose project (helper-keyprovider-compose.c) with
 * `up -d --no-build --pull never`; the image ids are pinned in state_dir at the first start
 * (helper-keyprovider-pin.c). Nothing here builds or pulls an image, and nothing takes a path
 * or a command from the caller. */
#include "helper-keyprovider.h"
#include "helper-keyprovider-build.h"
#include "helper-keyprovider-private.h"
#include "helper-mrenclave.h"
#include "lcvm-error.h"

#define UP_TIMEOUT_S      300
#define LOG_LINES_DEFAULT 200
#define LOG_LINES_MAX     10000

/* The enclave prints its MRENCLAVE as it starts; record it for the VMs' start-time check. */
static void
record_mrenclave(const LcvmConfig *config, const Compose *c, HelperActStep step, gpointer step_data)
{
  g_autofree char *tail = g_strdup_printf("%d", HELPER_KP_STATUS_LOG_LINES);
  const char *log_args[] = { "logs", "--no-color", "--tail", tail, NULL };
  g_autofree char *logs = helper_kp_compose_run(c, log_args, HELPER_KP_QUERY_TIMEOUT_S, NULL);
  g_autofree char *mrenclave = logs ? helper_mrenclave_observe(config, logs) : NULL;
  if (mrenclave != NULL)
    helper_act_step(step, step_data, 0.95, FALSE, "the enclave's MRENCLAVE is %s", mrenclave);
}

gboolean
helper_keyprovider_start(const LcvmConfig *config, HelperActStep step, gpointer step_data,
                         GError **error)
{
  helper_act_step(step, step_data, 0.05, FALSE, "checking docker and the compose directory");
  g_autoptr(Compose) c = helper_kp_compose_open(config, error);
  if (c == NULL)
    return FALSE;
  helper_act_step(step, step_data, 0.2, FALSE, "finding the images %s names", c->file);
  g_autoptr(GHashTable) ids = helper_kp_image_ids(c, error);
  if (ids == NULL || !helper_kp_pin_check(config, ids, step, step_data, error))
    return FALSE;
  helper_act_step(step, step_data, 0.5, FALSE,
                  "starting the containers (docker compose up -d --no-build --pull never)");
  const char *up[] = { "up", "-d", "--no-build", "--pull", "never", NULL };
  g_autofree char *out = helper_kp_compose_run(c, up, UP_TIMEOUT_S, error);
  if (out == NULL)
    return FALSE;
  helper_act_step(step, step_data, 0.9, FALSE,
                  "checking that the running images are the pinned ones");
  g_autoptr(GPtrArray) containers = helper_kp_list_containers(c, error);
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
  record_mrenclave(config, c, step, step_data);
  helper_act_step(step, step_data, 1.0, FALSE, "the key provider is started (%u containers)",
                  containers->len);
  return TRUE;
}

gboolean
helper_keyprovider_stop(const LcvmConfig *config, HelperActStep step, gpointer step_data,
                        GError **error)
{
  helper_act_step(step, step_data, 0.1, FALSE, "checking docker and the compose directory");
  g_autoptr(Compose) c = helper_kp_compose_open(config, error);
  if (c == NULL)
    return FALSE;
  helper_act_step(step, step_data, 0.3, FALSE, "stopping the containers (docker compose down)");
  const char *down[] = { "down", NULL };
  g_autofree char *out = helper_kp_compose_run(c, down, UP_TIMEOUT_S, error);
  if (out == NULL)
    return FALSE;
  helper_act_step(step, step_data, 1.0, FALSE, "the key provider is stopped");
  return TRUE;
}

char *
helper_keyprovider_logs(const LcvmConfig *config, guint lines, GError **error)
{
  g_autoptr(Compose) c = helper_kp_compose_open(config, error);
  g_autofree char *n = g_strdup_printf("%u", lines);
  const char *args[] = { "logs", "--no-color", "--tail", n, NULL };
  return c ? helper_kp_compose_run(c, args, HELPER_KP_QUERY_TIMEOUT_S, error) : NULL;
}

/* ---- the method table's steps ---- */

GStrv
helper_keyprovider_locks(HelperCall *call)
{
  const char *const keys[] = { HELPER_KP_LOCK, NULL };
  return g_strdupv((char **)keys);
}

gboolean
helper_keyprovider_start_job(HelperJob *job, gpointer data, GError **error)
{
  return helper_keyprovider_start(helper_job_daemon(job)->config, helper_act_job_step, job, error);
}

gboolean
helper_keyprovider_stop_job(HelperJob *job, gpointer data, GError **error)
{
  return helper_keyprovider_stop(helper_job_daemon(job)->config, helper_act_job_step, job, error);
}

gboolean
helper_keyprovider_build_job(HelperJob *job, gpointer data, GError **error)
{
  return helper_keyprovider_build(helper_job_daemon(job)->config, helper_act_job_step, job, error);
}

GVariant *
helper_keyprovider_status_call(HelperDaemon *d, gpointer data, GError **error)
{
  GVariant *status = helper_keyprovider_status(d->config, error);
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
helper_keyprovider_logs_call(HelperDaemon *d, gpointer data, GError **error)
{
  g_autofree char *text = helper_keyprovider_logs(d->config, GPOINTER_TO_UINT(data), error);
  return text ? g_variant_new("(s)", text) : NULL;
}
