/* SPDX-License-Identifier: MIT */
/* What test-spawn.c (the confined runner) and test-tool.c (the trusted-tool runner) both check
 * of a timeout: the child runs GRANDCHILD_SCRIPT, which forks a grandchild that keeps the pipes
 * open and prints its pid, and both must be dead of SIGKILL afterwards. The test makes itself
 * the grandchild's subreaper, so it can see how the grandchild ended. */
#pragma once
#include "helper-capture.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define GRANDCHILD_SCRIPT "sleep 300 & echo $!; exec sleep 300"

static inline void
become_subreaper(gboolean on)
{
  g_assert_cmpint(prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0), ==, 0);
}

static inline void
assert_killed_with_grandchild(const HelperCaptured *run)
{
  g_assert_true(run->timed_out);
  g_assert_false(run->exited);
  g_assert_cmpint(run->signal, ==, SIGKILL);
  pid_t grandchild = (pid_t)g_ascii_strtoll(run->out->str, NULL, 10);
  g_assert_cmpint(grandchild, >, 1);
  int status = 0;
  g_assert_cmpint(waitpid(grandchild, &status, 0), ==, grandchild);
  g_assert_true(WIFSIGNALED(status));
  g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);
}
