/* SPDX-License-Identifier: MIT */
/* What running VMs hold on the host, so no two VMs ever get the same thing: the uids of
 * [qemu] uid_range (one for QEMU, one for its host-API bridge), vsock CIDs of cid_range,
 * host-API ports of hostapi_port_range, passed-through devices and forwarded host ports.
 * Bookkeeping only: nothing here touches a device, a socket or a process. A reservation is
 * all-or-nothing and is released as a whole, by VM name. Thread-safe (the start runs in a
 * worker thread, the release in the main loop). */
#pragma once
#include <glib.h>
#include <sys/types.h>

#include "lcvm-config.h"
#include "lcvm-manifest.h"

typedef struct _HelperAlloc HelperAlloc;

/* The key of a device slot, here and in the daemon's lock table (helper-daemon.h): one key,
 * so a lock on a device and a VM's hold on it are looked up alike. */
#define HELPER_ALLOC_DEVICE "device:"

/* What one VM holds. */
typedef struct {
  uid_t qemu_uid;
  uid_t bridge_uid;
  guint cid;
  guint16 hostapi_port;
  GStrv devices; /* GPU and NVSwitch slots */
  GStrv ports;   /* forwarded host ports as "tcp:2200" */
} HelperReservation;

void helper_reservation_free(HelperReservation *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperReservation, helper_reservation_free)

/* port_free: whether a host-API port can be bound right now (NULL: every port is). */
typedef gboolean (*HelperPortProbe)(guint16 port);

HelperAlloc *helper_alloc_new(const LcvmConfig *config, HelperPortProbe port_free);
void helper_alloc_free(HelperAlloc *alloc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperAlloc, helper_alloc_free)

/* Everything VM vm needs for manifest m: its devices and forwarded ports (LCVM_ERROR_BUSY
 * naming the VM that holds one), two uids, a CID and a host-API port (LCVM_ERROR_BUSY when a
 * range is exhausted). The lowest free CID and port are taken; uids go round-robin (below). */
HelperReservation *helper_alloc_reserve(HelperAlloc *alloc, const char *vm, const LcvmManifest *m,
                                        GError **error);

/* uids are handed out round-robin: the first free one from the cursor on, wrapping round
 * uid_range, and the cursor moves past what was taken — never the lowest free one, so the uid a
 * VM just released is the last to be handed out again (nothing it left behind can meet the next
 * VM). The cursor starts at the range's first uid; the caller keeps it across helper restarts
 * (helper-uid-cursor.h). A cursor outside uid_range restarts at its first uid. */
void helper_alloc_set_uid_cursor(HelperAlloc *alloc, guint64 uid);
guint64 helper_alloc_uid_cursor(HelperAlloc *alloc);

/* Re-adoption: takes exactly what a runtime record says vm holds. */
gboolean helper_alloc_claim(HelperAlloc *alloc, const char *vm, const HelperReservation *r,
                            GError **error);

/* The kernel refused r->cid (another hypervisor holds it): it stays taken, marked as not
 * ours, and r gets the next free one. */
gboolean helper_alloc_next_cid(HelperAlloc *alloc, const char *vm, HelperReservation *r,
                               GError **error);

/* Frees everything vm holds (CIDs refused by the kernel stay taken). */
void helper_alloc_release(HelperAlloc *alloc, const char *vm);

/* The VM holding key ("uid:61000", "cid:1000", "hostapi:40000", "device:SLOT", "port:tcp:N"),
 * or NULL. For tests and messages. */
char *helper_alloc_holder(HelperAlloc *alloc, const char *key);
