/* SPDX-License-Identifier: MIT */
/* The seccomp deny-lists: every rule names a syscall this libseccomp knows on x86_64, the
 * filters match the reviewed pseudo filter code, and the exported BPF is a whole program.
 * (What the filters do to a running process is tested in tests/e2e/test_spawn.py.) */
#include "lcvm-seccomp.h"
#include <linux/filter.h>
#include <sys/mman.h>
#include <unistd.h>

static char *
export_pfc(LcvmSeccompProfile profile)
{
  g_autoptr(GError) error = NULL;
  scmp_filter_ctx ctx = lcvm_seccomp_build(profile, &error);
  g_assert_no_error(error);
  int fd = memfd_create("pfc", MFD_CLOEXEC);
  g_assert_cmpint(seccomp_export_pfc(ctx, fd), ==, 0);
  seccomp_release(ctx);
  off_t len = lseek(fd, 0, SEEK_END);
  char *text = g_malloc0(len + 1);
  g_assert_cmpint(pread(fd, text, len, 0), ==, len);
  close(fd);
  return text;
}

/* A changed rule table must come with a re-reviewed golden file:
 *   build/seccomp/lcvm-seccomp-dump qemu > tests/unit/seccomp-qemu.pfc */
static void
check_profile_matches_golden(gconstpointer data)
{
  LcvmSeccompProfile profile = GPOINTER_TO_INT(data);
  g_autofree char *name = g_strdup_printf("seccomp-%s.pfc", lcvm_seccomp_profile_name(profile));
  g_autofree char *path = g_test_build_filename(G_TEST_DIST, name, NULL);
  g_autofree char *golden = NULL;
  g_autoptr(GError) error = NULL;
  g_file_get_contents(path, &golden, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *actual = export_pfc(profile);
  g_auto(GStrv) want = g_strsplit(golden, "\n", -1);
  g_auto(GStrv) got = g_strsplit(actual, "\n", -1);
  for (guint i = 0; want[i] != NULL || got[i] != NULL; i++) {
    if (g_strcmp0(want[i], got[i]) != 0) {
      g_test_message("%s line %u differs: review the rule change, then regenerate it with "
                     "lcvm-seccomp-dump",
                     name, i + 1);
      g_assert_cmpstr(got[i], ==, want[i]);
    }
  }
}

static void
test_profiles_have_names(void)
{
  LcvmSeccompProfile p;
  g_assert_true(lcvm_seccomp_profile_from_name("qemu", &p));
  g_assert_cmpint(p, ==, LCVM_SECCOMP_QEMU);
  g_assert_true(lcvm_seccomp_profile_from_name("bridge", &p));
  g_assert_cmpint(p, ==, LCVM_SECCOMP_BRIDGE);
  g_assert_cmpstr(lcvm_seccomp_profile_name(LCVM_SECCOMP_BRIDGE), ==, "bridge");
  g_assert_false(lcvm_seccomp_profile_from_name("none", &p));
  g_assert_false(lcvm_seccomp_profile_from_name("", &p));
}

static void
test_bpf_export_is_a_whole_program(void)
{
  for (int p = LCVM_SECCOMP_QEMU; p <= LCVM_SECCOMP_BRIDGE; p++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bpf = lcvm_seccomp_export_bpf(p, &error);
    g_assert_no_error(error);
    gsize len = g_bytes_get_size(bpf);
    g_assert_cmpuint(len % sizeof(struct sock_filter), ==, 0);
    g_assert_cmpuint(len / sizeof(struct sock_filter), >, 50);
    g_assert_cmpuint(len / sizeof(struct sock_filter), <=, BPF_MAXINSNS);
  }
}

static void
test_bridge_is_the_qemu_list_and_more(void)
{
  g_autofree char *qemu = export_pfc(LCVM_SECCOMP_QEMU);
  g_autofree char *bridge = export_pfc(LCVM_SECCOMP_BRIDGE);
  const char *shared[] = { "\"kexec_load\"", "\"umount2\"", "\"ptrace\"", "\"io_uring_setup\"",
                           "\"clone3\"",     "\"bpf\"",     NULL };
  for (guint i = 0; shared[i]; i++) {
    g_assert_nonnull(strstr(qemu, shared[i]));
    g_assert_nonnull(strstr(bridge, shared[i]));
  }
  /* Both allow-list socket families; they differ in the one netlink protocol each may open. */
  g_assert_nonnull(strstr(qemu, "\"socket\""));
  g_assert_nonnull(strstr(bridge, "\"socket\""));
  g_assert_null(strstr(qemu, "\"fork\""));
  g_assert_nonnull(strstr(bridge, "\"fork\""));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/seccomp/profiles-have-names", test_profiles_have_names);
  g_test_add_data_func("/seccomp/qemu-profile-matches-reviewed-pfc",
                       GINT_TO_POINTER(LCVM_SECCOMP_QEMU), check_profile_matches_golden);
  g_test_add_data_func("/seccomp/bridge-profile-matches-reviewed-pfc",
                       GINT_TO_POINTER(LCVM_SECCOMP_BRIDGE), check_profile_matches_golden);
  g_test_add_func("/seccomp/bpf-export-is-a-whole-program", test_bpf_export_is_a_whole_program);
  g_test_add_func("/seccomp/bridge-is-the-qemu-list-and-more",
                  test_bridge_is_the_qemu_list_and_more);
  return g_test_run();
}
