/* SPDX-License-Identifier: MIT */
/* lium-cvm-download: the program behind `lium-cvm download` (libexecdir). It alone links
 * libcurl and libarchive, so every other command starts without them. argv[1] onwards are the
 * arguments of `lium-cvm download`; it runs as the operator who ran lium-cvm. */
#include "cli.h"
#include <locale.h>

int
main(int argc, char **argv)
{
  LcvmCli cli = { .verb = "download" };
  setlocale(LC_ALL, "");
  int status = cmd_download(&cli, argc, argv);
  lcvm_config_free(cli.config);
  g_free(cli.config_path);
  return status;
}
