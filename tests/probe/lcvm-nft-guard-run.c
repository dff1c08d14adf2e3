/* SPDX-License-Identifier: MIT */
/* lcvm-nft-guard-run: the e2e tests' handle on the network guard (helper/helper-nft.c), in
 * whatever network namespace it runs in:
 *   lcvm-nft-guard-run add NAME UID PORT [ALLOW,ALLOW…]   install VM NAME's chain
 *   lcvm-nft-guard-run remove NAME                         remove it (the table with the last)
 *   lcvm-nft-guard-run problems NAME…                      print helper_nft_guard_problems()
 *   lcvm-nft-guard-run host                                print the uplinks and connected prefixes
 *   lcvm-nft-guard-run usable                              the capability probe (dry run)
 *   lcvm-nft-guard-run resolvers RESOLV_CONF [ALLOW,…]     the nameservers the guard refuses
 * Exits 0 on success; errors go to stderr with exit status 1. */
#include "helper-nft.h"
#include <stdio.h>
#include <stdlib.h>

static int
fail(GError *error)
{
  fprintf(stderr, "%s\n", error->message);
  g_error_free(error);
  return 1;
}

int
main(int argc, char **argv)
{
  GError *error = NULL;
  if (argc >= 5 && g_str_equal(argv[1], "add")) {
    g_auto(GStrv) allow = g_strsplit(argc > 5 ? argv[5] : "", ",", -1);
    if (allow[0] != NULL && allow[0][0] == '\0')
      g_clear_pointer(&allow[0], g_free);
    if (!helper_nft_guard_add(argv[2], (uid_t)atoi(argv[3]), (guint16)atoi(argv[4]),
                              (const char *const *)allow, &error))
      return fail(error);
    return 0;
  }
  if (argc == 3 && g_str_equal(argv[1], "remove"))
    return helper_nft_guard_remove(argv[2], &error) ? 0 : fail(error);
  if (argc >= 2 && g_str_equal(argv[1], "problems")) {
    g_autofree char *problems = helper_nft_guard_problems((const char *const *)argv + 2);
    printf("%s\n", problems ? problems : "none");
    return 0;
  }
  if (argc == 2 && g_str_equal(argv[1], "host")) {
    g_autoptr(HelperNftHost) host = helper_nft_host_read("/proc/net");
    g_autofree char *uplinks = g_strjoinv(",", host->uplinks);
    g_autofree char *connected = g_strjoinv(",", host->connected);
    printf("uplinks=%s\nconnected=%s\n", uplinks, connected);
    return 0;
  }
  if (argc >= 3 && g_str_equal(argv[1], "resolvers")) {
    g_autoptr(HelperNftHost) host = helper_nft_host_read("/proc/net");
    g_auto(GStrv) allow = g_strsplit(argc > 3 ? argv[3] : "", ",", -1);
    g_auto(GStrv) refused = helper_nft_refused_resolvers(argv[2], (const char *const *)allow, host);
    g_autofree char *list = g_strjoinv(",", refused);
    printf("%s\n", list);
    return 0;
  }
  if (argc == 2 && g_str_equal(argv[1], "usable"))
    return helper_nft_usable(&error) ? 0 : fail(error);
  fprintf(stderr, "usage: lcvm-nft-guard-run add NAME UID PORT [ALLOW,…] | remove NAME | "
                  "problems NAME… | host | usable | resolvers FILE [ALLOW,…]\n");
  return 2;
}
