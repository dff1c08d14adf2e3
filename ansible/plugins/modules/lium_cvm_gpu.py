#!/usr/bin/python
# SPDX-License-Identifier: MIT
# -*- coding: utf-8 -*-
# Copyright: lium-cvm developers
# MIT License (see the lium-cvm repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: lium_cvm_gpu
short_description: NVIDIA GPUs and NVSwitches on vfio-pci in the wanted CC/PPCIe mode
version_added: 0.1.0
description:
  - Makes the chosen devices of a lium-cvm host bound to C(vfio-pci)
    (C(lium-cvm gpu bind)) and in the wanted Confidential Computing and Protected PCIe modes
    (C(lium-cvm gpu cc), the field procedure through gpu-admin-tools, NVSwitches first, each
    device off vfio-pci, switched with a reset, verified and bound back).
  - The current modes are asked afresh (C(lium-cvm lsgpu --query)) for every chosen device that
    no process holds open; a device in use (by a VM) keeps the mode the helper last saw and is
    refused if it must change.
  - Idempotent; C(changed) only when a device was bound or switched.
extends_documentation_fragment:
  - lium.cvm.lium_cvm
attributes:
  check_mode:
    support: full
    description: Reports what would be bound and switched; binds and switches nothing (the
      fresh mode query still runs, it changes no mode).
options:
  slots:
    description:
      - PCI slots (C(BB:DD.F) or C(DDDD:BB:DD.F)) of GPUs and NVSwitches, or C([all]).
      - With C(all), every NVIDIA GPU and NVSwitch is bound and every CC-capable one gets the
        modes.
    type: list
    elements: str
    default: [all]
  driver:
    description:
      - The driver the devices must be bound to. Only C(vfio-pci) (what a CVM needs); omit it
        to leave drivers as they are.
    type: str
    choices: [vfio-pci]
  cc:
    description:
      - The CC mode of the GPUs (NVSwitches have none).
    type: str
    choices: ['on', 'off', devtools]
  ppcie:
    description:
      - The Protected PCIe mode of GPUs and NVSwitches. With I(cc=on) or I(cc=devtools) and
        no I(ppcie), PPCIe must be off (the board policy of C(lium-cvm gpu cc)); PPCIe on needs
        I(cc=off).
    type: str
    choices: ['on', 'off']
author:
  - lium-cvm developers (@lium-network)
'''

EXAMPLES = r'''
- name: Every GPU and NVSwitch on vfio-pci, GPUs in CC mode, PPCIe off
  lium.cvm.lium_cvm_gpu:
    slots: [all]
    driver: vfio-pci
    cc: 'on'

- name: A board in Protected PCIe mode
  lium.cvm.lium_cvm_gpu:
    driver: vfio-pci
    cc: 'off'
    ppcie: 'on'
'''

RETURN = r'''
bound:
  description: Slots that were (or in check mode would be) bound to vfio-pci.
  returned: always
  type: list
  elements: str
switched:
  description: Slots whose modes were (or would be) switched, with the modes they get.
  returned: always
  type: list
  elements: dict
  sample: [{"slot": "0000:19:00.0", "cc": "on", "ppcie": "off"}]
devices:
  description: The chosen devices afterwards (C(lium-cvm lsgpu --json)).
  returned: always
  type: list
  elements: dict
commands:
  description: The lium-cvm commands that ran.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lium.cvm.plugins.module_utils.lium_cvm import (
    COMMON_ARGS, LiumCvm, LiumCvmError)

VFIO = 'vfio-pci'


def normalize(slot):
    slot = slot.strip().lower()
    return slot if slot.count(':') == 2 else '0000:' + slot


def chosen(devices, slots):
    """The devices the slots name, in lsgpu's order; unknown slots are an error."""
    if slots == ['all']:
        return list(devices)
    by_slot = dict((d['slot'], d) for d in devices)
    wanted = [normalize(s) for s in slots]
    unknown = [s for s in wanted if s not in by_slot]
    if unknown:
        raise LiumCvmError('%s: not an NVIDIA GPU or NVSwitch on this host (lium-cvm lsgpu lists '
                           'them)' % ', '.join(unknown))
    return [d for d in devices if d['slot'] in wanted]


