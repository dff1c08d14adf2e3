/* SPDX-License-Identifier: MIT */
/* seccomp-exec PROFILE PROGRAM [ARG…]: runs PROGRAM under one of lium-cvm's seccomp profiles
 * (with no_new_privs), loaded last before execve as the helper's confined spawn does, so the
 * bridge's tests can run it exactly as confined as in production. Test tool, not installed. */
#include "lcvm-seccomp.h"
#include <stdio.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
  LcvmSeccompProfile profile;
  if (argc < 3 || !lcvm_seccomp_profile_from_name(argv[1], &profile)) {
    fprintf(stderr, "usage: %s qemu|bridge PROGRAM [ARG…]\n", argv[0]);
    return 2;
  }
  g_autoptr(GError) error = NULL;
  scmp_filter_ctx ctx = lcvm_seccomp_build(profile, &error);
  if (ctx == NULL) {
    fprintf(stderr, "%s\n", error->message);
    return 2;
  }
  int r = seccomp_load(ctx);
  seccomp_release(ctx);
  if (r < 0) {
    fprintf(stderr, "loading the filter failed: %s\n", g_strerror(-r));
    return 2;
  }
  execv(argv[2], argv + 2);
  perror(argv[2]);
  return 127;
}
