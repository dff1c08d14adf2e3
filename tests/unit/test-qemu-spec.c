/* SPDX-License-Identifier: MIT */
/* From a definition, its image and the helper config to the argv, through a fake sysfs (NUMA
 * nodes, node cpulists) and a fake dev_root. The expected argv is written by hand from
 * reference/lium.md §2.3 and DESIGN §6-7. */
#include "lcvm-error.h"
#include "lcvm-qemu-spec.h"

#include <glib/gstdio.h>
#include <string.h>

#define HASH    "b6a1d2c3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeeff"
#define QEMU    "/opt/qemu-dstack/bin/qemu-system-x86_64"
#define IMG     "/var/lib/lium-cvm/images/dstack-nvidia-0.5.11"
#define INST    "/var/lib/lium-cvm/instances/vm1"
#define CMDLINE "console=ttyS0 init=/init panic=1"

typedef struct {
  char *root; /* holds sys/ and dev/ */
  LcvmConfig *config;
  LcvmManifest *manifest;
  LcvmImage *image;
  LcvmQemuHost host;
} Fixture;

static void
put(const char *root, const char *rel, const char *text)
{
  g_autofree char *path = g_build_filename(root, rel, NULL);
  g_autofree char *dir = g_path_get_dirname(path);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static LcvmConfig *
config_for(const char *root, const char *extra)
{
  g_autofree char *text = g_strdup_printf("[paths]\nstate_dir=/var/lib/lium-cvm\n"
                                          "sysfs_root=%s/sys\ndev_root=%s/dev\n%s",
                                          root, root, extra);
  g_autoptr(GError) error = NULL;
  LcvmConfig *config = lcvm_config_load_data(text, &error);
  g_assert_no_error(error);
  return config;
}

static LcvmImage *
image_0_5_11(void)
{
  LcvmImage *image = g_new0(LcvmImage, 1);
  image->name = g_strdup("dstack-nvidia-0.5.11");
  image->dir = g_strdup(IMG);
  image->digest = g_strdup(HASH);
  image->kernel = g_strdup("bzImage");
  image->initrd = g_strdup("initramfs.cpio.gz");
  image->bios = g_strdup("ovmf.fd");
  image->rootfs = g_strdup("rootfs.img.verity");
  image->cmdline = g_strdup(CMDLINE);
  image->shared_ro = TRUE;
  return image;
}

/* Two GPUs (host nodes 1 and "no affinity"), one NVSwitch, hugepages, pin_numa. */
static LcvmManifest *
manifest_vm1(void)
{
  LcvmManifest *m = lcvm_manifest_new();
  m->name = g_strdup("vm1");
  m->image = g_strdup("dstack-nvidia-0.5.11");
  m->vcpus = 4;
  m->memory = 8ull << 30;
  m->disk = 100ull << 30;
  g_strfreev(m->gpus);
  m->gpus = g_strsplit("0000:18:00.0 0000:2a:00.0", " ", -1);
  g_strfreev(m->nvswitches);
  m->nvswitches = g_strsplit("0000:05:00.0", " ", -1);
  lcvm_manifest_add_port(m, LCVM_PROTOCOL_TCP, "0.0.0.0", 2200, 22);
  m->hugepages = TRUE;
  m->pin_numa = TRUE;
  m->compose_hash = g_strdup(HASH);
  m->os_image_hash = g_strdup(HASH);
  m->created_at_ms = 1700000000000;
  return m;
}

static void
setup(Fixture *f, gconstpointer data)
{
  f->root = g_dir_make_tmp("lcvm-spec-XXXXXX", NULL);
  put(f->root, "sys/bus/pci/devices/0000:18:00.0/numa_node", "1\n");
  put(f->root, "sys/bus/pci/devices/0000:2a:00.0/numa_node", "-1\n");
  put(f->root, "sys/devices/system/node/node1/cpulist", "16-31,48-63\n");
  g_autofree char *dev = g_build_filename(f->root, "dev", NULL);
  g_assert_cmpint(g_mkdir(dev, 0755), ==, 0);
  f->config = config_for(f->root, "");
  f->manifest = manifest_vm1();
  f->image = image_0_5_11();
  f->host.qemu_path = QEMU;
  f->host.qemu_version = (LcvmQemuVersion){ 9, 2, 1, "9.2.1", TRUE };
  f->host.vsock_cid = 1000;
}

static void
teardown(Fixture *f, gconstpointer data)
{
  const char *argv[] = { "rm", "-rf", f->root, NULL };
  g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free(f->root);
  lcvm_config_free(f->config);
  lcvm_manifest_free(f->manifest);
  lcvm_image_free(f->image);
}

static GStrv
argv_of(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmQemuSpec) spec =
      lcvm_qemu_spec_from(f->manifest, f->image, f->config, &f->host, &error);
  g_assert_no_error(error);
  GStrv argv = lcvm_qemu_argv_build(spec, &error);
  g_assert_no_error(error);
  return argv;
}

