/* SPDX-License-Identifier: MIT */
/* The registered io.lium.Cvm1.Error.* names. Both sides map them through the same table,
 * so a remote error arrives in the frontend as the LCVM_ERROR code it was sent as. */
#pragma once
#include <glib.h>

typedef enum {
  LCVM_ERROR_NOT_AUTHORIZED,
  LCVM_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
  LCVM_ERROR_INVALID_ARGUMENT,
  LCVM_ERROR_NOT_FOUND,
  LCVM_ERROR_BUSY,
  LCVM_ERROR_DEVICE_IN_USE,
  LCVM_ERROR_FAILED,
} LcvmError;

#define LCVM_ERROR (lcvm_error_quark())
GQuark lcvm_error_quark(void);
const char *lcvm_error_dbus_name(LcvmError code);

/* Sets error to G_IO_ERROR with the code for err (an errno value) and the message
 * "<fmt…>: <strerror(err)>". Returns FALSE, so a failing path reads
 * `return lcvm_set_errno(error, errno, "cannot open %s", path);`. Keeps errno. */
gboolean lcvm_set_errno(GError **error, int err, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
