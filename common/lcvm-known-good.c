/* SPDX-License-Identifier: MIT */
/* The known-good list (see the header). */
#include "lcvm-known-good.h"
#include "config.h"
#include "lcvm-error.h"
#include "lcvm-sha256.h"

#include <string.h>

#define IMAGE_GROUP_PREFIX "image "

static void
image_free(gpointer p)
{
  LcvmKnownImage *i = p;
  g_free(i->name);
  g_strfreev(i->digests);
  g_free(i->tarball_sha256);
  g_free(i);
}

void
lcvm_known_good_free(LcvmKnownGood *kg)
{
  if (kg == NULL)
    return;
  g_free(kg->origin);
  g_ptr_array_unref(kg->images);
  g_strfreev(kg->qemu_versions);
  g_free(kg->qemu_build);
  g_free(kg);
}

static gboolean
bad(GError **error, const char *origin, const char *group, const char *key, const char *form)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
              "%s: [%s] %s must be %s; fix the file (see the comments in the shipped "
              "known-good.conf)",
              origin, group, key, form);
  return FALSE;
}

/* A list of sha256 hex values; lower-cased. */
static GStrv
hex_list(GKeyFile *kf, const char *origin, const char *group, const char *key, GError **error)
{
  g_auto(GStrv) values = g_key_file_get_string_list(kf, group, key, NULL, NULL);
  if (values == NULL || values[0] == NULL)
    return bad(error, origin, group, key,
               "a list of sha256 values (64 hex digits, ';' after each)"),
           NULL;
  for (guint i = 0; values[i] != NULL; i++) {
    g_strstrip(values[i]);
    char *lower = g_ascii_strdown(values[i], -1);
    g_free(values[i]);
    values[i] = lower;
    if (!lcvm_sha256_is_hex(values[i]))
      return bad(error, origin, group, key, "a list of sha256 values (64 hex digits)"), NULL;
  }
  return g_steal_pointer(&values);
}

static gboolean
parse_image(GKeyFile *kf, const char *origin, const char *group, LcvmKnownGood *kg, GError **error)
{
  LcvmKnownImage *image = g_new0(LcvmKnownImage, 1);
  g_ptr_array_add(kg->images, image);
  image->name = g_strstrip(g_strdup(group + strlen(IMAGE_GROUP_PREFIX)));
  if (image->name[0] == '\0')
    return bad(error, origin, group, "(group name)", "'image NAME'");
  image->digests = hex_list(kf, origin, group, "digests", error);
  if (image->digests == NULL)
    return FALSE;
  g_autofree char *tarball = g_key_file_get_string(kf, group, "tarball_sha256", NULL);
  if (tarball != NULL && g_strstrip(tarball)[0] != '\0') {
    image->tarball_sha256 = g_ascii_strdown(tarball, -1);
    if (!lcvm_sha256_is_hex(image->tarball_sha256))
      return bad(error, origin, group, "tarball_sha256", "empty or 64 hex digits");
  }
  return TRUE;
}

/* "X.Y.Z" with numbers only. */
static gboolean
version_valid(const char *v)
{
  g_auto(GStrv) parts = g_strsplit(v, ".", -1);
  if (g_strv_length(parts) != 3)
    return FALSE;
  for (guint i = 0; i < 3; i++) {
    if (parts[i][0] == '\0' || strlen(parts[i]) > 5 ||
        strspn(parts[i], "0123456789") != strlen(parts[i]))
      return FALSE;
  }
  return TRUE;
}

