/* SPDX-License-Identifier: MIT */
/* dstack's client.conf as the helper trusts it: read only when root alone can have written it
 * (root-owned, not group/other-writable along its whole path), at most 64 KiB. It names the
 * QEMU fallback ([qemu] path) and the guest's docker registry ([docker] registry). */
#pragma once
#include "lcvm-config.h"

/* The text of [paths] dstack_client_conf; NULL without error when none is configured or the
 * file is absent; NULL with error when it exists but is not trusted or cannot be read. */
char *helper_client_conf_text(const LcvmConfig *config, GError **error);

/* [docker] registry for .sys-config.json (docker_registry, as Lium's dstack.py writes it);
 * NULL without error when there is none. */
char *helper_client_conf_docker_registry(const LcvmConfig *config, GError **error);
