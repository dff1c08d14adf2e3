/* SPDX-License-Identifier: MIT */
/* The reservation table (see the header): one map from a key ("uid:61000", "device:SLOT", …)
 * to the VM holding it. Never touches the host; the only question it asks outside itself is
 * the caller's port probe. */
#include "helper-alloc.h"
#include "lcvm-error.h"

/* Holder of CIDs the kernel refused: another hypervisor has them. */
#define FOREIGN_HOLDER "(another hypervisor)"

struct _HelperAlloc {
  GMutex lock;
  LcvmRange uids;
  LcvmRange cids;
  LcvmRange hostapi_ports;
  GArray *reserved_ports; /* guint16, never handed out as host-API ports */
  HelperPortProbe port_free;
  GHashTable *held;   /* key → VM name */
  guint64 uid_cursor; /* where the round-robin search for a free uid starts */
};

void
helper_reservation_free(HelperReservation *r)
{
  if (r == NULL)
    return;
  g_strfreev(r->devices);
  g_strfreev(r->ports);
  g_free(r);
}

HelperAlloc *
helper_alloc_new(const LcvmConfig *config, HelperPortProbe port_free)
{
  HelperAlloc *a = g_new0(HelperAlloc, 1);
  g_mutex_init(&a->lock);
  a->uids = config->uid_range;
  a->uid_cursor = a->uids.min;
  a->cids = config->cid_range;
  a->hostapi_ports = config->hostapi_port_range;
  a->reserved_ports = g_array_copy(config->reserved_ports);
  a->port_free = port_free;
  a->held = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  return a;
}

void
helper_alloc_free(HelperAlloc *alloc)
{
  if (alloc == NULL)
    return;
  g_hash_table_unref(alloc->held);
  g_array_unref(alloc->reserved_ports);
  g_mutex_clear(&alloc->lock);
  g_free(alloc);
}

static char *
key_of(const char *kind, guint64 value)
{
  return g_strdup_printf("%s:%" G_GUINT64_FORMAT, kind, value);
}

static gboolean
is_reserved_port(HelperAlloc *a, guint64 port)
{
  for (guint i = 0; i < a->reserved_ports->len; i++)
    if (g_array_index(a->reserved_ports, guint16, i) == port)
      return TRUE;
  return FALSE;
}

/* The lowest value of range whose key is free (and, for host-API ports, bindable). */
static gboolean
lowest_free(HelperAlloc *a, const char *kind, LcvmRange range, guint64 *out)
{
  gboolean ports = g_str_equal(kind, "hostapi");
  for (guint64 v = range.min; v <= range.max; v++) {
    g_autofree char *key = key_of(kind, v);
    if (g_hash_table_contains(a->held, key))
      continue;
    if (ports && (is_reserved_port(a, v) || (a->port_free && !a->port_free((guint16)v))))
      continue;
    *out = v;
    return TRUE;
  }
  return FALSE;
}

static gboolean
exhausted(GError **error, const char *what, const char *key, LcvmRange range)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_BUSY,
              "no free %s left in [%s] %s %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT
              "; stop a VM or widen the range in lium-cvm.conf",
              what, g_str_equal(key, "uid_range") ? "qemu" : "limits", key, range.min, range.max);
  return FALSE;
}

/* Keys of the devices and forwarded ports of m, in order. */
static void
shared_keys(const LcvmManifest *m, GPtrArray *devices, GPtrArray *ports)
{
  for (guint i = 0; m->gpus[i] != NULL; i++)
    g_ptr_array_add(devices, g_strdup(m->gpus[i]));
  for (guint i = 0; m->nvswitches[i] != NULL; i++)
    g_ptr_array_add(devices, g_strdup(m->nvswitches[i]));
  for (guint i = 0; i < m->ports->len; i++) {
    const LcvmPortForward *p = &g_array_index(m->ports, LcvmPortForward, i);
    g_ptr_array_add(ports, g_strdup_printf("%s:%u", lcvm_protocol_name(p->protocol), p->host_port));
  }
  g_ptr_array_add(devices, NULL);
  g_ptr_array_add(ports, NULL);
}

static gboolean
check_free(HelperAlloc *a, const char *vm, const char *prefix, char *const *values,
           const char *what, GError **error)
{
  for (guint i = 0; values[i] != NULL; i++) {
    g_autofree char *key = g_strconcat(prefix, values[i], NULL);
    const char *holder = g_hash_table_lookup(a->held, key);
    if (holder == NULL)
      continue;
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_BUSY,
                "VM %s cannot start: %s %s is held by VM %s; stop that VM first or define "
                "this one with another",
                vm, what, values[i], holder);
    return FALSE;
  }
  return TRUE;
}

static void
take(HelperAlloc *a, const char *vm, const char *prefix, char *const *values)
{
  for (guint i = 0; values[i] != NULL; i++)
    g_hash_table_insert(a->held, g_strconcat(prefix, values[i], NULL), g_strdup(vm));
}

static void
take_number(HelperAlloc *a, const char *vm, const char *kind, guint64 value)
{
  g_hash_table_insert(a->held, key_of(kind, value), g_strdup(vm));
}

/* The first free uid from the cursor on, wrapping round the range. */
static gboolean
next_free_uid(HelperAlloc *a, guint64 *out)
{
  guint64 size = a->uids.max - a->uids.min + 1;
  for (guint64 i = 0; i < size; i++) {
    guint64 uid = a->uids.min + (a->uid_cursor - a->uids.min + i) % size;
    g_autofree char *key = key_of("uid", uid);
    if (!g_hash_table_contains(a->held, key)) {
      *out = uid;
      return TRUE;
    }
  }
  return FALSE;
}

