/* SPDX-License-Identifier: MIT */
/* The builder's no-TEE argv for a GPU-less definition, run by the REAL qemu-system-x86_64
 * (Debian's qemu-system-x86) with -S appended: QEMU must accept every option, including the
 * guest-invisible ones (-sandbox, the QMP socket fd, -add-fd disks, the serial fd), and build
 * the device layout the argv describes. Driven only through the passed QMP socket; the guest
 * never runs. Skipped, with the reason, when QEMU or qemu-img is not installed. */
#include "lcvm-qemu-argv.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct {
  char *dir;
  char *qemu;
  int qmp_listen, serial, rootfs, hda, hda_ro, kernel, initrd, bios;
  guint16 forward_port;
} Fixture;

static void
write_file(const char *dir, const char *name, const void *data, gsize len)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_set_contents(path, data, (gssize)len, &error));
}

/* Enough of a bzImage for QEMU's loader: boot protocol 2.15, loaded high, four setup sectors.
 * With -S nothing of it ever executes. */
static void
write_fake_kernel(const char *dir)
{
  g_autofree guint8 *k = g_malloc0(16384);
  k[0x1f1] = 4;                 /* setup_sects */
  memcpy(k + 0x202, "HdrS", 4); /* header magic */
  k[0x206] = 0x0f;              /* protocol 0x020f */
  k[0x207] = 0x02;
  k[0x211] = 0x01; /* LOADED_HIGH */
  k[0x22c] = 0xff; /* initrd_addr_max 0x37ffffff */
  k[0x22d] = 0xff;
  k[0x22e] = 0xff;
  k[0x22f] = 0x37;
  k[0x238] = 0x00; /* cmdline_size 2048 */
  k[0x239] = 0x08;
  write_file(dir, "bzImage", k, 16384);
}

static guint16
free_tcp_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
  g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &len), ==, 0);
  close(fd);
  return ntohs(sa.sin_port);
}

static int
listen_unix(const char *path)
{
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  g_strlcpy(sa.sun_path, path, sizeof sa.sun_path);
  g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
  g_assert_cmpint(listen(fd, 1), ==, 0);
  return fd;
}

static int
open_in(const char *dir, const char *name, int flags)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  int fd = open(path, flags | O_CLOEXEC, 0600);
  g_assert_cmpint(fd, >=, 0);
  return fd;
}

static gboolean
fixture_setup(Fixture *f)
{
  f->qemu = g_find_program_in_path("qemu-system-x86_64");
  g_autofree char *qemu_img = g_find_program_in_path("qemu-img");
  if (!f->qemu || !qemu_img) {
    g_test_skip("qemu-system-x86_64 or qemu-img not installed (apt-get install qemu-system-x86 "
                "qemu-utils)");
    return FALSE;
  }
  f->dir = g_dir_make_tmp("lcvm-qemu-XXXXXX", NULL);
  write_fake_kernel(f->dir);
  g_autofree char *zeros = g_malloc0(1024 * 1024);
  write_file(f->dir, "initramfs.cpio.gz", zeros, 4096);
  write_file(f->dir, "ovmf.fd", zeros, 256 * 1024);
  write_file(f->dir, "rootfs.img.verity", zeros, 1024 * 1024);
  g_autofree char *shared = g_build_filename(f->dir, "shared", NULL);
  g_assert_cmpint(g_mkdir(shared, 0700), ==, 0);
  g_autofree char *hda = g_build_filename(f->dir, "hda.img", NULL);
  const char *create[] = { qemu_img, "create", "-q", "-f", "qcow2", hda, "1G", NULL };
  g_autoptr(GError) error = NULL;
  int status = -1;
  g_assert_true(g_spawn_sync(NULL, (char **)create, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL,
                             &status, &error));
  g_assert_true(g_spawn_check_wait_status(status, &error));
  g_autofree char *qmp = g_build_filename(f->dir, "qmp.sock", NULL);
  f->qmp_listen = listen_unix(qmp);
  f->serial = open_in(f->dir, "serial.log", O_WRONLY | O_CREAT | O_APPEND);
  f->rootfs = open_in(f->dir, "rootfs.img.verity", O_RDONLY);
  f->kernel = open_in(f->dir, "bzImage", O_RDONLY);
  f->initrd = open_in(f->dir, "initramfs.cpio.gz", O_RDONLY);
  f->bios = open_in(f->dir, "ovmf.fd", O_RDONLY);
  f->hda = open_in(f->dir, "hda.img", O_RDWR);
  f->hda_ro = open_in(f->dir, "hda.img", O_RDONLY);
  f->forward_port = free_tcp_port();
  return TRUE;
}

