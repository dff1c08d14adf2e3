/* SPDX-License-Identifier: MIT */
/* What a VM's uid may leave behind in the helper's namespaces, removed when the VM releases
 * the uid (DESIGN §5: a VM's uid never leaks into the next VM): SysV shared memory, message
 * queues and semaphore sets it owns or created, POSIX message queues it owns, and files or
 * directories it owns at the top of /tmp and /dev/shm. QEMU itself runs in its own mount and
 * IPC namespaces (helper-sandbox-ns.h), whose objects die with it; this is for anything else
 * of the uid (the bridge) and a belt to those braces. Never follows a symlink. */
#pragma once
#include <glib.h>
#include <sys/types.h>

/* The number of objects removed; failures are logged, never fatal. */
guint helper_uid_purge(uid_t uid);
