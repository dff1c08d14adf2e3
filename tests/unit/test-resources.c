/* lcvm-resources: whether a forward's host address:port can be bound right now (the CPU
 * count is checked through DryRun in tests/integration/test_instance.py). */
#include "lcvm-error.h"
#include "lcvm-resources.h"

#include <arpa/inet.h>
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

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/resources/a-held-tcp-port-is-busy-and-free-after",
                  test_a_held_tcp_port_is_busy_and_free_after);
  g_test_add_func("/resources/a-held-udp-port-is-busy-and-free-after",
                  test_a_held_udp_port_is_busy_and_free_after);
  g_test_add_func("/resources/an-address-of-another-host-is-refused",
                  test_an_address_of_another_host_is_refused);
  return g_test_run();
}