def wanted_modes(device, cc, ppcie):
    """The modes this device must have: {knob: value} (empty when none apply)."""
    if not device.get('arch'):
        return {}
    want = {}
    if device['kind'] == 'gpu' and cc:
        want['cc'] = cc
    if ppcie:
        want['ppcie'] = ppcie
    elif cc in ('on', 'devtools') and (device['kind'] == 'nvswitch' or device['arch'] == 'hopper'):
        want['ppcie'] = 'off'
    return want


def mode_gap(device, want):
    """The knobs whose current value differs from want (unknown counts as different)."""
    mode = device.get('mode') or {}
    if mode.get('broken'):
        return dict(want)
    return dict((k, v) for k, v in want.items() if mode.get(k) != v)


def plan(devices, params):
    to_bind = []
    to_switch = []
    for d in devices:
        if params['driver'] == VFIO and d.get('driver') != VFIO:
            to_bind.append(d['slot'])
        want = wanted_modes(d, params['cc'], params['ppcie'])
        if want and mode_gap(d, want):
            if d.get('held_by'):
                raise LiumCvmError('%s is in use (held open by %s) and not in the wanted mode %s: '
                                   'stop the VM using it first' % (
                                       d['slot'], ', '.join(h.get('command') or str(h.get('pid'))
                                                            for h in d['held_by']), want))
            to_switch.append(d)
    # NVSwitches first: a board goes into (or out of) PPCIe mode switches first.
    to_switch.sort(key=lambda d: (d['kind'] != 'nvswitch', d['slot']))
    return to_bind, to_switch


def current(cvm, slots, modes_needed):
    devices = chosen(cvm.json(['lsgpu'])['devices'], slots)
    if modes_needed:
        fresh = [d['slot'] for d in devices if d.get('arch') and not d.get('held_by')]
        if fresh:
            # The helper refuses to query a device a VM holds, which an operator's lsgpu may not
            # see (QEMU runs as the VM's uid): that device keeps the mode last seen (exit 1).
            cvm.run(['lsgpu', '--query'] + fresh, ok=(0, 1))
            devices = chosen(cvm.json(['lsgpu'])['devices'], slots)
    return devices


def apply(cvm, params, to_bind, to_switch, all_slots):
    if to_bind:
        cvm.run(['gpu', 'bind'] + (['all'] if all_slots else to_bind), json_output=False)
    for d in to_switch:
        args = ['gpu', 'cc', d['slot'], '--mode', params['cc']]
        if params['ppcie']:
            args += ['--ppcie', params['ppcie']]
        cvm.json(args)


def main():
    spec = dict(COMMON_ARGS)
    spec.update(
        slots=dict(type='list', elements='str', default=['all']),
        driver=dict(type='str', choices=[VFIO]),
        cc=dict(type='str', choices=['on', 'off', 'devtools']),
        ppcie=dict(type='str', choices=['on', 'off']),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_by=dict(ppcie=['cc']))
    p = module.params
    cvm = LiumCvm(module)
    if p['ppcie'] == 'on' and p['cc'] != 'off':
        module.fail_json(msg='CC and Protected PCIe exclude each other: use cc=off with ppcie=on '
                             'for a board in PPCIe mode')
    if not p['slots'] or ('all' in p['slots'] and p['slots'] != ['all']):
        module.fail_json(msg="slots: give PCI slots, or the single word 'all'")
    try:
        devices = current(cvm, p['slots'], bool(p['cc']))
        to_bind, to_switch = plan(devices, p)
        switched = [dict(slot=d['slot'], **wanted_modes(d, p['cc'], p['ppcie']))
                    for d in to_switch]
        if not module.check_mode:
            apply(cvm, p, to_bind, to_switch, p['slots'] == ['all'])
            if to_bind or to_switch:
                devices = chosen(cvm.json(['lsgpu'])['devices'], p['slots'])
    except LiumCvmError as e:
        cvm.fail(e)
    module.exit_json(changed=bool(to_bind or to_switch), bound=to_bind, switched=switched,
                     devices=devices, commands=cvm.commands)


if __name__ == '__main__':
    main()
