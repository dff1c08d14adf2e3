/* SPDX-License-Identifier: MIT */
/* The method table: every method of io.lium.Cvm1.Host and io.lium.Cvm1.Manager, what it needs
 * and how it answers (helper-dispatch.h), in the order of dbus/io.lium.Cvm1.xml. A method
 * missing here is refused; the allowed flags must match the XML's "flags:" documentation
 * (tests/unit/test-authorizer.c checks both). */
#include "helper-dispatch.h"
#include "helper-gpumode.h"
#include "helper-host.h"
#include "helper-keyprovider.h"
#include "helper-manager.h"
#include "helper-modules.h"
#include "helper-vfio.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-names.h"
#include "lcvm-vm-object.h"

#define HOST    LCVM_IFACE_HOST
#define MANAGER LCVM_IFACE_MANAGER

/* Each row: interface, method, polkit action (NULL: none), the flags argument's index (-1:
 * none), the flags allowed, the operation that holds its locks (and names its Job); then the
 * steps it has and how it answers. */
static const HelperMethod methods[] = {
  { HOST, "GetInfo", NULL, -1, 0, NULL, .answer = HELPER_ANSWER_AT_ONCE,
    .work = helper_host_get_info },
  { HOST, "LoadModules", LCVM_ACTION_MANAGE_DEVICES, 1, HELPER_MODULES_PERSIST, NULL,
    .validate = helper_host_load_modules_validate, .answer = HELPER_ANSWER_THREAD,
    .work = helper_host_load_modules },
  { HOST, "SetDmaEntryLimit", LCVM_ACTION_MANAGE_DEVICES, 1, HELPER_DMA_LIMIT_PERSIST, NULL,
    .validate = helper_vfio_dma_limit_validate, .answer = HELPER_ANSWER_THREAD,
    .work = helper_vfio_dma_limit },
  { HOST, "BindVfio", LCVM_ACTION_MANAGE_DEVICES, 1, 0, "bind-vfio",
    .validate = helper_vfio_slots_validate, .locks = helper_vfio_slots_locks,
    .answer = HELPER_ANSWER_JOB, .job = helper_vfio_bind_job },
  { HOST, "UnbindVfio", LCVM_ACTION_MANAGE_DEVICES, 1, 0, "unbind-vfio",
    .validate = helper_vfio_slots_validate, .locks = helper_vfio_slots_locks,
    .answer = HELPER_ANSWER_JOB, .job = helper_vfio_unbind_job },
  { HOST, "QueryGpuMode", LCVM_ACTION_INSPECT, -1, 0, "query-gpu-mode",
    .validate = helper_gpumode_query_validate, .locks = helper_gpumode_locks,
    .answer = HELPER_ANSWER_THREAD, .work = helper_gpumode_query_call },
  { HOST, "SetGpuMode", LCVM_ACTION_CONFIGURE_GPU, 3, 0, "set-gpu-mode",
    .validate = helper_gpumode_set_validate, .check = helper_gpumode_preflight,
    .locks = helper_gpumode_locks, .answer = HELPER_ANSWER_JOB, .job = helper_gpumode_set_job },
  { HOST, "ResetGpu", LCVM_ACTION_CONFIGURE_GPU, 1, LCVM_RESET_GPU_BUS, "reset-gpu",
    .validate = helper_gpumode_reset_validate, .check = helper_gpumode_preflight,
    .locks = helper_gpumode_locks, .answer = HELPER_ANSWER_JOB, .job = helper_gpumode_reset_job },
  { HOST, "KeyProviderStatus", LCVM_ACTION_INSPECT, -1, 0, NULL, .answer = HELPER_ANSWER_THREAD,
    .work = helper_keyprovider_status_call },
  { HOST, "StartKeyProvider", LCVM_ACTION_MANAGE_KEY_PROVIDER, 0, 0, "start-key-provider",
    .locks = helper_keyprovider_locks, .answer = HELPER_ANSWER_JOB,
    .job = helper_keyprovider_start_job },
  { HOST, "BuildKeyProvider", LCVM_ACTION_MANAGE_KEY_PROVIDER, 0, 0, "build-key-provider",
    .locks = helper_keyprovider_locks, .answer = HELPER_ANSWER_JOB,
    .job = helper_keyprovider_build_job },
  { HOST, "StopKeyProvider", LCVM_ACTION_MANAGE_KEY_PROVIDER, 0, 0, "stop-key-provider",
    .locks = helper_keyprovider_locks, .answer = HELPER_ANSWER_JOB,
    .job = helper_keyprovider_stop_job },
  { HOST, "KeyProviderLogs", LCVM_ACTION_INSPECT, -1, 0, NULL,
    .validate = helper_keyprovider_logs_validate, .answer = HELPER_ANSWER_THREAD,
    .work = helper_keyprovider_logs_call },
  { MANAGER, "DryRun", LCVM_ACTION_INSPECT, -1, 0, NULL,
    .validate = helper_manager_dry_run_validate, .answer = HELPER_ANSWER_THREAD,
    .work = helper_manager_dry_run },
  { MANAGER, "StartVm", LCVM_ACTION_MANAGE_VMS, 1, 0, "start",
    .validate = helper_manager_start_validate, .locks = helper_manager_vm_locks,
    .begin = helper_manager_start_begin, .answer = HELPER_ANSWER_THREAD,
    .work = helper_manager_start, .finish = helper_manager_start_finish },
  { MANAGER, "StopVm", LCVM_ACTION_MANAGE_VMS, 2, LCVM_STOP_FORCE, "stop",
    .validate = helper_manager_stop_validate, .locks = helper_manager_vm_locks,
    .begin = helper_manager_stop_begin, .answer = HELPER_ANSWER_JOB,
    .job = helper_manager_stop_job },
  { MANAGER, "RemoveVm", LCVM_ACTION_MANAGE_VMS, 1, 0, "remove",
    .validate = helper_manager_remove_validate, .locks = helper_manager_vm_locks,
    .answer = HELPER_ANSWER_THREAD, .work = helper_manager_remove,
    .finish = helper_manager_remove_finish },
  { MANAGER, "ListVms", NULL, -1, 0, NULL, .answer = HELPER_ANSWER_AT_ONCE,
    .work = helper_manager_list },
  { NULL },
};

const HelperMethod *
helper_methods(void)
{
  return methods;
}
