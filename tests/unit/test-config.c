/* SPDX-License-Identifier: MIT */
/* lium-cvm.conf parsing: defaults, every key, unknown and malformed keys named. */
#include "lcvm-config.h"
#include <string.h>
#include <gio/gio.h>

static void
test_defaults_match_design(void)
{
  g_autoptr(LcvmConfig) c = lcvm_config_new_default();
  g_assert_cmpstr(c->state_dir, ==, "/var/lib/lium-cvm");
  g_assert_cmpstr(c->runtime_dir, ==, "/run/lium-cvm");
  g_assert_cmpstr(c->sysfs_root, ==, "/sys");
  g_assert_cmpstr(c->modules_load_dir, ==, "/etc/modules-load.d");
  g_assert_cmpuint(c->uid_range.min, ==, 61000);
  g_assert_cmpuint(c->uid_range.max, ==, 61999);
  g_assert_false(c->allow_no_tee);
  g_assert_true(c->sanitize_on_attach);
  g_assert_cmpstr(c->accel, ==, "kvm");
  g_assert_cmpuint(c->hostapi_port_range.min, ==, 40000);
  g_assert_cmpuint(c->cid_range.max, ==, 1999);
  g_assert_cmpuint(c->reserved_ports->len, ==, 2);
  g_assert_cmpuint(g_array_index(c->reserved_ports, guint16, 0), ==, 3443);
  g_assert_cmpuint(g_array_index(c->reserved_ports, guint16, 1), ==, 8081);
  g_assert_cmpstr(c->key_provider_address, ==, "127.0.0.1:3443");
  g_assert_cmpuint(c->idle_timeout, ==, 60);
  g_assert_cmpstr(c->qemu_path, ==, "");
}

static void
test_every_key_is_read(void)
{
  const char *text = "[paths]\nstate_dir=/s\nruntime_dir=/r\nhugepages_dir=/h\nsysfs_root=/fs\n"
                     "dev_root=/d\nproc_root=/p\nmodules_load_dir=/m\nmodprobe_dir=/mp\n"
                     "[qemu]\npath=/q/qemu\nuid_range=100-200\nallow_no_tee=true\naccel=tcg\n"
                     "[limits]\nmax_vcpus=8\nmax_memory=64G\nport_range=2000-3000\n"
                     "hostapi_port_range=5000-5010\ncid_range=10-20\nreserved_ports=1, 2,3\n"
                     "[tools]\ngpu_admin_tools=/t/g.py\ndocker=\n"
                     "[key-provider]\naddress=::1:99\ncompose_dir=/kp\n"
                     "[images]\ndefault_image=img\nurl=http://x/%s.tar.gz\n"
                     "[helper]\nidle_timeout=0\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmConfig) c = lcvm_config_load_data(text, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(c->state_dir, ==, "/s");
  g_assert_cmpstr(c->runtime_dir, ==, "/r");
  g_assert_cmpstr(c->hugepages_dir, ==, "/h");
  g_assert_cmpstr(c->sysfs_root, ==, "/fs");
  g_assert_cmpstr(c->dev_root, ==, "/d");
  g_assert_cmpstr(c->proc_root, ==, "/p");
  g_assert_cmpstr(c->modules_load_dir, ==, "/m");
  g_assert_cmpstr(c->modprobe_dir, ==, "/mp");
  g_assert_cmpstr(c->qemu_path, ==, "/q/qemu");
  g_assert_cmpuint(c->uid_range.min, ==, 100);
  g_assert_true(c->allow_no_tee);
  g_assert_cmpstr(c->accel, ==, "tcg");
  g_assert_cmpuint(c->max_vcpus, ==, 8);
  g_assert_cmpuint(c->max_memory, ==, 64ull << 30);
  g_assert_cmpuint(c->port_range.max, ==, 3000);
  g_assert_cmpuint(c->hostapi_port_range.min, ==, 5000);
  g_assert_cmpuint(c->cid_range.min, ==, 10);
  g_assert_cmpuint(c->reserved_ports->len, ==, 3);
  g_assert_cmpstr(c->gpu_admin_tools, ==, "/t/g.py");
  g_assert_cmpstr(c->docker, ==, "");
  g_assert_cmpstr(c->key_provider_address, ==, "::1:99");
  g_assert_cmpstr(c->key_provider_compose_dir, ==, "/kp");
  g_assert_cmpstr(c->default_image, ==, "img");
  g_assert_cmpstr(c->image_url, ==, "http://x/%s.tar.gz");
  g_assert_cmpuint(c->idle_timeout, ==, 0);
}

typedef struct {
  const char *text;
  const char *must_name; /* substring the error must contain */
} BadCase;