static gboolean
parse_qemu(GKeyFile *kf, const char *origin, LcvmKnownGood *kg, GError **error)
{
  kg->qemu_versions = g_key_file_get_string_list(kf, "qemu", "versions", NULL, NULL);
  if (kg->qemu_versions == NULL || kg->qemu_versions[0] == NULL)
    return bad(error, origin, "qemu", "versions", "a list of X.Y.Z versions");
  for (guint i = 0; kg->qemu_versions[i] != NULL; i++)
    if (!version_valid(g_strstrip(kg->qemu_versions[i])))
      return bad(error, origin, "qemu", "versions", "a list of X.Y.Z versions");
  g_autoptr(GError) local = NULL;
  kg->qemu_distro_ok = g_key_file_get_boolean(kf, "qemu", "distro_packages", &local);
  if (local != NULL && !g_error_matches(local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND))
    return bad(error, origin, "qemu", "distro_packages", "true or false");
  kg->qemu_build = g_key_file_get_string(kf, "qemu", "build", NULL);
  if (kg->qemu_build == NULL)
    kg->qemu_build = g_strdup("install a QEMU of an accepted version and set [qemu] path");
  return TRUE;
}

static gboolean
uint_key(GKeyFile *kf, const char *origin, const char *group, const char *key, guint64 max,
         guint64 *out, GError **error)
{
  g_autofree char *text = g_key_file_get_string(kf, group, key, NULL);
  if (text == NULL)
    return TRUE;
  if (!lcvm_parse_uint(g_strstrip(text), max, out))
    return bad(error, origin, group, key, "a number");
  return TRUE;
}

static gboolean
parse_tdx(GKeyFile *kf, const char *origin, LcvmKnownGood *kg, GError **error)
{
  guint64 major = 0;
  if (!uint_key(kf, origin, "tdx-module", "min_major", 255, &major, error) ||
      !uint_key(kf, origin, "tdx-module", "min_build", G_MAXUINT32, &kg->tdx_min_build, error))
    return FALSE;
  kg->tdx_min_major = (guint)major;
  return TRUE;
}

LcvmKnownGood *
lcvm_known_good_parse(const char *text, gsize len, const char *origin, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, error)) {
    g_prefix_error(error, "%s: ", origin);
    return NULL;
  }
  g_autoptr(LcvmKnownGood) kg = g_new0(LcvmKnownGood, 1);
  kg->origin = g_strdup(origin);
  kg->images = g_ptr_array_new_with_free_func(image_free);
  g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++) {
    const char *g = groups[i];
    gboolean ok =
        g_str_has_prefix(g, IMAGE_GROUP_PREFIX)
            ? parse_image(kf, origin, g, kg, error)
            : g_str_equal(g, "qemu") || g_str_equal(g, "tdx-module") ||
                  bad(error, origin, g, "(group)", "[image NAME], [qemu] or [tdx-module]");
    if (!ok)
      return NULL;
  }
  if (!parse_qemu(kf, origin, kg, error) || !parse_tdx(kf, origin, kg, error))
    return NULL;
  return g_steal_pointer(&kg);
}

char *
lcvm_known_good_path(const LcvmConfig *config)
{
  if (config->known_good[0] != '\0')
    return g_strdup(config->known_good);
  char *etc = g_build_filename(LCVM_SYSCONFDIR, "lium-cvm", LCVM_KNOWN_GOOD_FILE, NULL);
  if (g_file_test(etc, G_FILE_TEST_EXISTS))
    return etc;
  g_free(etc);
  return g_build_filename(LCVM_DATADIR, "lium-cvm", LCVM_KNOWN_GOOD_FILE, NULL);
}

LcvmKnownGood *
lcvm_known_good_load(const LcvmConfig *config, GError **error)
{
  g_autofree char *path = lcvm_known_good_path(config);
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &text, &len, error)) {
    g_prefix_error(error,
                   "the known-good list cannot be read (install data/known-good.conf as "
                   "%s, or set [attestation] known_good): ",
                   path);
    return NULL;
  }
  if (len > LCVM_KNOWN_GOOD_MAX) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "the known-good list %s is larger than %d bytes", path, LCVM_KNOWN_GOOD_MAX);
    return NULL;
  }
  return lcvm_known_good_parse(text, len, path, error);
}

