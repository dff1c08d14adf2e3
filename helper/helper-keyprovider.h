/* Host.KeyProviderStatus, StartKeyProvider, StopKeyProvider, KeyProviderLogs: the SGX key
 * provider (aesmd + gramine-sealing-key-provider) run by docker compose from the root-owned
 * [key-provider] compose_dir (reference/lium.md §3). */
#pragma once
#include "helper-daemon.h"

/* The file under state_dir that pins the key provider's image ids at its first start. */
#define HELPER_KEY_PROVIDER_PIN "key-provider.pin"

/* Connects the four handlers to d->host (called by helper_host_export). */
void helper_keyprovider_connect(HelperDaemon *d);
