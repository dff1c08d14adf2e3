/* SPDX-License-Identifier: MIT */
/* Host check, services area: the OS image and its digest, the key provider's TCP port,
 * docker and its compose plugin, free space for images, and the quote generation service
 * (qgsd) on vsock port 4050. Probes are local and bounded by short timeouts; nothing here
 * runs docker or asks for privilege (and no remedy suggests the docker group). */
#include "lcvm-hostcheck-private.h"
#include "lcvm-layout.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/vm_sockets_diag.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define GIB           (G_GUINT64_CONSTANT(1) << 30)
#define DISK_FAIL_GIB 4  /* one extracted image does not fit */
#define DISK_WARN_GIB 30 /* the host-setup guide's image space */
#define QGSD_PORT     4050

/* digest.txt must equal sha256(sha256sum.txt) (dstack's os_image_hash). */
static gboolean
image_digest_valid(const char *dir, char **observed)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *digest = hc_read_value(dir, LCVM_IMAGE_DIGEST_FILE, &error);
  if (digest == NULL) {
    *observed = g_strdup_printf("digest.txt: %s", error->message);
    return FALSE;
  }
  g_autofree char *sums = hc_read(dir, LCVM_IMAGE_SHA256SUM_FILE, &error);
  if (sums == NULL) {
    *observed = g_strdup_printf("sha256sum.txt: %s", error->message);
    return FALSE;
  }
  g_autofree char *want = g_compute_checksum_for_string(G_CHECKSUM_SHA256, sums, -1);
  if (!g_str_equal(want, digest)) {
    *observed =
        g_strdup_printf("digest.txt says %.16s…, sha256(sha256sum.txt) is %.16s…", digest, want);
    return FALSE;
  }
  *observed = g_strdup_printf("digest %s", digest);
  return TRUE;
}

static void
check_image(HostCtx *ctx)
{
  const char *name = ctx->config->default_image;
  LcvmCheck *c = hc_add(ctx, "image.os", "OS image",
                        "state_dir/images/<default_image> with a valid digest.txt");
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = lcvm_layout_image_dir(ctx->config, name, &error);
  if (dir == NULL) {
    hc_set(c, LCVM_CHECK_FAIL, "[images] default_image: %s", error->message);
    hc_remedy(c, "set [images] default_image in lium-cvm.conf to an image name");
    return;
  }
  if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
    hc_set(c, LCVM_CHECK_FAIL, "%s is missing", dir);
    hc_remedy(c, "lium-cvm download");
    return;
  }
  g_autofree char *observed = NULL;
  if (image_digest_valid(dir, &observed)) {
    hc_set(c, LCVM_CHECK_OK, "%s: %s", name, observed);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s: %s", name, observed);
  hc_remedy(c, "the image is incomplete or altered: remove %s and run lium-cvm download", dir);
}

/* 0: connected; else an errno (ETIMEDOUT when nothing answered in time). */
static int
tcp_probe(const char *address, guint timeout_ms)
{
  const char *colon = strrchr(address, ':');
  g_autofree char *host = g_strndup(address, colon - address);
  g_autoptr(GInetAddress) ia = g_inet_address_new_from_string(host);
  g_autoptr(GSocketAddress) sa =
      g_inet_socket_address_new(ia, (guint16)g_ascii_strtoull(colon + 1, NULL, 10));
  struct sockaddr_storage ss;
  if (!g_socket_address_to_native(sa, &ss, sizeof(ss), NULL))
    return EINVAL;
  lcvm_autofd int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errno;
  int err = 0;
  if (connect(fd, (struct sockaddr *)&ss, g_socket_address_get_native_size(sa)) < 0)
    err = errno;
  if (err == EINPROGRESS) {
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    socklen_t len = sizeof(err);
    if (poll(&p, 1, (int)timeout_ms) <= 0)
      err = ETIMEDOUT;
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
      err = errno;
  }
  return err;
}

static void
check_key_provider(HostCtx *ctx)
{
  const char *address = ctx->config->key_provider_address;
  LcvmCheck *c = hc_add(ctx, "keyprovider.port", "Key provider answering",
                        "a TCP listener at [key-provider] address");
  int err = tcp_probe(address, ctx->options->connect_timeout_ms);
  if (err == 0) {
    hc_set(c, LCVM_CHECK_OK, "%s accepts connections", address);
    return;
  }
  if (err == ETIMEDOUT) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s: no answer within %u ms", address,
           ctx->options->connect_timeout_ms);
    hc_remedy(c,
              "a firewall may drop the connection: check 'sudo nft list ruleset' and that the "
              "key provider runs (sudo docker compose ps in %s)",
              ctx->config->key_provider_compose_dir);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s: %s", address, g_strerror(err));
  hc_remedy(c,
            "start the key provider: sudo docker compose --project-directory %s up -d, then "
            "read its log: sudo docker compose --project-directory %s logs "
            "gramine-sealing-key-provider",
            ctx->config->key_provider_compose_dir, ctx->config->key_provider_compose_dir);
}

static gboolean
is_executable_file(const char *path)
{
  return g_file_test(path, G_FILE_TEST_IS_REGULAR) && access(path, X_OK) == 0;
}

/* docker's CLI plugin directories for a docker binary at PREFIX/bin/docker, and a
 * standalone docker-compose next to it. */