static void
advance_uid_cursor(HelperAlloc *a, guint64 taken)
{
  a->uid_cursor = taken >= a->uids.max ? a->uids.min : taken + 1;
}

/* Two uids, round-robin: QEMU's, then the bridge's. */
static gboolean
pick_uids(HelperAlloc *a, HelperReservation *r, GError **error)
{
  guint64 qemu = 0, bridge = 0, cursor = a->uid_cursor;
  if (!next_free_uid(a, &qemu))
    return exhausted(error, "uid", "uid_range", a->uids);
  take_number(a, "", "uid", qemu);
  advance_uid_cursor(a, qemu);
  gboolean ok = next_free_uid(a, &bridge);
  g_autofree char *key = key_of("uid", qemu);
  g_hash_table_remove(a->held, key);
  if (!ok) {
    a->uid_cursor = cursor;
    return exhausted(error, "pair of uids", "uid_range", a->uids);
  }
  advance_uid_cursor(a, bridge);
  r->qemu_uid = (uid_t)qemu;
  r->bridge_uid = (uid_t)bridge;
  return TRUE;
}

static gboolean
pick_numbers(HelperAlloc *a, HelperReservation *r, GError **error)
{
  guint64 cid = 0, port = 0, cursor = a->uid_cursor;
  if (!pick_uids(a, r, error))
    return FALSE;
  gboolean have_cid = lowest_free(a, "cid", a->cids, &cid);
  gboolean have_port = have_cid && lowest_free(a, "hostapi", a->hostapi_ports, &port);
  if (!have_port)
    a->uid_cursor = cursor; /* nothing was taken */
  if (!have_cid)
    return exhausted(error, "vsock CID", "cid_range", a->cids);
  if (!have_port)
    return exhausted(error, "host-API port", "hostapi_port_range", a->hostapi_ports);
  r->cid = (guint)cid;
  r->hostapi_port = (guint16)port;
  return TRUE;
}

static void
take_all(HelperAlloc *a, const char *vm, const HelperReservation *r)
{
  take_number(a, vm, "uid", r->qemu_uid);
  take_number(a, vm, "uid", r->bridge_uid);
  take_number(a, vm, "cid", r->cid);
  take_number(a, vm, "hostapi", r->hostapi_port);
  take(a, vm, HELPER_ALLOC_DEVICE, r->devices);
  take(a, vm, "port:", r->ports);
}

HelperReservation *
helper_alloc_reserve(HelperAlloc *alloc, const char *vm, const LcvmManifest *m, GError **error)
{
  g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) ports = g_ptr_array_new_with_free_func(g_free);
  shared_keys(m, devices, ports);
  g_autoptr(HelperReservation) r = g_new0(HelperReservation, 1);
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&alloc->lock);
  if (!check_free(alloc, vm, HELPER_ALLOC_DEVICE, (char *const *)devices->pdata, "device", error) ||
      !check_free(alloc, vm, "port:", (char *const *)ports->pdata, "host port", error) ||
      !pick_numbers(alloc, r, error))
    return NULL;
  r->devices = (GStrv)g_ptr_array_steal(devices, NULL);
  r->ports = (GStrv)g_ptr_array_steal(ports, NULL);
  take_all(alloc, vm, r);
  return g_steal_pointer(&r);
}

static gboolean
number_free(HelperAlloc *a, const char *vm, const char *kind, guint64 value, GError **error)
{
  g_autofree char *key = key_of(kind, value);
  const char *holder = g_hash_table_lookup(a->held, key);
  if (holder == NULL)
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_BUSY, "VM %s: %s is already held by VM %s", vm, key,
              holder);
  return FALSE;
}

void
helper_alloc_set_uid_cursor(HelperAlloc *alloc, guint64 uid)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&alloc->lock);
  alloc->uid_cursor = uid >= alloc->uids.min && uid <= alloc->uids.max ? uid : alloc->uids.min;
}

guint64
helper_alloc_uid_cursor(HelperAlloc *alloc)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&alloc->lock);
  return alloc->uid_cursor;
}

gboolean
helper_alloc_claim(HelperAlloc *alloc, const char *vm, const HelperReservation *r, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&alloc->lock);
  if (!number_free(alloc, vm, "uid", r->qemu_uid, error) ||
      !number_free(alloc, vm, "uid", r->bridge_uid, error) ||
      !number_free(alloc, vm, "cid", r->cid, error) ||
      !number_free(alloc, vm, "hostapi", r->hostapi_port, error) ||
      !check_free(alloc, vm, HELPER_ALLOC_DEVICE, r->devices, "device", error) ||
      !check_free(alloc, vm, "port:", r->ports, "host port", error))
    return FALSE;
  take_all(alloc, vm, r);
  return TRUE;
}

gboolean
helper_alloc_next_cid(HelperAlloc *alloc, const char *vm, HelperReservation *r, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&alloc->lock);
  g_hash_table_insert(alloc->held, key_of("cid", r->cid), g_strdup(FOREIGN_HOLDER));
  guint64 cid = 0;
  if (!lowest_free(alloc, "cid", alloc->cids, &cid))
    return exhausted(error, "vsock CID", "cid_range", alloc->cids);
  r->cid = (guint)cid;
  take_number(alloc, vm, "cid", cid);
  return TRUE;
}

static gboolean
held_by(gpointer key, gpointer value, gpointer vm)
{
  return g_str_equal(value, vm);
}

void
helper_alloc_release(HelperAlloc *alloc, const char *vm)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&alloc->lock);
  g_hash_table_foreach_remove(alloc->held, held_by, (gpointer)vm);
}

char *
helper_alloc_holder(HelperAlloc *alloc, const char *key)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&alloc->lock);
  return g_strdup(g_hash_table_lookup(alloc->held, key));
}
