/* SPDX-License-Identifier: MIT */
/* For a program that runs under one of our seccomp profiles (the host-API bridge, the e2e spawn
 * probe): in a sanitizer build, LeakSanitizer is off by default, because its exit-time scan
 * stops the threads with ptrace from a cloned task, which the profile refuses, and the program
 * would die with SIGSYS at exit. The helper starts these programs with a clean environment, so
 * the default is what they run with; a test that runs one unconfined turns leak detection back
 * on through ASAN_OPTIONS (tests/README.md, "Sanitizers and leak detection"). Include this
 * header in exactly one file of such a program; outside sanitizer builds it is empty. */
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define LCVM_CONFINED_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LCVM_CONFINED_ASAN 1
#endif
#endif

#ifdef LCVM_CONFINED_ASAN
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
  return "detect_leaks=0";
}
#endif