static char *
find_compose(const char *docker)
{
  g_autofree char *bindir = g_path_get_dirname(docker);
  g_autofree char *prefix = g_path_get_dirname(bindir);
  char *candidates[] = {
    g_build_filename(prefix, "libexec/docker/cli-plugins/docker-compose", NULL),
    g_build_filename(prefix, "lib/docker/cli-plugins/docker-compose", NULL),
    g_build_filename(bindir, "docker-compose", NULL),
  };
  char *found = NULL;
  for (gsize i = 0; i < G_N_ELEMENTS(candidates); i++) {
    if (found == NULL && is_executable_file(candidates[i]))
      found = g_strdup(candidates[i]);
    g_free(candidates[i]);
  }
  return found;
}

#define DOCKER_REMEDY                                                                              \
  "install Docker Engine with the compose plugin (Ubuntu: sudo apt-get install docker.io "         \
  "docker-compose-v2) and set [tools] docker in lium-cvm.conf if it is not /usr/bin/docker; the "  \
  "helper runs docker as root, so operators need no docker group"

static void
check_docker(HostCtx *ctx)
{
  const char *docker = ctx->config->docker;
  LcvmCheck *bin = hc_add(ctx, "docker.binary", "docker", "[tools] docker is executable");
  LcvmCheck *compose =
      hc_add(ctx, "docker.compose", "docker compose", "the compose CLI plugin next to docker");
  if (docker[0] == '\0' || !is_executable_file(docker)) {
    hc_set(bin, LCVM_CHECK_FAIL, "%s%s", docker,
           docker[0] ? ": missing or not executable" : "not set");
    hc_remedy(bin, DOCKER_REMEDY);
    hc_set(compose, LCVM_CHECK_SKIP, "no docker (see docker.binary)");
    return;
  }
  hc_set(bin, LCVM_CHECK_OK, "%s", docker);
  g_autofree char *found = find_compose(docker);
  if (found != NULL) {
    hc_set(compose, LCVM_CHECK_OK, "%s", found);
    return;
  }
  hc_set(compose, LCVM_CHECK_FAIL, "no docker-compose plugin for %s", docker);
  hc_remedy(compose, "install the compose plugin (Ubuntu: sudo apt-get install docker-compose-v2; "
                     "Docker's repository: docker-compose-plugin)");
}

static void
check_disk(HostCtx *ctx)
{
  LcvmCheck *c =
      hc_add(ctx, "disk.images", "Free space for images", ">= 30 GiB free under state_dir");
  g_autofree char *dir = g_strdup(ctx->config->state_dir);
  while (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
    char *parent = g_path_get_dirname(dir);
    g_free(dir);
    dir = parent;
  }
  struct statvfs vfs;
  if (statvfs(dir, &vfs) != 0) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s: %s", dir, g_strerror(errno));
    return;
  }
  guint64 avail = (guint64)vfs.f_bavail * vfs.f_frsize;
  double gib = (double)avail / (double)GIB;
  if (avail >= DISK_WARN_GIB * GIB) {
    hc_set(c, LCVM_CHECK_OK, "%.1f GiB free at %s", gib, dir);
    return;
  }
  hc_set(c, avail < DISK_FAIL_GIB * GIB ? LCVM_CHECK_FAIL : LCVM_CHECK_WARN, "%.1f GiB free at %s",
         gib, dir);
  hc_remedy(c, "free space on that file system, or set [paths] state_dir to a larger one");
}

/* Asks the running kernel (sock_diag) whether an AF_VSOCK socket listens on port. */
static gboolean
vsock_listening(guint32 port, gboolean *listening, GError **error)
{
  lcvm_autofd int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return lcvm_set_errno(error, errno, "cannot list vsock sockets");
  struct {
    struct nlmsghdr h;
    struct vsock_diag_req r;
  } req = {
    .h = { .nlmsg_len = sizeof(req),
           .nlmsg_type = SOCK_DIAG_BY_FAMILY,
           .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
    .r = { .sdiag_family = AF_VSOCK, .vdiag_states = 1u << TCP_LISTEN },
  };
  struct timeval tv = { .tv_sec = 1 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  gboolean ok = send(fd, &req, sizeof(req), 0) == (ssize_t)sizeof(req);
  gboolean done = FALSE;
  *listening = FALSE;
  while (ok && !done) {
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      ok = FALSE;
      break;
    }
    if (!lcvm_vsock_dump_scan(buf, (gsize)n, port, listening, &done, error))
      return FALSE;
  }
  if (!ok)
    lcvm_set_errno(error, errno, "cannot list vsock sockets");
  return ok;
}

static void
check_qgsd(HostCtx *ctx)
{
  LcvmCheck *c =
      hc_add(ctx, "sgx.qgsd", "Quote generation service (qgsd)", "a vsock listener on port 4050");
  if (!g_str_equal(ctx->config->proc_root, "/proc")) {
    hc_set(c, LCVM_CHECK_SKIP, "socket tables are the running kernel's; proc_root is %s",
           ctx->config->proc_root);
    return;
  }
  g_autoptr(GError) error = NULL;
  gboolean listening = FALSE;
  if (!vsock_listening(QGSD_PORT, &listening, &error)) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "%s", error->message);
    hc_remedy(c, "check by hand: sudo ss -l --vsock | grep 4050 (needs the vsock_diag module)");
    return;
  }
  if (listening) {
    hc_set(c, LCVM_CHECK_OK, "vsock port %d listening", QGSD_PORT);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "nothing listens on vsock port %d", QGSD_PORT);
  hc_remedy(c, "install Intel's tdx-qgs, set 'port = 4050' in /etc/qgs.conf, then: sudo "
               "systemctl restart qgsd");
}

void
hc_check_services(HostCtx *ctx)
{
  check_image(ctx);
  check_key_provider(ctx);
  check_docker(ctx);
  check_disk(ctx);
  check_qgsd(ctx);
}
