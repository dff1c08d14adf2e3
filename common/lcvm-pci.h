/* SPDX-License-Identifier: MIT */
/* The one PCI inventory: NVIDIA GPUs (class 0x0300/0x0302) and NVSwitches (0x0680) found with
 * libpci under a configured sysfs_root, with what the kernel says about each (driver,
 * driver_override, IOMMU group, NUMA node, vfio-dev node) and which processes hold its device
 * nodes open. Read-only: nothing here writes to sysfs or /dev. */
#pragma once
#include <glib.h>

#define LCVM_PCI_VENDOR_NVIDIA 0x10de
#define LCVM_VFIO_DRIVER       "vfio-pci"

typedef enum {
  LCVM_PCI_GPU,
  LCVM_PCI_NVSWITCH,
} LcvmPciKind;

/* What the kernel shows for one device right now (re-read at will: it changes under us). */
typedef struct {
  char *driver;          /* bound driver's name; NULL when unbound */
  char *driver_override; /* NULL when unset (the kernel shows "(null)") */
  int iommu_group;       /* -1: no IOMMU group (IOMMU off) */
  char *vfio_dev;        /* "vfio3" when vfio-dev/ has a node; NULL otherwise */
} LcvmPciState;

/* A process holding one of a device's nodes open. */
typedef struct {
  int pid;
  char *command; /* /proc/PID/comm */
  char *path;    /* the node, e.g. /dev/vfio/12 */
} LcvmPciHolder;

typedef struct {
  char slot[16]; /* DDDD:BB:DD.F, lower case */
  guint16 vendor_id;
  guint16 device_id;
  guint16 subsys_vendor_id;
  guint16 subsys_id;
  guint32 class_code; /* 24 bits: base, sub, prog-if (0x030200) */
  guint8 revision;
  LcvmPciKind kind;
  char *model;      /* "GH100 [H200 SXM 141GB]"; pci.ids or "Device 10de:XXXX" if unknown */
  const char *arch; /* "hopper", "blackwell", NULL (not confidential-computing capable) */
  int numa_node;    /* -1: none */
  LcvmPciState state;
  GPtrArray *holders; /* LcvmPciHolder; filled by lcvm_pci_find_holders() */
} LcvmPciDevice;

typedef struct {
  GPtrArray *devices;        /* LcvmPciDevice, sorted by slot */
  gboolean iommu_active;     /* sysfs_root/class/iommu has an entry */
  gboolean holders_complete; /* FALSE when some process's fds could not be read */
} LcvmPciInventory;

/* Scans sysfs_root/bus/pci with libpci (sysfs access method, path redirected). */
LcvmPciInventory *lcvm_pci_inventory_new(const char *sysfs_root, GError **error);
void lcvm_pci_inventory_free(LcvmPciInventory *inv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmPciInventory, lcvm_pci_inventory_free)
LcvmPciDevice *lcvm_pci_inventory_find(LcvmPciInventory *inv, const char *slot);
/* Fills each device's holders by scanning proc_root/PID/fd links for dev_root/vfio/GROUP,
 * dev_root/vfio/devices/vfioN and (for GPUs on nvidia) dev_root/nvidiaMINOR. */
void lcvm_pci_find_holders(LcvmPciInventory *inv, const char *dev_root, const char *proc_root);

/* sysfs_root/bus/pci/devices/SLOT (slot must be canonical). */
char *lcvm_pci_device_dir(const char *sysfs_root, const char *slot);
void lcvm_pci_state_read(const char *sysfs_root, const char *slot, LcvmPciState *state);
void lcvm_pci_state_clear(LcvmPciState *state);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(LcvmPciState, lcvm_pci_state_clear)

/* Model name and architecture from the table of confidential-computing capable ids (pci.ids
 * lacks recent ones such as 10de:2335); NULL when the id is not in it. */
const char *lcvm_pci_model_name(guint16 vendor_id, guint16 device_id);
const char *lcvm_pci_arch(guint16 vendor_id, guint16 device_id, LcvmPciKind kind);
const char *lcvm_pci_kind_name(LcvmPciKind kind);

gboolean lcvm_pci_iommu_active(const char *sysfs_root);

/* IOMMU group viability (the kernel's rule for vfio): every device of the group other than
 * those in `binding` is unbound, on vfio-pci or pci-stub, or a bridge. The error names the
 * first device that is not, and what to do. */
gboolean lcvm_pci_group_viable(const char *sysfs_root, int group, const char *const *binding,
                               GError **error);
