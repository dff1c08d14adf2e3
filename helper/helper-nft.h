/* SPDX-License-Identifier: MIT */
/* The guest network guard (DESIGN §5): one nftables table, `inet lium_cvm`, holding per VM a
 * base chain `vm_NAME` on the output hook for the VM's QEMU uid (= the guest, through slirp).
 * That uid may reach
 *   - its own host-API port on 127.0.0.0/8,
 *   - the prefixes of [network] guest_allow (explicit exceptions),
 *   - destinations the host routes out of an uplink (an interface holding a default route)
 *     that are not on one of the host's directly connected subnets: the internet;
 * and replies on connections others opened to its forwarded ports pass. Everything else is
 * rejected: the host's own addresses (`fib daddr type local`), broadcast, multicast and anycast,
 * the special ranges (loopback, RFC 1918, CGNAT, link-local 169.254.0.0/16 and fe80::/10 — cloud
 * metadata services —, ULA, multicast, reserved), every subnet directly connected to the host
 * when the guard was installed, and anything that would leave through another interface
 * (container bridges, veths, tunnels, including ones created later). Installed before QEMU
 * starts, removed after it is gone (the table with the last chain). Through libnftables in the
 * helper's own network namespace; never touches another table. */
#pragma once
#include <glib.h>
#include <sys/types.h>

#define HELPER_NFT_TABLE "lium_cvm"
/* The comment on each chain's last rule: `check` recognises a complete guard by it. */
#define HELPER_NFT_GUARD_MARK "lium-cvm guard 2"

/* The host's routing view the guard is made from, read from /proc/net and getifaddrs. */
typedef struct {
  GStrv uplinks;   /* interfaces holding a default route (IPv4 or IPv6), sorted, unique */
  GStrv connected; /* prefixes of every address on a non-loopback interface ("a.b.c.0/24") */
} HelperNftHost;

void helper_nft_host_free(HelperNftHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperNftHost, helper_nft_host_free)
/* proc_net: the directory holding route and ipv6_route ("/proc/net"). */
HelperNftHost *helper_nft_host_read(const char *proc_net);

/* Installs (or replaces, atomically) VM vm's chain from the host's current routing view. */
gboolean helper_nft_guard_add(const char *vm, uid_t qemu_uid, guint16 hostapi_port,
                              const char *const *guest_allow, GError **error);

/* Whether the kernel takes the guard (nf_tables with the fib, reject and set expressions):
 * the guard's commands checked by the kernel in dry-run mode, nothing committed. */
gboolean helper_nft_usable(GError **error);

/* Removes VM vm's chain, and the table when no chain is left; succeeds when there is none. */
gboolean helper_nft_guard_remove(const char *vm, GError **error);

/* The guard of each VM of vms as the kernel holds it: NULL when every one has its complete
 * chain, else a text naming each VM whose chain is missing or incomplete. */
char *helper_nft_guard_problems(const char *const *vms);

/* The nameservers of resolv_conf (slirp forwards a guest's DNS to them) that the guard refuses
 * for certain: inside a special range or a connected subnet and outside guest_allow. A
 * resolver reached through a non-uplink interface is refused too but not listed. */
GStrv helper_nft_refused_resolvers(const char *resolv_conf, const char *const *guest_allow,
                                   const HelperNftHost *host);
