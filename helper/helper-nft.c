/* libnftables batches for the loopback guard (see the header). Every batch is one
 * transaction: a chain is never half-written, and "add" before "flush"/"delete" makes both
 * operations idempotent. VM names are validated ([a-z0-9][a-z0-9_-]*), so `vm_NAME` is always
 * an nft identifier and nothing a caller says reaches the command text otherwise. */
#include "helper-nft.h"
#include "lcvm-error.h"
#include "lcvm-validate.h"

#include <nftables/libnftables.h>

#define CHAIN_HEAD                                                                                 \
  "add table inet " HELPER_NFT_TABLE "\n"                                                          \
  "add chain inet " HELPER_NFT_TABLE " vm_%s { type filter hook output priority 0 ; "              \
  "policy accept ; }\n"                                                                            \
  "flush chain inet " HELPER_NFT_TABLE " vm_%s\n"
#define RULE "add rule inet " HELPER_NFT_TABLE " vm_%s meta skuid %u %s\n"
#define CHAIN_HEAD_PROBE                                                                           \
  "add table inet " HELPER_NFT_TABLE "\n"                                                          \
  "add chain inet " HELPER_NFT_TABLE " probe { type filter hook output priority 0 ; "              \
  "policy accept ; }\n"                                                                            \
  "add rule inet " HELPER_NFT_TABLE " probe meta skuid 0 fib daddr type local drop\n"

static gboolean
run_batch(const char *vm, const char *what, const char *commands, GError **error)
{
  struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
  if (nft == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "VM %s: cannot %s the loopback guard: libnftables failed to initialise", vm, what);
    return FALSE;
  }
  nft_ctx_buffer_output(nft);
  nft_ctx_buffer_error(nft);
  int rc = nft_run_cmd_from_buffer(nft, commands);
  if (rc != 0) {
    g_autofree char *message = g_strstrip(g_strdup(nft_ctx_get_error_buffer(nft)));
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "VM %s: cannot %s the loopback guard (nftables table inet " HELPER_NFT_TABLE
                "): %s; the kernel needs nf_tables (`lium-cvm check` reports it)",
                vm, what, message[0] ? message : "unknown error");
  }
  nft_ctx_free(nft);
  return rc == 0;
}

gboolean
helper_nft_guard_add(const char *vm, uid_t qemu_uid, guint16 hostapi_port, GError **error)
{
  if (!lcvm_vm_name_valid(vm, error))
    return FALSE;
  g_autoptr(GString) batch = g_string_new(NULL);
  g_string_append_printf(batch, CHAIN_HEAD, vm, vm);
  g_string_append_printf(batch, RULE, vm, (guint)qemu_uid, "ct direction reply accept");
  g_autofree char *own = g_strdup_printf("ip daddr 127.0.0.0/8 tcp dport %u accept", hostapi_port);
  g_string_append_printf(batch, RULE, vm, (guint)qemu_uid, own);
  /* Every address of this host, not only loopback: through slirp a guest could otherwise
   * reach a service bound to the host's own LAN or public address. */
  g_string_append_printf(batch, RULE, vm, (guint)qemu_uid, "fib daddr type local drop");
  return run_batch(vm, "install", batch->str, error);
}

gboolean
helper_nft_usable(GError **error)
{
  struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
  if (nft == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "libnftables failed to initialise");
    return FALSE;
  }
  nft_ctx_buffer_output(nft);
  nft_ctx_buffer_error(nft);
  nft_ctx_set_dry_run(nft, true);
  /* The guard's table, a base chain and its one kernel-specific rule; checked, never
   * committed. */
  int rc = nft_run_cmd_from_buffer(nft, CHAIN_HEAD_PROBE);
  if (rc != 0) {
    g_autofree char *message = g_strstrip(g_strdup(nft_ctx_get_error_buffer(nft)));
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "nftables cannot hold the loopback guard: %s; load nf_tables and nft_fib_inet "
                "(sudo modprobe nft_fib_inet)",
                message[0] ? message : "unknown error");
  }
  nft_ctx_free(nft);
  return rc == 0;
}

gboolean
helper_nft_guard_remove(const char *vm, GError **error)
{
  if (!lcvm_vm_name_valid(vm, error))
    return FALSE;
  g_autoptr(GString) batch = g_string_new(NULL);
  g_string_append_printf(batch, CHAIN_HEAD, vm, vm);
  g_string_append_printf(batch, "delete chain inet " HELPER_NFT_TABLE " vm_%s\n", vm);
  return run_batch(vm, "remove", batch->str, error);
}
