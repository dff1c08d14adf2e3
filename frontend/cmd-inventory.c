/* SPDX-License-Identifier: MIT */
/* `lium-cvm inventory`: every CVM data disk on this host (lcvm-inventory), lium-cvm's and Lium
 * checkouts', with what each was made with. Exit statuses as Lium's upgrade guard: 0 none,
 * 3 disks exist, 4 the inventory is incomplete. Reads only; needs no helper. */
#include "cli.h"
#include "lcvm-inventory.h"
#include "lcvm-layout.h"
#include <stdio.h>

static const char *
or_unknown(const char *value, const char *unknown)
{
  return value ? value : unknown;
}

static void
print_lines(GPtrArray *lines, const char *title)
{
  if (lines->len == 0)
    return;
  printf("%s\n", title);
  for (guint i = 0; i < lines->len; i++)
    printf("  - %s\n", (const char *)lines->pdata[i]);
}

static void
print_text(const LcvmInventory *inv)
{
  for (guint i = 0; i < inv->disks->len; i++) {
    const LcvmInventoryDisk *d = inv->disks->pdata[i];
    printf("%s (%s, %s)\n", d->name, d->owner, d->state);
    printf("  disk:          %s/" LCVM_INSTANCE_DATA_DISK "\n", d->dir);
    printf("  image:         %s\n", or_unknown(d->image, "unknown"));
    printf("  OS image hash: %s\n", or_unknown(d->os_image_hash, "unknown"));
    printf("  compose hash:  %s\n", or_unknown(d->compose_hash, "unknown"));
    printf("  MRENCLAVE:     %s\n", or_unknown(d->mrenclave, "not recorded"));
  }
  print_lines(inv->notes, "Notes:");
  print_lines(inv->incomplete, "Not searched (the inventory is incomplete):");
  switch (lcvm_inventory_status(inv)) {
  case LCVM_INVENTORY_NONE:
    printf("No CVM data disk on this host.\n");
    break;
  case LCVM_INVENTORY_DISKS:
    printf("%u CVM data disk(s): each opens only with the measurements and key provider it was "
           "made with; keep them unchanged while the disk matters.\n",
           inv->disks->len);
    break;
  default:
    printf("%u CVM data disk(s) found, but the inventory is incomplete (run as root for a full "
           "sweep).\n",
           inv->disks->len);
    break;
  }
}

int
cmd_inventory(LcvmCli *cli, int argc, char **argv)
{
  if (!cli_parse(cli, &argc, &argv, NULL, "",
                 "Lists every CVM data disk on this host: lium-cvm's (state_dir/instances) and\n"
                 "Lium checkouts' (run/vms under [inventory] lium_registry roots and below\n"
                 "[inventory] sweep_roots), with the image, compose hash and key provider\n"
                 "MRENCLAVE each was made with. Exit status as Lium's upgrade guard: 0 no disk,\n"
                 "3 disks exist, 4 the inventory is incomplete."))
    return CLI_EXIT_USAGE;
  if (argc > 1)
    return cli_failf(cli, CLI_EXIT_USAGE, "'inventory' takes no arguments");
  g_autoptr(LcvmInventory) inv = lcvm_inventory_scan(cli->config);
  if (cli->json) {
    g_autoptr(JsonNode) node = lcvm_inventory_to_json(inv);
    cli_print_json(node);
  } else {
    print_text(inv);
  }
  return lcvm_inventory_status(inv);
}