static void
fixture_teardown(Fixture *f)
{
  if (f->dir) {
    const char *names[] = { "bzImage", "initramfs.cpio.gz", "ovmf.fd",    "rootfs.img.verity",
                            "hda.img", "qmp.sock",          "serial.log", "shared",
                            NULL };
    for (guint i = 0; names[i]; i++) {
      g_autofree char *path = g_build_filename(f->dir, names[i], NULL);
      g_remove(path);
    }
    g_rmdir(f->dir);
  }
  g_free(f->dir);
  g_free(f->qemu);
}

static LcvmQemuVersion
probe_version(const char *qemu)
{
  const char *argv[] = { qemu, "--version", NULL };
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL,
                             NULL, &error));
  LcvmQemuVersion version;
  g_assert_true(lcvm_qemu_version_parse(out, &version, &error));
  g_assert_no_error(error);
  return version;
}

/* The definition a no-TEE development host runs: no GPU, 512 MiB, one vCPU, one forward. */
static GStrv
no_tee_argv(const Fixture *f, const LcvmQemuForward *forward)
{
  g_autofree char *kernel = g_build_filename(f->dir, "bzImage", NULL);
  g_autofree char *initrd = g_build_filename(f->dir, "initramfs.cpio.gz", NULL);
  g_autofree char *bios = g_build_filename(f->dir, "ovmf.fd", NULL);
  g_autofree char *rootfs = g_build_filename(f->dir, "rootfs.img.verity", NULL);
  g_autofree char *shared = g_build_filename(f->dir, "shared", NULL);
  g_autofree char *hda = g_build_filename(f->dir, "hda.img", NULL);
  LcvmQemuSpec spec = {
    .qemu_path = f->qemu,
    .qemu_version = probe_version(f->qemu),
    .tee = FALSE,
    .accel = "tcg",
    .vcpus = 1,
    .memory_mib = 512,
    .kernel = kernel,
    .initrd = initrd,
    .bios = bios,
    .kernel_fd = LCVM_QEMU_FD_KERNEL,
    .initrd_fd = LCVM_QEMU_FD_INITRD,
    .bios_fd = LCVM_QEMU_FD_BIOS,
    .rootfs = rootfs,
    .rootfs_fd = LCVM_QEMU_FD_ROOTFS,
    .cmdline = "console=ttyS0 panic=1",
    .shared_dir = shared,
    .shared_ro = TRUE,
    .data_disk = hda,
    .data_disk_fd = LCVM_QEMU_FD_DATA_DISK,
    .data_disk_ro_fd = LCVM_QEMU_FD_DATA_DISK_RO,
    .qmp_fd = LCVM_QEMU_FD_QMP,
    .serial_fd = LCVM_QEMU_FD_SERIAL,
    .forwards = forward,
    .n_forwards = 1,
  };
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = lcvm_qemu_argv_build(&spec, &error);
  g_assert_no_error(error);
  g_autoptr(GStrvBuilder) with_s = g_strv_builder_new();
  g_strv_builder_addv(with_s, (const char **)argv);
  g_strv_builder_add(with_s, "-S");
  return g_strv_builder_end(with_s);
}

