/* SPDX-License-Identifier: MIT */
/* Confined fork+exec of QEMU and the host-API bridge (DESIGN §6, reference/qemu-sandbox.md
 * §2.5). Everything that allocates or can fail in an interesting way happens in the parent
 * before fork; the child makes only raw system calls, in the DESIGN order, and reports the first
 * step that fails (step name + errno) over a close-on-exec pipe. Never a shell, never the
 * helper's environment, never an fd the caller did not name, never uid or gid 0, never a
 * supplementary group. */
#pragma once
#include "helper-capture.h"
#include "helper-sandbox-ns.h"
#include "lcvm-seccomp.h"
#include <glib.h>
#include <sys/types.h>

typedef struct {
  int parent_fd; /* open in the caller (close-on-exec is fine) */
  int child_fd;  /* its number in the child; unnamed 0, 1, 2 become /dev/null */
} HelperSpawnFd;

typedef struct {
  const char *const *argv; /* argv[0]: absolute path of the program */
  const char *const *envp; /* the child's whole environment; NULL: empty */
  const HelperSpawnFd *fds;
  gsize n_fds;
  const char *cwd; /* NULL: "/"; entered after the uid drop, so the uid must reach it */
  mode_t umask;    /* 0: 0077 (a confined child never gets umask 0) */
  uid_t uid;
  gid_t gid;
  /* The child's own mount and IPC namespaces and view of the host (helper-sandbox-ns.h),
   * entered before the uid drop; NULL: the helper's view. Device nodes it needs come through
   * it (owned by uid), so the child never gets a supplementary group. */
  const HelperSandbox *sandbox;
  guint64 memlock;    /* RLIMIT_MEMLOCK (soft = hard) in bytes; 0: inherited */
  guint64 data_limit; /* RLIMIT_DATA (soft = hard): heap, stacks, private mappings; 0: inherited */
  guint64 file_size_limit; /* RLIMIT_FSIZE (soft = hard): the largest file it may write */
  LcvmSeccompProfile profile;
} HelperSpawnOptions;

typedef struct {
  pid_t pid;
  int pidfd; /* owned by the caller: poll for exit, waitid(P_PIDFD) to reap, signal through it */
} HelperSpawnChild;

/* Returns once the program is executing (or has failed before that, with error saying at which
 * step: "spawn failed at step setresuid: Operation not permitted"). */
gboolean helper_spawn(const HelperSpawnOptions *options, HelperSpawnChild *child, GError **error);

/* The confined capture runner: runs options' program (confined as helper_spawn does; fds must
 * not name 1 or 2) to its end or capture->timeout_ms, with its stdout and stderr collected
 * and bounded, and reaps it (helper-capture.h). FALSE only when it could not be started. */
gboolean helper_spawn_capture(const HelperSpawnOptions *options,
                              const HelperCaptureOptions *capture, HelperCaptured *result,
                              GError **error);

/* RLIMIT_MEMLOCK for a guest of ram_bytes: VFIO pins all guest RAM plus up to 1 GiB (libvirt's
 * formula without a vIOMMU, any number of devices); 0 (inherit) without VFIO devices. */
guint64 helper_spawn_memlock_for(guint64 ram_bytes, guint n_vfio_devices);
