/* SPDX-License-Identifier: MIT */
/* The known-good list: which OS images (digest.txt values, archive sha256), QEMU versions and
 * TDX module builds Lium's validators accept, read from a data file (data/known-good.conf,
 * overridden by /etc/lium-cvm/known-good.conf or [attestation] known_good) so that no version
 * fact lives in C. The judgements say, in words an operator acts on, when validators will
 * reject what a VM would boot. Pure apart from lcvm_known_good_load, which reads one file. */
#pragma once
#include <glib.h>

#include "lcvm-config.h"
#include "lcvm-hostcheck-parse.h"
#include "lcvm-qemu-probe.h"

#define LCVM_KNOWN_GOOD_FILE "known-good.conf"
#define LCVM_KNOWN_GOOD_MAX  (256 * 1024)

typedef struct {
  char *name;
  GStrv digests;        /* 64 lower-case hex each, never empty */
  char *tarball_sha256; /* 64 lower-case hex, or NULL when unknown */
} LcvmKnownImage;

typedef struct {
  char *origin;        /* the file it came from */
  GPtrArray *images;   /* LcvmKnownImage*, in file order */
  GStrv qemu_versions; /* "X.Y.Z", never empty */
  gboolean qemu_distro_ok;
  char *qemu_build;    /* remedy text: how to get an accepted QEMU */
  guint tdx_min_major; /* 0: the TDX module is not judged */
  guint64 tdx_min_build;
} LcvmKnownGood;

void lcvm_known_good_free(LcvmKnownGood *kg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmKnownGood, lcvm_known_good_free)

/* Parses the GKeyFile text; every malformed value is an error naming the group, key and the
 * accepted form (a typo must not silently accept or reject everything). */
LcvmKnownGood *lcvm_known_good_parse(const char *text, gsize len, const char *origin,
                                     GError **error);

/* The file the configuration selects: [attestation] known_good, else
 * LCVM_SYSCONFDIR/lium-cvm/known-good.conf when it exists, else the shipped
 * LCVM_DATADIR/lium-cvm/known-good.conf. */
char *lcvm_known_good_path(const LcvmConfig *config);
LcvmKnownGood *lcvm_known_good_load(const LcvmConfig *config, GError **error);

const LcvmKnownImage *lcvm_known_good_image(const LcvmKnownGood *kg, const char *name);

/* Validators accept an OS image by its digest alone. TRUE when digest is listed (under any
 * name); else *reason says that validators will reject it and which digests they accept. */
gboolean lcvm_known_good_image_ok(const LcvmKnownGood *kg, const char *name, const char *digest,
                                  char **reason);

typedef enum {
  LCVM_KNOWN_GOOD_ACCEPTED,
  LCVM_KNOWN_GOOD_DOUBTFUL, /* an accepted version from a distribution package */
  LCVM_KNOWN_GOOD_REJECTED,
} LcvmKnownGoodVerdict;

/* The QEMU version's verdict; *reason set unless accepted. */
LcvmKnownGoodVerdict lcvm_known_good_qemu(const LcvmKnownGood *kg, const LcvmQemuVersion *v,
                                          char **reason);

/* The TDX module's verdict (only the min_major series is judged; others are accepted with
 * *reason saying why they are not compared). */
LcvmKnownGoodVerdict lcvm_known_good_tdx_module(const LcvmKnownGood *kg, const LcvmTdxVersion *v,
                                                char **reason);