static GSubprocess *
spawn_qemu(Fixture *f, GStrv argv)
{
  g_autoptr(GSubprocessLauncher) launcher =
      g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_take_fd(launcher, f->qmp_listen, LCVM_QEMU_FD_QMP);
  g_subprocess_launcher_take_fd(launcher, f->serial, LCVM_QEMU_FD_SERIAL);
  g_subprocess_launcher_take_fd(launcher, f->rootfs, LCVM_QEMU_FD_ROOTFS);
  g_subprocess_launcher_take_fd(launcher, f->hda, LCVM_QEMU_FD_DATA_DISK);
  g_subprocess_launcher_take_fd(launcher, f->hda_ro, LCVM_QEMU_FD_DATA_DISK_RO);
  g_subprocess_launcher_take_fd(launcher, f->kernel, LCVM_QEMU_FD_KERNEL);
  g_subprocess_launcher_take_fd(launcher, f->initrd, LCVM_QEMU_FD_INITRD);
  g_subprocess_launcher_take_fd(launcher, f->bios, LCVM_QEMU_FD_BIOS);
  g_autoptr(GError) error = NULL;
  GSubprocess *qemu = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv, &error);
  g_assert_no_error(error);
  return qemu;
}

typedef struct {
  int fd;
  FILE *in;
} Qmp;

static JsonNode *
qmp_read(Qmp *q, GSubprocess *qemu)
{
  g_autofree char *line = NULL;
  size_t cap = 0;
  if (getline(&line, &cap, q->in) < 0) {
    g_autofree char *err = NULL;
    g_subprocess_communicate_utf8(qemu, NULL, NULL, NULL, &err, NULL);
    g_error("QEMU closed QMP; it said: %s", err ? err : "(nothing)");
  }
  g_autoptr(GError) error = NULL;
  JsonNode *node = json_from_string(line, &error);
  g_assert_no_error(error);
  return node;
}

/* Sends one command and returns its "return" member, skipping asynchronous events. */
static JsonNode *
qmp(Qmp *q, GSubprocess *qemu, const char *command)
{
  g_autofree char *msg = g_strdup_printf("{\"execute\": \"%s\"}\n", command);
  g_assert_cmpint(write(q->fd, msg, strlen(msg)), ==, (gssize)strlen(msg));
  for (;;) {
    g_autoptr(JsonNode) reply = qmp_read(q, qemu);
    JsonObject *o = json_node_get_object(reply);
    if (json_object_has_member(o, "error"))
      g_error("%s failed: %s", command, json_to_string(reply, FALSE));
    if (json_object_has_member(o, "return"))
      return json_node_copy(json_object_get_member(o, "return"));
  }
}