static void
assert_argv(const char *const *got, const char *const *expected)
{
  guint i = 0;
  for (; got[i] && expected[i]; i++)
    if (!g_str_equal(got[i], expected[i]))
      g_error("argument %u: got '%s', expected '%s'", i, got[i], expected[i]);
  if (got[i] || expected[i])
    g_error("argument %u: got '%s', expected '%s'", i, got[i] ? got[i] : "(end)",
            expected[i] ? expected[i] : "(end)");
}

static void
test_definition_becomes_the_reference_argv(Fixture *f, gconstpointer data)
{
  g_auto(GStrv) argv = argv_of(f);
  const char *expected[] = {
    "/usr/bin/taskset",
    "-c",
    "16-31,48-63",
    QEMU,
    "-accel",
    "kvm",
    "-m",
    "8192M",
    "-smp",
    "4",
    "-cpu",
    "host",
    "-machine",
    "q35,kernel_irqchip=split,confidential-guest-support=tdx,hpet=off,smm=off",
    "-object",
    "tdx-guest,id=tdx",
    "-nographic",
    "-nodefaults",
    "-sandbox",
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    "-action",
    "reboot=shutdown,panic=exit-failure",
    "-chardev",
    "socket,id=qmp,fd=3,server=on,wait=off",
    "-mon",
    "chardev=qmp,mode=control",
    "-add-fd",
    "set=4,fd=4,opaque=serial.log",
    "-chardev",
    "file,id=ser0,path=/dev/fdset/4,append=on",
    "-serial",
    "chardev:ser0",
    "-kernel",
    "/proc/self/fd/8",
    "-initrd",
    "/proc/self/fd/9",
    "-bios",
    "/proc/self/fd/10",
    "-virtfs",
    "local,path=" INST "/shared,mount_tag=host-shared,readonly=on,"
    "security_model=mapped,id=virtfs0",
    "-device",
    "vhost-vsock-pci,guest-cid=1000",
    "-add-fd",
    "set=5,fd=5,opaque=" IMG "/rootfs.img.verity",
    "-drive",
    "file=/dev/fdset/5,if=none,id=virtio-disk0,format=raw,readonly=on",
    "-device",
    "virtio-blk-pci,drive=virtio-disk0",
    "-add-fd",
    "set=6,fd=6,opaque=" INST "/hda.img",
    "-add-fd",
    "set=6,fd=7,opaque=" INST "/hda.img",
    "-drive",
    "file=/dev/fdset/6,if=none,id=virtio-disk1,format=qcow2",
    "-device",
    "virtio-blk-pci,drive=virtio-disk1",
    "-global",
    "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
    "-global",
    "q35-pcihost.pci-hole64-size=0x100000000000",
    "-device",
    "virtio-net-pci,netdev=nic0_td",
    "-netdev",
    "user,id=nic0_td,hostfwd=tcp:0.0.0.0:2200-:22",
    "-numa",
    "node,nodeid=0,cpus=0-1,memdev=mem0",
    "-object",
    "memory-backend-file,id=mem0,size=4G,mem-path=/dev/hugepages,share=on,"
    "prealloc=yes,host-nodes=1,policy=bind",
    "-device",
    "pxb-pcie,id=pcie.node1,bus=pcie.0,addr=10,numa_node=0,bus_nr=5",
    "-numa",
    "node,nodeid=1,cpus=2-3,memdev=mem1",
    "-object",
    "memory-backend-file,id=mem1,size=4G,mem-path=/dev/hugepages,share=on,"
    "prealloc=yes,host-nodes=0,policy=bind",
    "-device",
    "pxb-pcie,id=pcie.node0,bus=pcie.0,addr=11,numa_node=1,bus_nr=7",
    "-device",
    "pcie-root-port,id=pci.1,bus=pcie.node1,chassis=1",
    "-device",
    "vfio-pci,host=0000:18:00.0,bus=pci.1",
    "-device",
    "pcie-root-port,id=pci.2,bus=pcie.node0,chassis=2",
    "-device",
    "vfio-pci,host=0000:2a:00.0,bus=pci.2",
    "-device",
    "pcie-root-port,id=pci.3,bus=pcie.0,chassis=3",
    "-device",
    "vfio-pci,host=0000:05:00.0,bus=pci.3",
    "-append",
    CMDLINE,
    NULL
  };
  assert_argv((const char *const *)argv, expected);
}

