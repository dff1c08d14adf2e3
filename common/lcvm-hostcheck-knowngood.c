/* SPDX-License-Identifier: MIT */
/* Host check, attestation area: the known-good list itself (data/known-good.conf or its
 * override) and whether the default OS image is one validators accept. The QEMU and TDX module
 * checks judge against the same list (lcvm-hostcheck-qemu.c, lcvm-hostcheck-platform.c). */
#include "lcvm-hostcheck-private.h"
#include "lcvm-layout.h"
#include "config.h"

void
hc_check_known_good(HostCtx *ctx)
{
  LcvmCheck *c = hc_add(ctx, "attestation.known_good", "Known-good list",
                        "readable: the OS images, QEMU versions and TDX module validators accept");
  g_autoptr(GError) error = NULL;
  ctx->known_good = lcvm_known_good_load(ctx->config, &error);
  if (ctx->known_good == NULL) {
    ctx->known_good_error = g_strdup(error->message);
    hc_set(c, LCVM_CHECK_FAIL, "%s", error->message);
    hc_remedy(c, "reinstall lium-cvm (it ships " LCVM_DATADIR "/lium-cvm/" LCVM_KNOWN_GOOD_FILE
                 "), or fix " LCVM_SYSCONFDIR "/lium-cvm/" LCVM_KNOWN_GOOD_FILE);
    return;
  }
  hc_set(c, LCVM_CHECK_OK, "%s (%u images; QEMU %s%s)", ctx->known_good->origin,
         ctx->known_good->images->len, ctx->known_good->qemu_versions[0],
         ctx->config->attestation_enforce ? "; enforced" : "");
}

void
hc_check_image_known_good(HostCtx *ctx)
{
  const char *name = ctx->config->default_image;
  LcvmCheck *c = hc_add(ctx, "image.known_good", "OS image accepted by validators",
                        "the default image's digest.txt is in the known-good list");
  if (ctx->known_good == NULL) {
    hc_set(c, LCVM_CHECK_UNKNOWN, "no known-good list (see attestation.known_good)");
    return;
  }
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = lcvm_layout_image_dir(ctx->config, name, &error);
  g_autofree char *digest = dir ? hc_read_value(dir, LCVM_IMAGE_DIGEST_FILE, &error) : NULL;
  if (digest == NULL) {
    hc_set(c, LCVM_CHECK_SKIP, "%s is not downloaded (see image.os)", name);
    return;
  }
  g_autofree char *reason = NULL;
  if (lcvm_known_good_image_ok(ctx->known_good, name, digest, &reason)) {
    hc_set(c, LCVM_CHECK_OK, "%s: digest %s is accepted", name, digest);
    return;
  }
  hc_set(c, ctx->config->attestation_enforce ? LCVM_CHECK_FAIL : LCVM_CHECK_WARN, "%s", reason);
  hc_remedy(c,
            "lium-cvm images rm %s; lium-cvm download %s (or set [images] default_image to "
            "an image in %s)",
            name, name, ctx->known_good->origin);
}
