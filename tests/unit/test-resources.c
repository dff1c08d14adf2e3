/* SPDX-License-Identifier: MIT */
/* lcvm-resources: whether a forward's host address:port can be bound right now; the kernel
 * list parser against hostile text; the CPU count and memory read from a fake sysfs_root of
 * a 2-socket, 224-CPU host (the refusals they lead to are checked through DryRun in
 * tests/integration/test_instance.py). */
#include "lcvm-error.h"
#include "lcvm-resources.h"

#include <arpa/inet.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A socket of the protocol bound to 127.0.0.1 on a port the kernel picks (listening for TCP). */
static int
hold_port(LcvmProtocol protocol, guint16 *port)
{
  gboolean tcp = protocol == LCVM_PROTOCOL_TCP;
  int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  g_assert_cmpint(fd, >=, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
  if (tcp)
    g_assert_cmpint(listen(fd, 1), ==, 0);
  socklen_t len = sizeof sa;
  g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &len), ==, 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

static void
check_held_port(LcvmProtocol protocol)
{
  guint16 port = 0;
  int fd = hold_port(protocol, &port);
  LcvmPortForward f = { protocol, (char *)"0.0.0.0", port, 22 };
  g_autoptr(GError) error = NULL;
  g_assert_false(lcvm_port_check_free(&f, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_BUSY);
  g_autofree char *expected = g_strdup_printf("port %u is in use", port);
  g_assert_nonnull(strstr(error->message, expected));
  g_clear_error(&error);

  /* Free again once the holder is gone: the probe itself leaves nothing bound. */
  close(fd);
  f.address = (char *)"127.0.0.1";
  g_assert_true(lcvm_port_check_free(&f, &error));
  g_assert_no_error(error);
  g_assert_true(lcvm_port_check_free(&f, &error));
}

static void
test_a_held_tcp_port_is_busy_and_free_after(void)
{
  check_held_port(LCVM_PROTOCOL_TCP);
}

static void
test_a_held_udp_port_is_busy_and_free_after(void)
{
  check_held_port(LCVM_PROTOCOL_UDP);
}

static void
test_an_address_of_another_host_is_refused(void)
{
  /* 192.0.2.0/24 is TEST-NET-1: never configured on a host. */
  LcvmPortForward f = { LCVM_PROTOCOL_TCP, (char *)"192.0.2.7", 2200, 22 };
  g_autoptr(GError) error = NULL;
  g_assert_false(lcvm_port_check_free(&f, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(error->message, "192.0.2.7 is not an address of this host"));
}

static void
test_kernel_lists(void)
{
  guint n = 0;
  g_autoptr(GArray) values = g_array_new(FALSE, FALSE, sizeof(guint));
  g_assert_true(lcvm_kernel_list_parse("0-223\n", &n, NULL));
  g_assert_cmpuint(n, ==, 224);
  g_assert_true(lcvm_kernel_list_parse("0-55,112-167", &n, NULL));
  g_assert_cmpuint(n, ==, 112);
  g_assert_true(lcvm_kernel_list_parse("3", &n, values));
  g_assert_true(lcvm_kernel_list_parse("0-1,7", &n, values));
  g_assert_cmpuint(values->len, ==, 4);
  g_assert_cmpuint(g_array_index(values, guint, 3), ==, 7);
  static const char *const bad[] = {
    "",
    "\n",
    "-",
    "1-",
    "-3",
    "5-2",
    "0,,1",
    "0,",
    ",0",
    "0-1\n\n",
    "a",
    "0x10",
    "1 2",
    "1048576",
    "99999999999999999999",
    "0-1048575,0",
    "0-3 ",
    "+1",
    "0-1-2",
  };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    n = 4242;
    g_assert_false(lcvm_kernel_list_parse(bad[i], &n, NULL));
    g_assert_cmpuint(n, ==, 4242);
  }
}

static char *
fake_sysfs(void)
{
  char *root = g_dir_make_tmp("lcvm-sysfs-XXXXXX", NULL);
  g_autofree char *cpu = g_build_filename(root, "devices/system/cpu", NULL);
  g_autofree char *node0 = g_build_filename(root, "devices/system/node/node0", NULL);
  g_autofree char *node1 = g_build_filename(root, "devices/system/node/node1", NULL);
  g_assert_cmpint(g_mkdir_with_parents(cpu, 0755), ==, 0);
  g_assert_cmpint(g_mkdir_with_parents(node0, 0755), ==, 0);
  g_assert_cmpint(g_mkdir_with_parents(node1, 0755), ==, 0);
  g_autofree char *online = g_build_filename(cpu, "online", NULL);
  g_autofree char *nodes = g_build_filename(root, "devices/system/node/online", NULL);
  g_autofree char *m0 = g_build_filename(node0, "meminfo", NULL);
  g_autofree char *m1 = g_build_filename(node1, "meminfo", NULL);
  g_assert_true(g_file_set_contents(online, "0-223\n", -1, NULL));
  g_assert_true(g_file_set_contents(nodes, "0-1\n", -1, NULL));
  g_assert_true(g_file_set_contents(m0,
                                    "Node 0 MemTotal:       1073741824 kB\n"
                                    "Node 0 MemFree:        1000000000 kB\n",
                                    -1, NULL));
  g_assert_true(g_file_set_contents(m1, "Node 1 MemTotal:       1073741824 kB\n", -1, NULL));
  return root;
}

static void
remove_tree(const char *root)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", root);
  g_assert_cmpint(system(cmd), ==, 0);
}

static void
test_host_facts_come_from_sysfs_root(void)
{
  g_autofree char *root = fake_sysfs();
  guint cpus = 0;
  guint64 memory = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(lcvm_host_cpu_count(root, &cpus, &error));
  g_assert_cmpuint(cpus, ==, 224);
  g_assert_true(lcvm_host_memory(root, &memory, &error));
  g_assert_cmpuint(memory, ==, G_GUINT64_CONSTANT(2) << 40);
  /* A node without MemTotal, then a missing file: errors naming the path. */
  g_autofree char *m1 = g_build_filename(root, "devices/system/node/node1/meminfo", NULL);
  g_assert_true(g_file_set_contents(m1, "Node 1 MemTotal: lots\n", -1, NULL));
  g_assert_false(lcvm_host_memory(root, &memory, &error));
  g_assert_nonnull(strstr(error->message, "node1/meminfo has no MemTotal line"));
  g_clear_error(&error);
  g_autofree char *online = g_build_filename(root, "devices/system/cpu/online", NULL);
  g_assert_true(g_file_set_contents(online, "0-3,zz\n", -1, NULL));
  g_assert_false(lcvm_host_cpu_count(root, &cpus, &error));
  g_assert_nonnull(strstr(error->message, "is not a CPU list: 0-3,zz"));
  g_clear_error(&error);
  g_unlink(online);
  g_assert_false(lcvm_host_cpu_count(root, &cpus, &error));
  g_assert_nonnull(strstr(error->message, "check [paths] sysfs_root"));
  remove_tree(root);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/resources/kernel-lists", test_kernel_lists);
  g_test_add_func("/resources/host-facts-come-from-sysfs-root",
                  test_host_facts_come_from_sysfs_root);
  g_test_add_func("/resources/a-held-tcp-port-is-busy-and-free-after",
                  test_a_held_tcp_port_is_busy_and_free_after);
  g_test_add_func("/resources/a-held-udp-port-is-busy-and-free-after",
                  test_a_held_udp_port_is_busy_and_free_after);
  g_test_add_func("/resources/an-address-of-another-host-is-refused",
                  test_an_address_of_another_host_is_refused);
  return g_test_run();
}
