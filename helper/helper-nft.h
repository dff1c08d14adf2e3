/* The loopback guard (DESIGN §5): one nftables table, `inet lium_cvm`, holding per VM a base
 * chain `vm_NAME` on the output hook that drops the VM's QEMU uid's traffic to every local
 * address of the host (`fib daddr type local`: 127.0.0.0/8, ::1 and the host's own LAN and
 * public addresses) — except connections to its own host-API port on 127.0.0.0/8 and replies
 * on connections others opened to its forwarded ports. Without it a guest reaches every local
 * service of the host through slirp's 10.0.2.2. Installed before QEMU starts, removed after it is
 * gone. Through libnftables in the helper's own network namespace; never touches another table. */
#pragma once
#include <glib.h>
#include <sys/types.h>

#define HELPER_NFT_TABLE "lium_cvm"

/* Installs (or replaces, atomically) VM vm's chain. */
gboolean helper_nft_guard_add(const char *vm, uid_t qemu_uid, guint16 hostapi_port, GError **error);

/* Whether the kernel takes the guard (nf_tables with the fib expression): the guard's
 * commands checked by the kernel in dry-run mode, nothing committed. */
gboolean helper_nft_usable(GError **error);

/* Removes VM vm's chain; succeeds when there is none. */
gboolean helper_nft_guard_remove(const char *vm, GError **error);
