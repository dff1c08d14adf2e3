/* What the host can give a VM about to start, asked of the kernel right now: how many CPUs
 * are online and whether a forward's host address:port can be bound. Probes only: a port is
 * bound and closed at once, nothing is reserved (the helper's locks do that) and nothing
 * outside the probe socket is touched. */
#pragma once
#include <glib.h>

#include "lcvm-manifest.h"

/* CPUs the kernel has online (at least 1). */
guint lcvm_host_cpu_count(void);

/* Binds a socket of the forward's protocol to its address:port the way QEMU's user network
 * will (SO_REUSEADDR for TCP, so a port in TIME_WAIT counts as free) and closes it again.
 * LCVM_ERROR_BUSY "… port N is in use …" when something holds it; LCVM_ERROR_INVALID_ARGUMENT
 * when the address is not one of this host's. */
gboolean lcvm_port_check_free(const LcvmPortForward *forward, GError **error);
