/* SPDX-License-Identifier: MIT */
/* The key provider's status report (Host.KeyProviderStatus, `lium-cvm key-provider status`):
 * its containers, whether its port answers, the enclave's mode, errors and MRENCLAVE from the
 * recent logs, the pin, the data disks, and every problem with what to do about it. Reads
 * only: nothing here starts, stops or changes anything. */
#include "helper-keyprovider.h"
#include "helper-keyprovider-private.h"
#include "helper-mrenclave.h"
#include "lcvm-text.h"
#include <string.h>

#define PORT_TIMEOUT_S     3
#define ENCLAVE_ERRORS_MAX 10

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

/* What the status report is made of, read once. */
typedef struct {
  gboolean running, answering, production, pinned;
  GPtrArray *containers, *errors, *disks, *mismatched;
  GHashTable *pin;
  char *mrenclave;
} Status;

static void
status_clear(Status *st)
{
  g_clear_pointer(&st->containers, g_ptr_array_unref);
  g_clear_pointer(&st->errors, g_ptr_array_unref);
  g_clear_pointer(&st->disks, g_ptr_array_unref);
  g_clear_pointer(&st->mismatched, g_ptr_array_unref);
  g_clear_pointer(&st->pin, g_hash_table_unref);
  g_clear_pointer(&st->mrenclave, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Status, status_clear)

static gboolean
status_read(const LcvmConfig *config, const Compose *c, Status *st, GError **error)
{
  st->containers = helper_kp_list_containers(c, error);
  if (st->containers == NULL)
    return FALSE;
  g_autofree char *tail = g_strdup_printf("%d", HELPER_KP_STATUS_LOG_LINES);
  const char *log_args[] = { "logs", "--no-color", "--tail", tail, NULL };
  g_autofree char *logs = st->containers->len
                              ? helper_kp_compose_run(c, log_args, HELPER_KP_QUERY_TIMEOUT_S, error)
                              : g_strdup("");
  st->pin = logs ? helper_kp_pin_read(config, error) : NULL;
  if (st->pin == NULL)
    return FALSE;

  st->running = st->containers->len > 0;
  for (guint i = 0; i < st->containers->len; i++)
    st->running = st->running && ((Container *)st->containers->pdata[i])->running;
  st->answering = port_answers(config->key_provider_address);
  st->production = strstr(logs, "PRODUCTION mode") != NULL;
  st->errors = helper_keyprovider_enclave_errors(logs);
  st->pinned = pin_matches(st->pin, st->containers);
  st->disks = helper_kp_data_disks(config);
  st->mrenclave = helper_mrenclave_observe(config, logs);
  st->mismatched = helper_mrenclave_mismatched(config, st->disks, st->mrenclave);
  return TRUE;
}

/* What keeps the key provider from being ready, each with what to do. */
static GPtrArray *
status_problems(const LcvmConfig *config, const Status *st)
{
  GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
  if (!st->running)
    g_ptr_array_add(problems, g_strdup("not all containers are running: run 'lium-cvm "
                                       "key-provider start'"));
  if (!st->answering)
    g_ptr_array_add(problems,
                    g_strdup_printf("nothing answers on %s", config->key_provider_address));
  if (!st->production)
    g_ptr_array_add(problems, g_strdup("'PRODUCTION mode' is not in the recent logs: see "
                                       "'lium-cvm key-provider logs'"));
  if (st->errors->len > 0)
    g_ptr_array_add(problems, g_strdup("the enclave failed to load (AESM error 44 / "
                                       "load_enclave): register the platform with Intel (SGX "
                                       "Auto MP Registration) and check the PCCS"));
  if (!st->pinned)
    g_ptr_array_add(problems, g_strdup("the running images are not the pinned ones (or "
                                       "nothing is pinned yet)"));
  if (st->mismatched->len > 0) {
    g_ptr_array_add(st->mismatched, NULL);
    g_autofree char *list = g_strjoinv(", ", (char **)st->mismatched->pdata);
    g_ptr_array_remove_index(st->mismatched, st->mismatched->len - 1);
    g_ptr_array_add(problems,
                    g_strdup_printf("data disks made under another MRENCLAVE will not open with "
                                    "this key provider: %s; run the key provider they were made "
                                    "with, or recreate those VMs",
                                    list));
  }
  return problems;
}

GVariant *
helper_keyprovider_status(const LcvmConfig *config, GError **error)
{
  g_autoptr(Compose) c = helper_kp_compose_open(config, error);
  if (c == NULL)
    return NULL;
  g_auto(Status) st = { 0 };
  if (!status_read(config, c, &st, error))
    return NULL;
  g_autoptr(GPtrArray) problems = status_problems(config, &st);

  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&b, "{sv}", "compose_file", g_variant_new_string(c->file));
  g_variant_builder_add(&b, "{sv}", "address", g_variant_new_string(config->key_provider_address));
  g_variant_builder_add(&b, "{sv}", "containers", containers_variant(st.containers));
  g_variant_builder_add(&b, "{sv}", "running", g_variant_new_boolean(st.running));
  g_variant_builder_add(&b, "{sv}", "port_answering", g_variant_new_boolean(st.answering));
  g_variant_builder_add(&b, "{sv}", "production_mode", g_variant_new_boolean(st.production));
  g_variant_builder_add(&b, "{sv}", "enclave_errors", strv_variant(st.errors));
  g_variant_builder_add(&b, "{sv}", "pinned", pin_variant(st.pin));
  g_variant_builder_add(&b, "{sv}", "pin_matches", g_variant_new_boolean(st.pinned));
  g_variant_builder_add(&b, "{sv}", "data_disks", strv_variant(st.disks));
  g_variant_builder_add(&b, "{sv}", "mrenclave",
                        g_variant_new_string(st.mrenclave ? st.mrenclave : ""));
  g_variant_builder_add(&b, "{sv}", "mrenclave_mismatch", strv_variant(st.mismatched));
  g_variant_builder_add(&b, "{sv}", "ready", g_variant_new_boolean(problems->len == 0));
  g_variant_builder_add(&b, "{sv}", "problems", strv_variant(problems));
  return g_variant_builder_end(&b);
}
