/* SPDX-License-Identifier: MIT */
/* libnftables batches for the guest network guard (see the header). Every batch is one
 * transaction: a chain is never half-written, and "add" before "flush"/"delete" makes both
 * operations idempotent. VM names are validated ([a-z0-9][a-z0-9_-]*), guest_allow prefixes by
 * the config parser, interface names and prefixes come from the kernel; nothing a caller says
 * reaches the command text otherwise. Adds and removes are serialised: a removal deletes the
 * table once its last chain is gone, which must never race with another VM's add. */
#include "helper-nft.h"
#include "lcvm-error.h"
#include "lcvm-validate.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>

#define TABLE       "inet " HELPER_NFT_TABLE
#define REJECT      "reject with icmpx admin-prohibited"
#define RTF_UP_FLAG 0x0001
#define RTF_REJ     0x0200

/* Never reachable from a guest, whatever the routes say (IANA special-purpose registries). */
static const char *const special_v4[] = {
  "0.0.0.0/8",      /* "this network" */
  "10.0.0.0/8",     /* RFC 1918 */
  "100.64.0.0/10",  /* CGNAT, often a provider's internal network */
  "127.0.0.0/8",    /* loopback (the own host-API port is accepted before) */
  "169.254.0.0/16", /* link-local: cloud metadata services at 169.254.169.254 */
  "172.16.0.0/12",  /* RFC 1918: Docker's default bridges */
  "192.0.0.0/24",   /* IETF protocol assignments */
  "192.168.0.0/16", /* RFC 1918 */
  "198.18.0.0/15",  /* benchmarking */
  "224.0.0.0/4",    /* multicast (mDNS, SSDP) */
  "240.0.0.0/4",    /* reserved, and 255.255.255.255 */
  NULL,
};
static const char *const special_v6[] = {
  "::/127",         /* unspecified and loopback */
  "::ffff:0:0/96",  /* IPv4-mapped */
  "64:ff9b:1::/48", /* local-use NAT64 */
  "100::/64",       /* discard */
  "fc00::/7",       /* unique local */
  "fe80::/10",      /* link-local */
  "fec0::/10",      /* site-local (deprecated) */
  "ff00::/8",       /* multicast */
  NULL,
};

static GMutex guard_lock;

/* ---- the host's routing view ---- */

void
helper_nft_host_free(HelperNftHost *host)
{
  if (host == NULL)
    return;
  g_strfreev(host->uplinks);
  g_strfreev(host->connected);
  g_free(host);
}

static void
add_unique(GPtrArray *list, const char *text)
{
  if (!g_ptr_array_find_with_equal_func(list, text, g_str_equal, NULL))
    g_ptr_array_add(list, g_strdup(text));
}

static gboolean
valid_ifname(const char *name)
{
  gsize len = strlen(name);
  if (len == 0 || len >= IFNAMSIZ)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum(*p) && strchr("-_.@:", *p) == NULL)
      return FALSE;
  return TRUE;
}

/* A default route's interface when it is usable (up, not a reject route, not lo). */
static void
add_uplink(GPtrArray *uplinks, const char *iface, unsigned flags)
{
  if ((flags & RTF_UP_FLAG) && !(flags & RTF_REJ) && valid_ifname(iface) &&
      !g_str_equal(iface, "lo"))
    add_unique(uplinks, iface);
}

/* The interfaces of the default routes in /proc/net/route ("IFACE 00000000 GATEWAY FLAGS REFCNT
 * USE METRIC 00000000 …", after a header line) and ipv6_route ("DEST(32 hex) 00 SRC SRCLEN
 * NEXTHOP METRIC REF USE FLAGS IFACE"). */
static void
read_defaults(const char *proc_net, const char *file, GPtrArray *uplinks)
{
  gboolean v6 = g_str_equal(file, "ipv6_route");
  g_autofree char *path = g_build_filename(proc_net, file, NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, NULL))
    return;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = v6 ? 0 : 1; lines[i] != NULL; i++) {
    char iface[IFNAMSIZ + 1], dest[33], mask[9], len[3];
    unsigned flags = 0;
    if (v6 &&
        sscanf(lines[i], "%32s %2s %*s %*s %*s %*s %*s %*s %x %16s", dest, len, &flags, iface) ==
            4 &&
        strspn(dest, "0") == 32 && g_str_equal(len, "00"))
      add_uplink(uplinks, iface, flags);
    if (!v6 &&
        sscanf(lines[i], "%16s %8s %*s %x %*s %*s %*s %8s", iface, dest, &flags, mask) == 4 &&
        g_str_equal(dest, "00000000") && g_str_equal(mask, "00000000"))
      add_uplink(uplinks, iface, flags);
  }
}

