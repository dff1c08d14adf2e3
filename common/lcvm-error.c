/* SPDX-License-Identifier: MIT */
/* Registers the io.lium.Cvm1.Error.* names with GDBus (both sides link this). */
#include "lcvm-error.h"
#include <errno.h>
#include <gio/gio.h>

static const GDBusErrorEntry lcvm_error_entries[] = {
  { LCVM_ERROR_NOT_AUTHORIZED, "io.lium.Cvm1.Error.NotAuthorized" },
  { LCVM_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
    "io.lium.Cvm1.Error.InteractiveAuthorizationRequired" },
  { LCVM_ERROR_INVALID_ARGUMENT, "io.lium.Cvm1.Error.InvalidArgument" },
  { LCVM_ERROR_NOT_FOUND, "io.lium.Cvm1.Error.NotFound" },
  { LCVM_ERROR_BUSY, "io.lium.Cvm1.Error.Busy" },
  { LCVM_ERROR_DEVICE_IN_USE, "io.lium.Cvm1.Error.DeviceInUse" },
  { LCVM_ERROR_FAILED, "io.lium.Cvm1.Error.Failed" },
};

GQuark
lcvm_error_quark(void)
{
  static gsize quark = 0;
  g_dbus_error_register_error_domain("lcvm-error-quark", &quark, lcvm_error_entries,
                                     G_N_ELEMENTS(lcvm_error_entries));
  return (GQuark)quark;
}

const char *
lcvm_error_dbus_name(LcvmError code)
{
  for (gsize i = 0; i < G_N_ELEMENTS(lcvm_error_entries); i++)
    if (lcvm_error_entries[i].error_code == (gint)code)
      return lcvm_error_entries[i].dbus_error_name;
  return "io.lium.Cvm1.Error.Failed";
}

gboolean
lcvm_set_errno(GError **error, int err, const char *fmt, ...)
{
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *what = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s: %s", what, g_strerror(err));
  errno = saved;
  return FALSE;
}
