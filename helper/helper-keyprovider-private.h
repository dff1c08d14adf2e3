/* SPDX-License-Identifier: MIT */
/* What helper-keyprovider.c (status, start, stop, logs) shares with
 * helper-keyprovider-build.c (build): the trusted compose project, docker with a clean
 * environment, the image ids and their pin, and the VMs with a data disk. Not for other files. */
#pragma once
#include "helper-job.h"
#include "helper-tool.h"
#include "lcvm-config.h"
#include <gio/gio.h>

/* The lock every key provider job takes. */
#define HELPER_KP_LOCK "key-provider"

typedef struct {
  char *docker; /* resolved and trusted */
  char *dir;    /* [key-provider] compose_dir, resolved and trusted */
  char *file;   /* the runtime compose file in it (no build:, no include:) */
} Compose;

void helper_kp_compose_free(Compose *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Compose, helper_kp_compose_free)

/* Opens and vets the runtime compose project (docker, the directory, its one compose file,
 * no override file, a trusted .env). */
Compose *helper_kp_compose_open(const LcvmConfig *config, GError **error);
gboolean helper_kp_prefix_error(GError **error, const char *what);
/* key followed by ':' as a YAML key in line (deliberately broad, see its definition). */
gboolean helper_kp_line_has_key(const char *line, const char *key);

/* docker with argv (argv[0] is c->docker) as a trusted tool: clean environment, cwd the
 * compose directory. */
HelperTool helper_kp_docker(const Compose *c, const char *const *argv);
/* `docker compose --project-directory DIR -f FILE args…`; stdout on success. */
char *helper_kp_compose_run(const Compose *c, const char *const *args, guint timeout_s,
                            GError **error);

/* name → image id of every image the runtime compose file names. */
GHashTable *helper_kp_image_ids(const Compose *c, GError **error);
gboolean helper_kp_pin_write(const LcvmConfig *config, GHashTable *ids, GError **error);