static Qmp
qmp_connect(const Fixture *f, GSubprocess *qemu)
{
  Qmp q = { socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), NULL };
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  g_snprintf(sa.sun_path, sizeof sa.sun_path, "%s/qmp.sock", f->dir);
  struct timeval timeout = { .tv_sec = 20 };
  setsockopt(q.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  g_assert_cmpint(connect(q.fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
  q.in = fdopen(dup(q.fd), "r");
  g_autoptr(JsonNode) greeting = qmp_read(&q, qemu);
  g_assert_true(json_object_has_member(json_node_get_object(greeting), "QMP"));
  g_autoptr(JsonNode) ok = qmp(&q, qemu, "qmp_capabilities");
  return q;
}

static JsonObject *
find_block(JsonArray *blocks, const char *device)
{
  for (guint i = 0; i < json_array_get_length(blocks); i++) {
    JsonObject *b = json_array_get_object_element(blocks, i);
    if (g_str_equal(json_object_get_string_member(b, "device"), device))
      return b;
  }
  g_error("no block device %s", device);
}

static void
assert_disks_come_through_fdsets(JsonNode *blocks)
{
  JsonArray *a = json_node_get_array(blocks);
  JsonObject *root = json_object_get_object_member(find_block(a, "virtio-disk0"), "inserted");
  JsonObject *data = json_object_get_object_member(find_block(a, "virtio-disk1"), "inserted");
  g_assert_cmpstr(json_object_get_string_member(root, "file"), ==, "/dev/fdset/5");
  g_assert_true(json_object_get_boolean_member(root, "ro"));
  g_assert_cmpstr(json_object_get_string_member(root, "drv"), ==, "raw");
  g_assert_cmpstr(json_object_get_string_member(data, "file"), ==, "/dev/fdset/6");
  g_assert_false(json_object_get_boolean_member(data, "ro"));
  g_assert_cmpstr(json_object_get_string_member(data, "drv"), ==, "qcow2");
}

/* Virtio device ids on pcie.0 in slot order: the argv's order 9p, blk, blk, net. */
static void
assert_virtio_layout(JsonNode *pci)
{
  JsonArray *devices = json_object_get_array_member(
      json_array_get_object_element(json_node_get_array(pci), 0), "devices");
  GString *ids = g_string_new(NULL);
  for (guint i = 0; i < json_array_get_length(devices); i++) {
    JsonObject *d = json_array_get_object_element(devices, i);
    JsonObject *id = json_object_get_object_member(d, "id");
    if (json_object_get_int_member(id, "vendor") == 0x1af4)
      g_string_append_printf(ids, "%04x ", (guint)json_object_get_int_member(id, "device"));
  }
  g_assert_cmpstr(ids->str, ==, "1009 1001 1001 1000 ");
  g_string_free(ids, TRUE);
}

/* QEMU's own -sandbox is active: seccomp filter mode 2 on the process. */
static void
assert_sandboxed(GSubprocess *qemu)
{
  g_autofree char *path = g_strdup_printf("/proc/%s/status", g_subprocess_get_identifier(qemu));
  g_autofree char *status = NULL;
  g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
  g_assert_nonnull(strstr(status, "\nSeccomp:\t2\n"));
}

static void
assert_forward_listens(guint16 port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
  close(fd);
}

static void
test_real_qemu_accepts_the_no_tee_argv(Fixture *f, gconstpointer data)
{
  if (!f->dir)
    return;
  LcvmQemuForward forward = { "tcp", "127.0.0.1", f->forward_port, 22 };
  g_auto(GStrv) argv = no_tee_argv(f, &forward);
  g_autoptr(GSubprocess) qemu = spawn_qemu(f, argv);
  Qmp q = qmp_connect(f, qemu);

  g_autoptr(JsonNode) status = qmp(&q, qemu, "query-status");
  g_assert_cmpstr(json_object_get_string_member(json_node_get_object(status), "status"), ==,
                  "prelaunch");
  g_autoptr(JsonNode) blocks = qmp(&q, qemu, "query-block");
  assert_disks_come_through_fdsets(blocks);
  g_autoptr(JsonNode) pci = qmp(&q, qemu, "query-pci");
  assert_virtio_layout(pci);
  assert_sandboxed(qemu);
  assert_forward_listens(f->forward_port);

  g_autoptr(JsonNode) bye = qmp(&q, qemu, "quit");
  g_autoptr(GError) error = NULL;
  g_assert_true(g_subprocess_wait_check(qemu, NULL, &error));
  g_assert_no_error(error);
  fclose(q.in);
  close(q.fd);
}

static void
setup(Fixture *f, gconstpointer data)
{
  memset(f, 0, sizeof *f);
  fixture_setup(f);
}

static void
teardown(Fixture *f, gconstpointer data)
{
  fixture_teardown(f);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add("/qemu-accepts-argv/real-qemu-accepts-the-no-tee-argv", Fixture, NULL, setup,
             test_real_qemu_accepts_the_no_tee_argv, teardown);
  return g_test_run();
}