static void
test_malformed_values_name_the_key(void)
{
  const BadCase cases[] = {
    { "[paths]\nstate_dir=relative\n", "paths.state_dir" },
    { "[paths]\nsysfs_root=/a/../b\n", "paths.sysfs_root" },
    { "[paths]\nstate_dir=\n", "paths.state_dir" },
    { "[qemu]\nuid_range=200-100\n", "qemu.uid_range" },
    { "[qemu]\nuid_range=abc\n", "qemu.uid_range" },
    { "[qemu]\nallow_no_tee=yes\n", "qemu.allow_no_tee" },
    { "[gpu]\nsanitize_on_attach=off\n", "gpu.sanitize_on_attach" },
    { "[qemu]\naccel=hvf\n", "qemu.accel" },
    { "[qemu]\naccel=tcg\n", "qemu.accel" },
    { "[limits]\nmax_vcpus=-1\n", "limits.max_vcpus" },
    { "[limits]\nmax_memory=12X\n", "limits.max_memory" },
    { "[limits]\nreserved_ports=3443,70000\n", "limits.reserved_ports" },
    { "[limits]\nreserved_ports=0\n", "limits.reserved_ports" },
    { "[key-provider]\naddress=localhost:3443\n", "key-provider.address" },
    { "[key-provider]\naddress=127.0.0.1\n", "key-provider.address" },
    { "[helper]\nidle_timeout=1.5\n", "helper.idle_timeout" },
    { "[helper]\nidle_timeout=soon\n", "helper.idle_timeout" },
    { "[paths]\nstat_dir=/x\n", "paths.stat_dir" },
    { "[path]\nstate_dir=/x\n", "[path]" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(LcvmConfig) c = lcvm_config_load_data(cases[i].text, &error);
    g_assert_null(c);
    g_assert_nonnull(error);
    if (strstr(error->message, cases[i].must_name) == NULL)
      g_error("case %zu: '%s' does not name %s", i, error->message, cases[i].must_name);
  }
}

static void
test_syntax_error_and_missing_file(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmConfig) c = lcvm_config_load_data("no group here\n", &error);
  g_assert_null(c);
  g_assert_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE);
  g_clear_error(&error);
  g_autoptr(LcvmConfig) c2 = lcvm_config_load("/nonexistent/lium-cvm.conf", &error);
  g_assert_null(c2);
  g_assert_nonnull(strstr(error->message, "/nonexistent/lium-cvm.conf"));
}

static void
test_sizes(void)
{
  guint64 v;
  g_assert_true(lcvm_parse_size("512M", &v, NULL));
  g_assert_cmpuint(v, ==, 512ull << 20);
  g_assert_true(lcvm_parse_size("2t", &v, NULL));
  g_assert_cmpuint(v, ==, 2ull << 40);
  g_assert_true(lcvm_parse_size("4096", &v, NULL));
  g_assert_cmpuint(v, ==, 4096);
  g_assert_false(lcvm_parse_size("", &v, NULL));
  g_assert_false(lcvm_parse_size("G", &v, NULL));
  g_assert_false(lcvm_parse_size("99999999999T", &v, NULL));
}

static void
test_guest_allow_takes_only_valid_prefixes(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmConfig) def = lcvm_config_load_data("", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_strv_length(def->guest_allow), ==, 0);
  g_autoptr(LcvmConfig) c = lcvm_config_load_data(
      "[network]\nguest_allow= 192.168.1.53 , 10.0.0.0/8,,2001:db8::/32,fe80::1\n", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_strv_length(c->guest_allow), ==, 4);
  g_assert_cmpstr(c->guest_allow[0], ==, "192.168.1.53/32");
  g_assert_cmpstr(c->guest_allow[1], ==, "10.0.0.0/8");
  g_assert_cmpstr(c->guest_allow[2], ==, "2001:db8::/32");
  g_assert_cmpstr(c->guest_allow[3], ==, "fe80::1/128");
  /* Hostile or mistaken values: each refused naming the key and the expected form. */
  static const char *const bad[] = {
    "0.0.0.0/0",          "::/0",
    "10.0.0.1/8",         "1.2.3.4/33",
    "1.2.3.4/-1",         "1.2.3.4/8x",
    "example.com",        "1.2.3.4 5.6.7.8",
    "1.2.3.4/",           "/8",
    "1.2.3.4/8/8",        "192.168.1.1; flush ruleset",
    "\"10.0.0.0/8\"",     "{ 10.0.0.0/8 }",
    "::ffff:1.2.3.4/200",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *text = g_strdup_printf("[network]\nguest_allow=%s\n", bad[i]);
    g_autoptr(GError) e = NULL;
    g_autoptr(LcvmConfig) refused = lcvm_config_load_data(text, &e);
    g_assert_null(refused);
    g_assert_error(e, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
    g_assert_nonnull(strstr(e->message, "network.guest_allow"));
    g_assert_nonnull(strstr(e->message, "no /0"));
  }
}

static void
test_summary_lists_every_key(void)
{
  g_autoptr(LcvmConfig) c = lcvm_config_new_default();
  g_autoptr(GHashTable) s = lcvm_config_summary(c);
  g_assert_cmpstr(g_hash_table_lookup(s, "qemu.uid_range"), ==, "61000-61999");
  g_assert_cmpstr(g_hash_table_lookup(s, "limits.reserved_ports"), ==, "3443,8081");
  g_assert_cmpstr(g_hash_table_lookup(s, "qemu.allow_no_tee"), ==, "false");
  g_assert_cmpuint(g_hash_table_size(s), >=, 25);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/config/defaults_match_design", test_defaults_match_design);
  g_test_add_func("/config/every_key_is_read", test_every_key_is_read);
  g_test_add_func("/config/malformed_values_name_the_key", test_malformed_values_name_the_key);
  g_test_add_func("/config/syntax_error_and_missing_file", test_syntax_error_and_missing_file);
  g_test_add_func("/config/sizes", test_sizes);
  g_test_add_func("/config/summary_lists_every_key", test_summary_lists_every_key);
  g_test_add_func("/config/guest_allow_takes_only_valid_prefixes",
                  test_guest_allow_takes_only_valid_prefixes);
  return g_test_run();
}
