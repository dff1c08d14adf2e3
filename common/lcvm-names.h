/* SPDX-License-Identifier: MIT */
/* Names shared by the helper, the frontend and the tests: bus name, object paths,
 * interface names, polkit action ids. One place, so a rename cannot split them. */
#pragma once

#define LCVM_BUS_NAME      "io.lium.Cvm1"
#define LCVM_OBJECT_PATH   "/io/lium/Cvm1"
#define LCVM_JOBS_PATH     "/io/lium/Cvm1/jobs"
#define LCVM_VMS_PATH      "/io/lium/Cvm1/vms"
#define LCVM_IFACE_HOST    "io.lium.Cvm1.Host"
#define LCVM_IFACE_MANAGER "io.lium.Cvm1.Manager"
#define LCVM_IFACE_VM      "io.lium.Cvm1.Vm"
#define LCVM_IFACE_JOB     "io.lium.Cvm1.Job"

#define LCVM_ACTION_INSPECT             "io.lium.cvm1.inspect"
#define LCVM_ACTION_MANAGE_DEVICES      "io.lium.cvm1.manage-devices"
#define LCVM_ACTION_CONFIGURE_GPU       "io.lium.cvm1.configure-gpu"
#define LCVM_ACTION_MANAGE_VMS          "io.lium.cvm1.manage-vms"
#define LCVM_ACTION_MANAGE_KEY_PROVIDER "io.lium.cvm1.manage-key-provider"

/* journal MESSAGE_ID of every audit record (one per privileged call). */
#define LCVM_AUDIT_MESSAGE_ID "6b1f3c2a9d4e4f0b8a7c5e2d1f0a9b38"
/* journal MESSAGE_ID of the record of a VM whose QEMU exited unexpectedly (helper-crash.h). */
#define LCVM_CRASH_MESSAGE_ID "53198a4e3e404c8894eedd2dc8ec877f"

#define LCVM_GROUP "lium-cvm"

/* shared/.instance_info, which the guest writes through Notify and reads back at its next boot:
 * dstack-util copies at most this much, so the bridge accepts and the helper carries no more. */
#define LCVM_INSTANCE_INFO_MAX (10u * 1024)

/* A VM's event file (runtime_dir/NAME/events): the bridge stops appending there, and the
 * helper spawns the bridge with RLIMIT_FSIZE at this size, so even a bridge the guest took over
 * cannot grow it further. */
#define LCVM_EVENTS_FILE_MAX (1024u * 1024)