/* "network/length" of an address and its netmask. */
static char *
prefix_of(const struct sockaddr *addr, const struct sockaddr *mask)
{
  guint8 bytes[16];
  const guint8 *a, *m;
  gsize n;
  GSocketFamily family;
  if (addr->sa_family == AF_INET) {
    a = (const guint8 *)&((const struct sockaddr_in *)addr)->sin_addr;
    m = (const guint8 *)&((const struct sockaddr_in *)mask)->sin_addr;
    n = 4;
    family = G_SOCKET_FAMILY_IPV4;
  } else {
    a = (const guint8 *)&((const struct sockaddr_in6 *)addr)->sin6_addr;
    m = (const guint8 *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
    n = 16;
    family = G_SOCKET_FAMILY_IPV6;
  }
  guint length = 0;
  for (gsize i = 0; i < n; i++) {
    bytes[i] = a[i] & m[i];
    length += (guint)__builtin_popcount(m[i]);
  }
  if (length == 0)
    return NULL;
  g_autoptr(GInetAddress) network = g_inet_address_new_from_bytes(bytes, family);
  g_autofree char *text = g_inet_address_to_string(network);
  return g_strdup_printf("%s/%u", text, length);
}

static void
read_connected(GPtrArray *connected)
{
  struct ifaddrs *list = NULL;
  if (getifaddrs(&list) < 0)
    return;
  for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
    if (i->ifa_addr == NULL || i->ifa_netmask == NULL || (i->ifa_flags & IFF_LOOPBACK) ||
        (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
      continue;
    g_autofree char *prefix = prefix_of(i->ifa_addr, i->ifa_netmask);
    if (prefix != NULL)
      add_unique(connected, prefix);
  }
  freeifaddrs(list);
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

static GStrv
sorted_strv(GPtrArray *list)
{
  g_ptr_array_sort(list, compare_strings);
  g_ptr_array_add(list, NULL);
  return (GStrv)g_ptr_array_free(list, FALSE);
}

HelperNftHost *
helper_nft_host_read(const char *proc_net)
{
  GPtrArray *uplinks = g_ptr_array_new();
  GPtrArray *connected = g_ptr_array_new();
  read_defaults(proc_net, "route", uplinks);
  read_defaults(proc_net, "ipv6_route", uplinks);
  read_connected(connected);
  HelperNftHost *host = g_new0(HelperNftHost, 1);
  host->uplinks = sorted_strv(uplinks);
  host->connected = sorted_strv(connected);
  return host;
}

/* ---- the rule set ---- */

static gboolean
is_v6(const char *prefix)
{
  return strchr(prefix, ':') != NULL;
}

/* "{ a, b }" of the prefixes of one family, or NULL when there is none. */
static char *
prefix_set(const char *const *prefixes, gboolean v6)
{
  g_autoptr(GString) s = g_string_new("{ ");
  guint n = 0;
  for (guint i = 0; prefixes != NULL && prefixes[i] != NULL; i++)
    if (is_v6(prefixes[i]) == v6)
      g_string_append_printf(s, "%s%s", n++ ? ", " : "", prefixes[i]);
  g_string_append(s, " }");
  return n > 0 ? g_string_free(g_steal_pointer(&s), FALSE) : NULL;
}

static void
add_rule(GString *batch, const char *vm, uid_t uid, const char *rule)
{
  g_string_append_printf(batch, "add rule " TABLE " vm_%s meta skuid %u %s\n", vm, (guint)uid,
                         rule);
}

/* One rule per family of prefixes (nothing when the list has none of that family). */
static void
add_prefix_rules(GString *batch, const char *vm, uid_t uid, const char *const *prefixes,
                 const char *verdict)
{
  for (int v6 = 0; v6 <= 1; v6++) {
    g_autofree char *set = prefix_set(prefixes, v6);
    if (set == NULL)
      continue;
    g_autofree char *rule = g_strdup_printf("%s daddr %s %s", v6 ? "ip6" : "ip", set, verdict);
    add_rule(batch, vm, uid, rule);
  }
}

/* The nft commands installing VM vm's chain (also checked, unapplied, by the probe below). */
static char *
helper_nft_guard_commands(const char *vm, uid_t qemu_uid, guint16 hostapi_port,
                          const char *const *guest_allow, const HelperNftHost *host)
{
  GString *batch = g_string_new(NULL);
  g_string_append_printf(batch,
                         "add table " TABLE "\n"
                         "add chain " TABLE " vm_%s { type filter hook output priority 0 ; "
                         "policy accept ; }\n"
                         "flush chain " TABLE " vm_%s\n",
                         vm, vm);
  /* Replies on connections others opened to the VM's forwarded ports. */
  add_rule(batch, vm, qemu_uid, "ct direction reply accept");
  g_autofree char *own = g_strdup_printf("ip daddr 127.0.0.0/8 tcp dport %u accept", hostapi_port);
  add_rule(batch, vm, qemu_uid, own);
  add_prefix_rules(batch, vm, qemu_uid, guest_allow, "accept");
  add_rule(batch, vm, qemu_uid, "fib daddr type { local, broadcast, anycast, multicast } " REJECT);
  add_prefix_rules(batch, vm, qemu_uid, special_v4, REJECT);
  add_prefix_rules(batch, vm, qemu_uid, special_v6, REJECT);
  add_prefix_rules(batch, vm, qemu_uid, (const char *const *)host->connected, REJECT);
  /* The last rule: out of an uplink or not at all (no default route: nothing outside). */
  g_autoptr(GString) last = g_string_new(NULL);
  if (host->uplinks[0] != NULL) {
    g_string_append(last, "oifname != { ");
    for (guint i = 0; host->uplinks[i] != NULL; i++)
      g_string_append_printf(last, "%s\"%s\"", i ? ", " : "", host->uplinks[i]);
    g_string_append(last, " } ");
  }
  g_string_append(last, REJECT " comment \"" HELPER_NFT_GUARD_MARK "\"");
  add_rule(batch, vm, qemu_uid, last->str);
  return g_string_free(batch, FALSE);
}

/* ---- libnftables ---- */

/* Runs commands; *output (may be NULL) gets what nft printed. */
static gboolean
run_nft(const char *commands, gboolean dry_run, char **output, GError **error)
{
  struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
  if (nft == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "libnftables failed to initialise");
    return FALSE;
  }
  nft_ctx_buffer_output(nft);
  nft_ctx_buffer_error(nft);
  nft_ctx_set_dry_run(nft, dry_run);
  int rc = nft_run_cmd_from_buffer(nft, commands);
  if (rc != 0) {
    g_autofree char *message = g_strstrip(g_strdup(nft_ctx_get_error_buffer(nft)));
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s", message[0] ? message : "unknown error");
  } else if (output != NULL) {
    *output = g_strdup(nft_ctx_get_output_buffer(nft));
  }
  nft_ctx_free(nft);
  return rc == 0;
}

static gboolean
run_batch(const char *vm, const char *what, const char *commands, GError **error)
{
  g_autoptr(GError) local = NULL;
  if (run_nft(commands, FALSE, NULL, &local))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "VM %s: cannot %s the network guard (nftables table " TABLE
              "): %s; the kernel needs nf_tables (`lium-cvm check` reports it)",
              vm, what, local->message);
  return FALSE;
}

gboolean
helper_nft_guard_add(const char *vm, uid_t qemu_uid, guint16 hostapi_port,
                     const char *const *guest_allow, GError **error)
{
  if (!lcvm_vm_name_valid(vm, error))
    return FALSE;
  g_autoptr(HelperNftHost) host = helper_nft_host_read("/proc/net");
  g_autofree char *batch = helper_nft_guard_commands(vm, qemu_uid, hostapi_port, guest_allow, host);
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&guard_lock);
  return run_batch(vm, "install", batch, error);
}

