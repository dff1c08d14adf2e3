/* SPDX-License-Identifier: MIT */
/* lium-cvm: the unprivileged frontend. It does everything that needs no privilege itself
 * and asks lium-cvm-helper (io.lium.Cvm1) for the rest. This file holds the one list of
 * verbs; `help` prints exactly this list. */
#include "cli.h"
#include "config.h"
#include <locale.h>
#include <stdio.h>
#include <string.h>

static const LcvmCommand commands[] = {
  { "check", "[--deep] [--fix [--yes]]",
    "Check that this host can run TDX VMs with GPUs; say how to fix what is missing", cmd_check },
  { "version", "", "Show the frontend's and the helper's versions and capabilities", cmd_version },
  { "load-modules", "[MODULE…] [--persist]", "Load the vfio kernel modules through the helper",
    cmd_load_modules },
  { "lsgpu", "[--query] [SLOT…]",
    "List NVIDIA GPUs and NVSwitches: driver, IOMMU group, vfio, CC mode, users", cmd_lsgpu },
  { "gpu", "bind|unbind|cc SLOT…|all, reset SLOT [--bus], dma-limit [N]",
    "Bind GPUs to vfio-pci and back; set their CC mode; reset; set the vfio DMA entry limit",
    cmd_gpu },
  { "download", "[NAME] [--url URL] [--sha256 HEX]",
    "Download, verify and install a dstack OS image (resumable)", cmd_download_run },
  { "key-provider", "status|start|stop|build|logs [-n N]",
    "Inspect, start, stop or build the SGX key provider (docker compose, through the helper)",
    cmd_key_provider },
  { "images", "[list | verify NAME | rm NAME [--yes]]", "List, verify or remove OS images",
    cmd_images },
  { "new", "NAME [OPTION…]", "Define a VM from .env and a compose file (measured files byte-exact)",
    cmd_new },
  { "list", "", "List the VM definitions", cmd_list },
  { "inventory", "",
    "List every CVM data disk on this host (lium-cvm's and Lium checkouts'); exit 3 if any",
    cmd_inventory },
  { "show", "NAME", "Show a VM definition: compose and OS image hashes, its disk's MRENCLAVE",
    cmd_show },
  { "hash", "NAME [--expect HEX]", "Recompute a VM's compose hash; exit 1 on a mismatch",
    cmd_hash },
  { "rm", "NAME [--yes]", "Remove a VM definition", cmd_rm },
  { "run", "NAME [--attach] [--dry-run]",
    "Start a VM (or print the exact QEMU command line it runs)", cmd_run },
  { "stop", "NAME [--timeout N] [--force]",
    "Stop a VM: guest agent, power button, then SIGTERM and SIGKILL of QEMU", cmd_stop },
  { "status", "NAME [--raw]", "Show a VM's live state: pid, uptime, forwards, boot progress",
    cmd_status },
  { "logs", "NAME [-f] [-n N] [--raw]", "Print (or follow) a VM's serial console", cmd_logs },
  { "metrics", "[--output FILE]",
    "Print readiness, GPUs, VMs, images and key provider as Prometheus metrics", cmd_metrics },
  { NULL, NULL, NULL, NULL },
};

static void
print_help(FILE *out)
{
  fprintf(out, "Usage: lium-cvm [--json] [--no-ask-password] [--config FILE] COMMAND [ARGS…]\n\n"
               "Run Intel TDX confidential VMs with NVIDIA GPUs for the Lium network.\n\n"
               "Commands:\n");
  for (const LcvmCommand *c = commands; c->verb != NULL; c++) {
    g_autofree char *usage = g_strdup_printf("%s %s", c->verb, c->args);
    glong width = g_utf8_strlen(usage, -1);
    if (width > 32)
      fprintf(out, "  %s\n  %34s %s\n", usage, "", c->summary);
    else
      fprintf(out, "  %s%*s %s\n", usage, (int)(34 - width), "", c->summary);
  }
  fprintf(out, "\n'lium-cvm COMMAND --help' shows a command's options.\n");
}

int
main(int argc, char **argv)
{
  LcvmCli cli = { 0 };
  int first = 1;
  setlocale(LC_ALL, "");

  /* Global options may come before the verb; the verb's own parser accepts them too. */
  g_autoptr(GPtrArray) global = g_ptr_array_new();
  for (; first < argc && argv[first][0] == '-'; first++) {
    if (g_str_equal(argv[first], "--version")) {
      printf("lium-cvm %s\n", LCVM_VERSION);
      return CLI_EXIT_OK;
    }
    if (g_str_equal(argv[first], "--help") || g_str_equal(argv[first], "-h")) {
      print_help(stdout);
      return CLI_EXIT_OK;
    }
    g_ptr_array_add(global, argv[first]);
    if (g_str_equal(argv[first], "--config") && first + 1 < argc)
      g_ptr_array_add(global, argv[++first]);
  }
  if (first >= argc) {
    print_help(stderr);
    return CLI_EXIT_USAGE;
  }
  if (g_str_equal(argv[first], "help")) {
    print_help(stdout);
    return CLI_EXIT_OK;
  }

  const LcvmCommand *cmd = NULL;
  for (const LcvmCommand *c = commands; c->verb != NULL && cmd == NULL; c++)
    if (g_str_equal(c->verb, argv[first]))
      cmd = c;
  if (cmd == NULL) {
    g_printerr("lium-cvm: unknown command '%s' (see 'lium-cvm help')\n", argv[first]);
    return CLI_EXIT_USAGE;
  }

  /* argv for the verb: verb, its arguments, then the global options. */
  g_autoptr(GPtrArray) sub = g_ptr_array_new();
  for (int i = first; i < argc; i++)
    g_ptr_array_add(sub, argv[i]);
  for (guint i = 0; i < global->len; i++)
    g_ptr_array_add(sub, global->pdata[i]);
  g_ptr_array_add(sub, NULL);
  cli.verb = cmd->verb;
  int status = cmd->run(&cli, (int)sub->len - 1, (char **)sub->pdata);

  cli_agent_stop(&cli);
  g_clear_object(&cli.bus);
  lcvm_config_free(cli.config);
  g_free(cli.config_path);
  return status;
}
