/* SPDX-License-Identifier: MIT */
/* What the key provider's files share: the trusted compose project and docker with a clean
 * environment (helper-keyprovider-compose.c), the image ids and their pin, and the VMs with a
 * data disk (helper-keyprovider-pin.c), the containers (helper-keyprovider-containers.c). For
 * helper-keyprovider*.c only. */
#pragma once
#include "helper-act.h"
#include "helper-tool.h"
#include "lcvm-config.h"
#include <gio/gio.h>

/* The lock every key provider job takes. */
#define HELPER_KP_LOCK "key-provider"
/* How long docker may take to answer a question (config, ps, inspect, logs). */
#define HELPER_KP_QUERY_TIMEOUT_S 60
/* The log lines read for the MRENCLAVE and the status. */
#define HELPER_KP_STATUS_LOG_LINES 200

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
/* docker args… in the compose directory, clean environment, stdin /dev/null; stdout on
 * success, else an error quoting docker. */
char *helper_kp_docker_run(const Compose *c, const char *const *args, guint timeout_s,
                           GError **error);
/* `docker compose --project-directory DIR -f FILE args…`; stdout on success. */
char *helper_kp_compose_run(const Compose *c, const char *const *args, guint timeout_s,
                            GError **error);

/* name → image id of every image the runtime compose file names. */
GHashTable *helper_kp_image_ids(const Compose *c, GError **error);
/* The pin (name → id; empty before the first start), or NULL when it is damaged. */
GHashTable *helper_kp_pin_read(const LcvmConfig *config, GError **error);
gboolean helper_kp_pin_write(const LcvmConfig *config, GHashTable *ids, GError **error);
/* First start: pin. Same images: nothing. Different images: refused while a data disk exists,
 * re-pinned otherwise. */
gboolean helper_kp_pin_check(const LcvmConfig *config, GHashTable *ids, HelperActStep step,
                             gpointer step_data, GError **error);
/* Names of the VMs with state_dir/instances/NAME/hda.img, sorted. */
GPtrArray *helper_kp_data_disks(const LcvmConfig *config);

/* One container of the project, from `compose ps` and `docker inspect`. */
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
/* Every container of the project (running or not), inspected. */
GPtrArray *helper_kp_list_containers(const Compose *c, GError **error);