gboolean
helper_nft_usable(GError **error)
{
  /* A guard with every kind of rule, checked by the kernel, never committed. */
  static const char *const allow[] = { "192.0.2.0/24", "2001:db8::/32", NULL };
  char *uplinks[] = { (char *)"lo", NULL };
  char *connected[] = { (char *)"198.51.100.0/24", (char *)"2001:db8:1::/64", NULL };
  HelperNftHost host = { .uplinks = uplinks, .connected = connected };
  g_autofree char *batch = helper_nft_guard_commands("probe", 0, 40000, allow, &host);
  g_autoptr(GError) local = NULL;
  if (run_nft(batch, TRUE, NULL, &local))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "nftables cannot hold the network guard: %s; load nf_tables, nft_fib_inet and "
              "nft_reject_inet (sudo modprobe -a nft_fib_inet nft_reject_inet)",
              local->message);
  return FALSE;
}

/* The table's text, or NULL when there is no table (or nft cannot list it). */
static char *
list_table(void)
{
  char *out = NULL;
  if (!run_nft("list table " TABLE "\n", FALSE, &out, NULL))
    return NULL;
  return out;
}

static gboolean
has_chains(const char *table_text)
{
  return table_text != NULL && strstr(table_text, "\tchain ") != NULL;
}

gboolean
helper_nft_guard_remove(const char *vm, GError **error)
{
  if (!lcvm_vm_name_valid(vm, error))
    return FALSE;
  g_autofree char *batch =
      g_strdup_printf("add table " TABLE "\n"
                      "add chain " TABLE " vm_%s { type filter hook output priority 0 ; "
                      "policy accept ; }\n"
                      "delete chain " TABLE " vm_%s\n",
                      vm, vm);
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&guard_lock);
  if (!run_batch(vm, "remove", batch, error))
    return FALSE;
  g_autofree char *rest = list_table();
  g_autoptr(GError) local = NULL;
  if (rest != NULL && !has_chains(rest) &&
      !run_nft("delete table " TABLE "\n", FALSE, NULL, &local))
    g_warning("cannot remove the empty nftables table " TABLE ": %s", local->message);
  return TRUE;
}

