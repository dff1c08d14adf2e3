/* SPDX-License-Identifier: MIT */
/* The seccomp deny-lists the helper loads into QEMU and the host-API bridge right before execve
 * (reference/qemu-sandbox.md §3.3). Default ALLOW on the native arch only (other ABIs are
 * killed), KILL_PROCESS for calls only injected code makes, ERRNO for calls a library may probe
 * and recover from. This file builds and exports filters; it never loads one into the calling
 * process — the confined child does that with the exported BPF (helper-spawn.c). */
#pragma once
#include <glib.h>
#include <seccomp.h>

typedef enum {
  LCVM_SECCOMP_QEMU,   /* qemu-system-x86_64, with a socket-family allow-list; QEMU's own
                        * -sandbox adds spawn=deny after init */
  LCVM_SECCOMP_BRIDGE, /* lium-cvm-hostapi: the QEMU list, no fork, only the sockets it needs */
} LcvmSeccompProfile;

/* "qemu" / "bridge" ↔ profile. */
gboolean lcvm_seccomp_profile_from_name(const char *name, LcvmSeccompProfile *profile);
const char *lcvm_seccomp_profile_name(LcvmSeccompProfile profile);

/* A libseccomp context holding the profile (free with seccomp_release). Fails when the installed
 * libseccomp does not know one of the listed syscalls: a silently skipped rule is a hole. */
scmp_filter_ctx lcvm_seccomp_build(LcvmSeccompProfile profile, GError **error);

/* The profile as a raw BPF program (struct sock_filter[]), computed before fork so the child
 * loads it with one seccomp(2) call and no allocation. */
GBytes *lcvm_seccomp_export_bpf(LcvmSeccompProfile profile, GError **error);
