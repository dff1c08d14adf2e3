/* SPDX-License-Identifier: MIT */
/* The view of the host a confined child gets (DESIGN §6, reference/qemu-sandbox.md §2.5 step 6):
 * its own mount and IPC namespaces with a root built from nothing, as libvirt and bubblewrap do.
 * What is in it:
 *   /usr and the top-level links or dirs into it (bin, lib, lib64, sbin)   read-only
 *   the files of /etc the loader and name resolution read (ld.so.cache, resolv.conf, hosts,
 *   nsswitch.conf) and localtime                                         read-only
 *   /sys (the sysfs mount alone, no cgroup/debugfs/... below it)           read-only
 *   /proc: a new procfs instance with hidepid=2 (the child sees its own uid's processes only)
 *   /dev: a tmpfs with null, zero, full, random, urandom, fd links, a private /dev/shm tmpfs,
 *         and the device nodes the caller adds, created as new nodes owned by the child's uid
 *         (so it needs no group like kvm, and the host's nodes keep their owners)
 *   /tmp: a private tmpfs; /run: empty (no system bus socket, no other daemon's socket)
 *   the directories the caller adds, at the same path as on the host.
 * Nothing else of the host's filesystem is reachable, and SysV IPC objects and POSIX message
 * queues of the child live and die in its own IPC namespace. Where the kernel has Landlock
 * scopes (ABI 6, Linux 6.12) the child can neither connect to abstract UNIX sockets bound
 * outside (they live in the network namespace it shares with the host) nor signal processes
 * outside.
 *
 * The plan is built in the parent (allocating, failing with a GError); the child only walks it
 * with raw system calls (helper_sandbox_enter): between fork and execve it may not allocate. */
#pragma once
#include <glib.h>
#include <sys/types.h>

typedef struct _HelperSandbox HelperSandbox;

/* The base view for a child that will run as uid:gid. */
HelperSandbox *helper_sandbox_new(uid_t uid, gid_t gid);
void helper_sandbox_free(HelperSandbox *sandbox);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperSandbox, helper_sandbox_free)

/* host_node (a character or block device) appears as /dev/NAME, a new node with the same
 * device number owned by the child's uid, mode 0600. name may contain '/' (vfio/12). */
gboolean helper_sandbox_add_device(HelperSandbox *sandbox, const char *host_node, const char *name,
                                   GError **error);

/* host_node appears as /dev/NAME, bound as it is: a node the helper hands to the child's uid on
 * the host for the child's life (legacy VFIO's IOMMU groups) or one everybody may open
 * (/dev/vfio/vfio); the host's owner and mode decide who can open it. */
gboolean helper_sandbox_bind_node(HelperSandbox *sandbox, const char *host_node, const char *name,
                                  GError **error);

/* The host directory path (absolute, no symlink in it: the caller confined it) appears at the
 * same path; writable or read-only, never with setuid, device or (read-only: all) exec bits
 * honoured beyond what the host mount allows. */
gboolean helper_sandbox_add_dir(HelperSandbox *sandbox, const char *path, gboolean writable,
                                GError **error);

/* Child side, after fork and before the uid drop (it needs CAP_SYS_ADMIN): enters the view.
 * 0, or -1 with errno set and *failed_step the index of the step that failed. */
int helper_sandbox_enter(const HelperSandbox *sandbox, int *failed_step);

/* A step as text for an error message ("mount tmpfs on /newroot/tmp"); NULL past the end. */
char *helper_sandbox_describe(const HelperSandbox *sandbox, int step);