const LcvmKnownImage *
lcvm_known_good_image(const LcvmKnownGood *kg, const char *name)
{
  for (guint i = 0; i < kg->images->len; i++) {
    const LcvmKnownImage *image = g_ptr_array_index(kg->images, i);
    if (g_str_equal(image->name, name))
      return image;
  }
  return NULL;
}

gboolean
lcvm_known_good_image_ok(const LcvmKnownGood *kg, const char *name, const char *digest,
                         char **reason)
{
  g_autoptr(GStrvBuilder) accepted = g_strv_builder_new();
  for (guint i = 0; i < kg->images->len; i++) {
    const LcvmKnownImage *image = g_ptr_array_index(kg->images, i);
    if (digest != NULL && g_strv_contains((const char *const *)image->digests, digest))
      return TRUE;
    g_strv_builder_addv(accepted, (const char **)image->digests);
  }
  g_auto(GStrv) all = g_strv_builder_end(accepted);
  g_autofree char *list = g_strjoinv(", ", all);
  const LcvmKnownImage *listed = lcvm_known_good_image(kg, name);
  g_autofree char *what =
      listed ? g_strdup_printf("Download the image again ('lium-cvm images rm %s', then "
                               "'lium-cvm download %s'); validators accept",
                               name, name)
             : g_strdup("Use an image validators accept; their digests:");
  *reason = g_strdup_printf("OS image %s has digest %s, which is not in the known-good list "
                            "(%s): validators will reject this VM's attestation. %s %s",
                            name, digest ? digest : "(none)", kg->origin, what,
                            all[0] ? list : "none are listed");
  return FALSE;
}

LcvmKnownGoodVerdict
lcvm_known_good_qemu(const LcvmKnownGood *kg, const LcvmQemuVersion *v, char **reason)
{
  g_autofree char *triple = g_strdup_printf("%u.%u.%u", v->major, v->minor, v->patch);
  g_autofree char *list = g_strjoinv(", ", kg->qemu_versions);
  if (!g_strv_contains((const char *const *)kg->qemu_versions, triple)) {
    *reason = g_strdup_printf("QEMU %s is not in the known-good list (%s accepts %s): "
                              "validators will reject the measurements of a VM it runs",
                              v->text, kg->origin, list);
    return LCVM_KNOWN_GOOD_REJECTED;
  }
  if (v->distro_package && !kg->qemu_distro_ok) {
    *reason = g_strdup_printf("QEMU %s is a distribution's package: validators reproduce RTMR0 "
                              "from the dstack build of that version and may reject a VM it runs",
                              v->text);
    return LCVM_KNOWN_GOOD_DOUBTFUL;
  }
  return LCVM_KNOWN_GOOD_ACCEPTED;
}

LcvmKnownGoodVerdict
lcvm_known_good_tdx_module(const LcvmKnownGood *kg, const LcvmTdxVersion *v, char **reason)
{
  if (kg->tdx_min_major == 0)
    return LCVM_KNOWN_GOOD_ACCEPTED;
  if (v->major != kg->tdx_min_major) {
    *reason = g_strdup_printf("a %u.%u module: the known-good minimum (%s) applies to the %u.x "
                              "series only",
                              v->major, v->minor, kg->origin, kg->tdx_min_major);
    return LCVM_KNOWN_GOOD_ACCEPTED;
  }
  if (v->build_num >= kg->tdx_min_build)
    return LCVM_KNOWN_GOOD_ACCEPTED;
  *reason = g_strdup_printf(
      "TDX module %u.%u build %" G_GUINT64_FORMAT
      " is below the known-good minimum build %" G_GUINT64_FORMAT
      " (%s): DCAP verification fails with 'No matching TCB level found', so validators will "
      "reject every quote of this host",
      v->major, v->minor, v->build_num, kg->tdx_min_build, kg->origin);
  return LCVM_KNOWN_GOOD_REJECTED;
}
