/* SPDX-License-Identifier: MIT */
/* lcvm-seccomp-dump: prints a profile as libseccomp's pseudo filter code, for review (and as
 * the golden files the unit tests compare against). Loads nothing. */
#include "lcvm-seccomp.h"
#include <stdio.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
  LcvmSeccompProfile profile;
  if (argc != 2 || !lcvm_seccomp_profile_from_name(argv[1], &profile)) {
    fprintf(stderr, "usage: %s qemu|bridge\n", argv[0]);
    return 2;
  }
  g_autoptr(GError) error = NULL;
  scmp_filter_ctx ctx = lcvm_seccomp_build(profile, &error);
  if (ctx == NULL) {
    fprintf(stderr, "%s\n", error->message);
    return 1;
  }
  fflush(stdout);
  int r = seccomp_export_pfc(ctx, STDOUT_FILENO);
  seccomp_release(ctx);
  if (r < 0) {
    fprintf(stderr, "writing the filter failed: %s\n", g_strerror(-r));
    return 1;
  }
  return 0;
}
