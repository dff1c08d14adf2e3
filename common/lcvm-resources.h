/* SPDX-License-Identifier: MIT */
/* What the host can give a VM about to start, asked of the kernel right now: how many CPUs
 * are online and how much memory the host has (both from the configured sysfs_root, like every
 * other host fact, so tests can pose as any host) and whether a forward's host address:port
 * can be bound. Probes only: a port is bound and closed at once, nothing is reserved (the
 * helper's locks do that) and nothing outside the probe socket is touched. */
#pragma once
#include <glib.h>

#include "lcvm-manifest.h"

/* The number of entries of a kernel list ("0-55,112-167\n", as in cpu/online or
 * node/online), each one value or an ascending range below 2^20; FALSE for anything else.
 * With values (may be NULL) the entries are appended to it as guint. */
gboolean lcvm_kernel_list_parse(const char *text, guint *count, GArray *values);

/* CPUs the kernel has online: sysfs_root/devices/system/cpu/online. */
gboolean lcvm_host_cpu_count(const char *sysfs_root, guint *count, GError **error);

/* The host's memory: the MemTotal of every online NUMA node,
 * sysfs_root/devices/system/node/node<N>/meminfo ("Node N MemTotal:  X kB"). */
gboolean lcvm_host_memory(const char *sysfs_root, guint64 *bytes, GError **error);

/* Binds a socket of the forward's protocol to its address:port the way QEMU's user network
 * will (SO_REUSEADDR for TCP, so a port in TIME_WAIT counts as free) and closes it again.
 * LCVM_ERROR_BUSY "… port N is in use …" when something holds it; LCVM_ERROR_INVALID_ARGUMENT
 * when the address is not one of this host's. */
gboolean lcvm_port_check_free(const LcvmPortForward *forward, GError **error);
