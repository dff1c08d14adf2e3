/* SPDX-License-Identifier: MIT */
/* Host.KeyProviderStatus, StartKeyProvider, StopKeyProvider, KeyProviderLogs: the SGX key
 * provider (aesmd + gramine-sealing-key-provider) run by docker compose from the root-owned
 * [key-provider] compose_dir (reference/lium.md §3). */
#pragma once
#include "helper-act.h"
#include "helper-dispatch.h"

/* The acts, callable without a bus; each blocks (worker threads only) and reports through step
 * (may be NULL). start vets the compose project, pins or checks the images, runs `up -d
 * --no-build --pull never` and checks the running images are the pinned ones; stop runs
 * `down`. status is the report KeyProviderStatus answers (a{sv}); logs the containers' last
 * lines. */
gboolean helper_keyprovider_start(const LcvmConfig *config, HelperActStep step, gpointer step_data,
                                  GError **error);
gboolean helper_keyprovider_stop(const LcvmConfig *config, HelperActStep step, gpointer step_data,
                                 GError **error);
GVariant *helper_keyprovider_status(const LcvmConfig *config, GError **error);
char *helper_keyprovider_logs(const LcvmConfig *config, guint lines, GError **error);

/* The steps of KeyProviderStatus, KeyProviderLogs, StartKeyProvider, BuildKeyProvider and
 * StopKeyProvider, named in the method table (helper-methods.c): thin adapters to the acts;
 * every key provider Job takes one lock. */
GVariant *helper_keyprovider_status_call(HelperDaemon *d, gpointer data, GError **error);
gboolean helper_keyprovider_logs_validate(HelperCall *call, GError **error);
GVariant *helper_keyprovider_logs_call(HelperDaemon *d, gpointer data, GError **error);
GStrv helper_keyprovider_locks(HelperCall *call);
gboolean helper_keyprovider_start_job(HelperJob *job, gpointer data, GError **error);
gboolean helper_keyprovider_stop_job(HelperJob *job, gpointer data, GError **error);
gboolean helper_keyprovider_build_job(HelperJob *job, gpointer data, GError **error);

/* ---- parsing docker's output (unit tests and fuzz/fuzz-docker.c) ---- */

/* docker prints JSON either as one array (older compose, docker inspect) or one object per line
 * (compose ps since v2.21): the objects, or NULL with error. */
GPtrArray *helper_keyprovider_docker_objects(const char *text, GError **error);
/* AESM error 44 and load_enclave failures in the containers' logs (lium.md §8.7-8.8): at most a
 * few lines, each escaped (valid UTF-8, no controls) and at most ENCLAVE_ERROR_TEXT_MAX bytes. */
#define ENCLAVE_ERROR_TEXT_MAX 300
GPtrArray *helper_keyprovider_enclave_errors(const char *logs);