/* The text of chain vm_NAME inside the table's listing, or NULL. */
static char *
chain_text(const char *table_text, const char *vm)
{
  g_autofree char *head = g_strdup_printf("\tchain vm_%s {\n", vm);
  const char *start = table_text ? strstr(table_text, head) : NULL;
  if (start == NULL)
    return NULL;
  const char *end = strstr(start + strlen(head), "\n\t}");
  return end ? g_strndup(start, end - start) : g_strdup(start);
}

char *
helper_nft_guard_problems(const char *const *vms)
{
  if (vms == NULL || vms[0] == NULL)
    return NULL;
  g_autofree char *table = list_table();
  g_autoptr(GString) problems = g_string_new(NULL);
  for (guint i = 0; vms[i] != NULL; i++) {
    g_autofree char *chain = chain_text(table, vms[i]);
    const char *what = chain == NULL                                  ? "has no guard chain"
                       : strstr(chain, HELPER_NFT_GUARD_MARK) == NULL ? "has an incomplete guard"
                                                                      : NULL;
    if (what != NULL)
      g_string_append_printf(problems, "%sVM %s %s (vm_%s in " TABLE ")", problems->len ? "; " : "",
                             vms[i], what, vms[i]);
  }
  return problems->len ? g_string_free(g_steal_pointer(&problems), FALSE) : NULL;
}

static gboolean
in_any(GInetAddress *addr, const char *const *prefixes)
{
  for (guint i = 0; prefixes != NULL && prefixes[i] != NULL; i++) {
    g_autoptr(GInetAddressMask) mask = g_inet_address_mask_new_from_string(prefixes[i], NULL);
    if (mask != NULL && g_inet_address_mask_matches(mask, addr))
      return TRUE;
  }
  return FALSE;
}

GStrv
helper_nft_refused_resolvers(const char *resolv_conf, const char *const *guest_allow,
                             const HelperNftHost *host)
{
  g_autoptr(GStrvBuilder) refused = g_strv_builder_new();
  g_autofree char *text = NULL;
  if (g_file_get_contents(resolv_conf, &text, NULL, NULL)) {
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
      char key[16], value[64];
      if (sscanf(lines[i], "%15s %63s", key, value) != 2 || !g_str_equal(key, "nameserver"))
        continue;
      g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(value);
      if (addr != NULL &&
          (in_any(addr, special_v4) || in_any(addr, special_v6) ||
           in_any(addr, (const char *const *)host->connected)) &&
          !in_any(addr, guest_allow))
        g_strv_builder_add(refused, value);
    }
  }
  return g_strv_builder_end(refused);
}
