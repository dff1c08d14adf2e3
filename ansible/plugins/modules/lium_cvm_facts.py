#!/usr/bin/python
# SPDX-License-Identifier: MIT
# -*- coding: utf-8 -*-
# Copyright: lium-cvm developers
# MIT License (see the lium-cvm repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: lium_cvm_facts
short_description: Readiness, GPUs, OS images, VMs and versions of a lium-cvm host
version_added: 0.1.0
description:
  - Gathers what C(lium-cvm) reports about the managed host into the fact C(lium_cvm) -
    the readiness report of C(lium-cvm check) (every check id and its status), the NVIDIA
    GPUs and NVSwitches of C(lium-cvm lsgpu) with the VM holding each, the OS images of
    C(lium-cvm images), the VM definitions of C(lium-cvm list) with their live state, and
    the versions of the frontend and the helper.
  - Reads only; never queries a GPU's mode afresh (that wakes the device), so modes are the
    ones the helper last saw.
extends_documentation_fragment:
  - lium.cvm.lium_cvm
attributes:
  check_mode:
    support: full
    description: Reads only.
options: {}
author:
  - lium-cvm developers (@lium-network)
'''

EXAMPLES = r'''
- name: Gather lium-cvm facts
  lium.cvm.lium_cvm_facts:

- name: Stop when the host is not ready
  ansible.builtin.assert:
    that: ansible_facts.lium_cvm.ready
    fail_msg: "failing checks: {{ ansible_facts.lium_cvm.failed_checks | join(', ') }}"
'''

RETURN = r'''
ansible_facts:
  description: The facts, under the key C(lium_cvm).
  returned: always
  type: dict
  contains:
    lium_cvm:
      description: What lium-cvm reports.
      type: dict
      contains:
        ready:
          description: True when no check failed (C(lium-cvm check) exits 0).
          type: bool
        checks:
          description: Every check id of C(lium-cvm check) and its status (ok, warn, fail,
            unknown, skip).
          type: dict
          sample: {"iommu.enabled": "ok", "cpu.tdx_host_platform": "fail"}
        failed_checks:
          description: The ids of the failing checks.
          type: list
          elements: str
        check_report:
          description: The full report of C(lium-cvm check --json) (observed, expected, remedy).
          type: dict
        gpus:
          description: C(lium-cvm lsgpu --json) devices, each with C(vm), the live VM whose
            QEMU has it (null when none).
          type: list
          elements: dict
        images:
          description: C(lium-cvm images --json).
          type: list
          elements: dict
        vms:
          description: C(lium-cvm list --json) (definitions with their live C(state)).
          type: list
          elements: dict
        versions:
          description: Versions of the frontend and the helper (null when it does not answer).
          type: dict
          sample: {"frontend": "0.1.0", "helper": "0.1.0"}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lium.cvm.plugins.module_utils.lium_cvm import (
    COMMON_ARGS, LiumCvm, LiumCvmError)

LIVE_STATES = ('starting', 'running', 'stopping')


def gather(cvm):
    version = cvm.json(['version'], ok=(0, 1))
    helper = version.get('helper') or {}
    report = cvm.json(['check'], ok=(0, 1))
    lsgpu = cvm.json(['lsgpu'])
    images = cvm.json(['images'])
    vms = cvm.json(['list'])
    holders = {}
    for vm in vms:
        if vm.get('state') in LIVE_STATES:
            status = cvm.json(['status', vm['name']])
            for slot in status.get('Gpus') or []:
                holders[slot] = vm['name']
    gpus = lsgpu.get('devices', [])
    for gpu in gpus:
        gpu['vm'] = holders.get(gpu['slot'])
    checks = dict((c['id'], c['status']) for c in report.get('checks', []))
    return dict(
        ready=report.get('ready', not any(s == 'fail' for s in checks.values())),
        checks=checks,
        failed_checks=[i for i, s in checks.items() if s == 'fail'],
        check_report=report,
        gpus=gpus,
        images=images,
        vms=vms,
        versions=dict(frontend=version.get('frontend_version'), helper=helper.get('version')),
    )


def main():
    module = AnsibleModule(argument_spec=dict(COMMON_ARGS), supports_check_mode=True)
    cvm = LiumCvm(module)
    try:
        facts = gather(cvm)
    except LiumCvmError as e:
        cvm.fail(e)
    module.exit_json(changed=False, ansible_facts=dict(lium_cvm=facts))


if __name__ == '__main__':
    main()