static void
test_no_tee_host_without_vhost_vsock_drops_the_device(Fixture *f, gconstpointer data)
{
  lcvm_config_free(f->config);
  f->config = config_for(f->root, "[qemu]\nallow_no_tee=true\naccel=tcg\n");
  g_auto(GStrv) argv = argv_of(f);
  g_assert_false(g_strv_contains((const char *const *)argv, "vhost-vsock-pci,guest-cid=1000"));
  g_assert_false(g_strv_contains((const char *const *)argv, "tdx-guest,id=tdx"));
  g_assert_true(g_strv_contains((const char *const *)argv, "max,phys-bits=48"));

  put(f->root, "dev/vhost-vsock", "");
  g_auto(GStrv) with_vsock = argv_of(f);
  g_assert_true(g_strv_contains((const char *const *)with_vsock, "vhost-vsock-pci,guest-cid=1000"));
}

static void
test_replaced_image_is_refused_naming_both_hashes(Fixture *f, gconstpointer data)
{
  g_free(f->image->digest);
  f->image->digest = g_strnfill(64, 'c');
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmQemuSpec) spec =
      lcvm_qemu_spec_from(f->manifest, f->image, f->config, &f->host, &error);
  g_assert_null(spec);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, f->image->digest));
  g_assert_nonnull(strstr(error->message, HASH));
}

static void
test_missing_gpu_numa_node_is_reported_when_hugepages_need_it(Fixture *f, gconstpointer data)
{
  g_strfreev(f->manifest->gpus);
  f->manifest->gpus = g_strsplit("0000:99:00.0", " ", -1);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmQemuSpec) spec =
      lcvm_qemu_spec_from(f->manifest, f->image, f->config, &f->host, &error);
  g_assert_null(spec);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, "0000:99:00.0"));

  f->manifest->hugepages = FALSE;
  f->manifest->pin_numa = FALSE;
  g_clear_error(&error);
  g_autoptr(LcvmQemuSpec) plain =
      lcvm_qemu_spec_from(f->manifest, f->image, f->config, &f->host, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(plain->n_gpus, ==, 1);
}

static void
test_image_without_bios_is_refused(Fixture *f, gconstpointer data)
{
  g_clear_pointer(&f->image->bios, g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmQemuSpec) spec =
      lcvm_qemu_spec_from(f->manifest, f->image, f->config, &f->host, &error);
  g_assert_null(spec);
  g_assert_nonnull(strstr(error->message, "\"bios\""));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/qemu-spec/" name, Fixture, NULL, setup, fn, teardown)
  ADD("definition-becomes-the-reference-argv", test_definition_becomes_the_reference_argv);
  ADD("no-tee-host-without-vhost-vsock-drops-the-device",
      test_no_tee_host_without_vhost_vsock_drops_the_device);
  ADD("replaced-image-is-refused-naming-both-hashes",
      test_replaced_image_is_refused_naming_both_hashes);
  ADD("missing-gpu-numa-node-is-reported-when-hugepages-need-it",
      test_missing_gpu_numa_node_is_reported_when_hugepages_need_it);
  ADD("image-without-bios-is-refused", test_image_without_bios_is_refused);
  return g_test_run();
}
