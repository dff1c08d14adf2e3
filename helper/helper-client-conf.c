/* SPDX-License-Identifier: MIT */
/* dstack's client.conf, trusted only when root-owned (see the header). */
#include "helper-client-conf.h"
#include "lcvm-client-conf.h"
#include "lcvm-error.h"
#include "lcvm-trust.h"

#define CLIENT_CONF_MAX (64u * 1024)

char *
helper_client_conf_text(const LcvmConfig *config, GError **error)
{
  const char *path = config->dstack_client_conf;
  if (path[0] == '\0' || !g_file_test(path, G_FILE_TEST_EXISTS))
    return NULL;
  g_autofree char *trusted = lcvm_trusted_path(path, error);
  g_autofree char *text = NULL;
  gsize len = 0;
  if (trusted == NULL || !g_file_get_contents(trusted, &text, &len, error))
    return NULL;
  if (len > CLIENT_CONF_MAX) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s is larger than %u bytes: shorten it (dstack's client.conf holds a few keys)",
                path, CLIENT_CONF_MAX);
    return NULL;
  }
  return g_steal_pointer(&text);
}

char *
helper_client_conf_docker_registry(const LcvmConfig *config, GError **error)
{
  g_autofree char *text = helper_client_conf_text(config, error);
  return text != NULL ? lcvm_client_conf_docker_registry(text) : NULL;
}
