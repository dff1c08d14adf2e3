#!/usr/bin/python
# SPDX-License-Identifier: MIT
# -*- coding: utf-8 -*-
# Copyright: lium-cvm developers
# MIT License (see the lium-cvm repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: lium_cvm_vm
short_description: A lium-cvm VM defined from .env values and a compose file, in a given state
version_added: 0.1.0
description:
  - Defines a confidential VM on a lium-cvm host from C(.env) values and a docker compose file
    (and optionally the init and pre-launch scripts) with C(lium-cvm new), and makes it
    C(running) (C(lium-cvm run)), C(stopped) (C(lium-cvm stop)), just C(present), or
    C(absent) (C(lium-cvm rm)).
  - What C(new) would write is computed first with C(lium-cvm new --dry-run), which writes
    nothing, and compared with the definition in place (C(lium-cvm list)) on the measured
    inputs only - image, vCPUs, memory, disk, devices, ports, hugepages, NUMA pinning, the
    compose hash and the OS image hash. Only a difference there redefines the VM; the new
    compose hash is then in the result.
  - A redefinition stops the VM when it runs and removes it with C(lium-cvm rm), which also
    removes its instance (data disk, shared files, logs), before C(lium-cvm new) writes the
    new definition.
  - C(.env) values reach the guest through C(.user-config), which is not measured; a change
    there alone does not redefine a VM (set I(force) for that).
extends_documentation_fragment:
  - lium.cvm.lium_cvm
attributes:
  check_mode:
    support: full
    description: Computes the definition with C(new --dry-run) and reports what would change;
      defines, starts, stops and removes nothing.
  diff_mode:
    support: full
    description: The measured definition before and after (JSON).
options:
  name:
    description:
      - The VM name (C(^[a-z0-9][a-z0-9_-]{0,62}$)).
    type: str
    required: true
  state:
    description:
      - C(running) - defined (when I(env) and I(compose) are given) and running.
      - C(stopped) - defined likewise, and not running.
      - C(present) - defined; its running state is left alone (a VM stopped for a
        redefinition is started again).
      - C(absent) - stopped and removed (definition and instance).
    type: str
    choices: [running, stopped, present, absent]
    default: running
  env:
    description:
      - The C(.env) values (KEY -> value), as the operator's C(.env) file has them
        (C(SSH_PORT), C(CVM_VCPUS), C(CVM_MEMORY), C(CVM_GPUS), C(RENTING_PORT_RANGE), ...).
      - Written into a private temporary C(.env) file on the managed host, each value quoted
        (a value may not hold both quote characters, nor a newline).
      - Mutually exclusive with I(env_file).
    type: dict
  env_file:
    description:
      - A C(.env) file on the managed host instead of I(env).
    type: path
  compose:
    description:
      - The docker compose file's text. Mutually exclusive with I(compose_file).
    type: str
  compose_file:
    description:
      - A docker compose file on the managed host instead of I(compose).
    type: path
  init_script:
    description:
      - The text of the init script measured into the compose (C(app/init_script.sh)). Give
        both scripts, as C(lium-cvm.sh) always measures both, or neither, and then no script is
        measured (C(lium-cvm new --no-scripts)), a compose hash Lium never produces.
    type: str
  pre_launch_script:
    description:
      - The text of the pre-launch script measured into the compose
        (C(app/pre_launch_script.sh)); given together with I(init_script), or neither.
    type: str
  image:
    description:
      - The OS image (default the configuration's C([images] default_image)). It must be in the
        store (see M(lium.cvm.lium_cvm_image)).
    type: str
  enable_logs:
    description: C(public_logs) true in the compose (changes the compose hash).
    type: bool
    default: false
  enable_sysinfo:
    description: C(public_sysinfo) and C(public_tcbinfo) true (changes the compose hash).
    type: bool
    default: false
  force:
    description:
      - Redefine even when the measured inputs are the same (for example to apply changed
        C(.env) values that only reach C(.user-config)).
    type: bool
    default: false
  stop_timeout:
    description:
      - Seconds the guest gets to power off after the ACPI power button before QEMU is
        terminated (C(lium-cvm stop --timeout)).
    type: int
    default: 30
author:
  - lium-cvm developers (@lium-network)
'''

EXAMPLES = r'''
- name: The executor CVM, running
  lium.cvm.lium_cvm_vm:
    name: executor
    env:
      SSH_PORT: 2200
      INTERNAL_PORT: 8001
      EXTERNAL_PORT: 8001
      CVM_VCPUS: 16
      CVM_MEMORY: 64G
      CVM_GPUS: all
    compose: "{{ lookup('ansible.builtin.file', 'app/docker-compose.yml') }}"
    init_script: "{{ lookup('ansible.builtin.file', 'app/init_script.sh') }}"
    pre_launch_script: "{{ lookup('ansible.builtin.file', 'app/pre_launch_script.sh') }}"
    state: running
  register: executor

- name: The compose hash to whitelist
  ansible.builtin.debug:
    var: executor.compose_hash
'''

RETURN = r'''
compose_hash:
  description: The compose hash of the definition (after a redefinition, the new one).
  returned: when the VM is defined
  type: str
definition:
  description: The measured definition (the manifest, C(lium-cvm show --json)).
  returned: when the VM is defined
  type: dict
redefined:
  description: Whether the VM was (or in check mode would be) defined anew.
  returned: always
  type: bool
vm_state:
  description: The VM's state afterwards (defined, running, stopped, ... or absent).
  returned: always
  type: str
commands:
  description: The lium-cvm commands that ran.
  returned: always
  type: list
  elements: str
'''

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six import iteritems, string_types
from ansible_collections.lium.cvm.plugins.module_utils.lium_cvm import (
    COMMON_ARGS, LiumCvm, LiumCvmError)

# The manifest fields that are measured or decide the QEMU command line (created_at_ms is not).
MEASURED = ('manifest_version', 'name', 'image', 'vcpus', 'memory', 'disk', 'gpu_attach', 'gpus',
            'nvswitches', 'ports', 'hugepages', 'pin_numa', 'compose_hash', 'os_image_hash')
LIVE = ('starting', 'running', 'stopping')


def measured(definition):
    return dict((k, definition.get(k)) for k in MEASURED) if definition else None


def env_line(key, value):
    if isinstance(value, bool):
        value = 'true' if value else 'false'
    value = value if isinstance(value, string_types) else str(value)
    if '\n' in value or '\r' in value:
        raise LiumCvmError('env %s: a .env value is one line; this one has a newline' % key)
    if "'" not in value:
        return "%s='%s'\n" % (key, value)
    if '"' not in value:
        return '%s="%s"\n' % (key, value)
    raise LiumCvmError('env %s: a .env value cannot hold both quote characters' % key)


class Inputs(object):
    """The definition's inputs as files in a private temporary directory (the module's own
    temporary directory on the managed host, removed when the module ends)."""

    def __init__(self, module):
        p = module.params
        self.dir = tempfile.mkdtemp(prefix='lium-cvm-vm-', dir=module.tmpdir)
        self.args = []
        if p['env'] is not None:
            env = os.path.join(self.dir, '.env')
            with open(env, 'w') as f:
                for key, value in sorted(iteritems(p['env'])):
                    f.write(env_line(key, value))
            self.args += ['--env-file', env]
        else:
            self.args += ['--env-file', os.path.abspath(p['env_file'])]
        compose = (os.path.abspath(p['compose_file']) if p['compose_file']
                   else self.write('docker-compose.yml', p['compose']))
        self.args += ['--compose', compose]
        if p['init_script'] is None and p['pre_launch_script'] is None:
            self.args.append('--no-scripts')
        for option, text in (('--init-script', p['init_script']),
                             ('--pre-launch-script', p['pre_launch_script'])):
            if text is not None:
                self.args += [option, self.write(option.strip('-') + '.sh', text)]
        if p['image']:
            self.args += ['--image', p['image']]
        if p['enable_logs']:
            self.args.append('--enable-logs')
        if p['enable_sysinfo']:
            self.args.append('--enable-sysinfo')

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Vm(object):
    def __init__(self, module, cvm):
        self.module = module
        self.cvm = cvm
        self.name = module.params['name']
        self.changed = False
        self.redefined = False
        self.diff = dict(before='', after='')

    def current(self):
        for vm in self.cvm.json(['list']):
            if vm.get('name') == self.name:
                return vm
        return None

    def act(self, args, cwd=None):
        self.changed = True
        if not self.module.check_mode:
            self.cvm.run(args, json_output=False, cwd=cwd)

    def stop(self, vm):
        if vm and vm.get('state') in LIVE:
            self.act(['stop', self.name, '--timeout', self.module.params['stop_timeout']])
            vm['state'] = 'stopped'

    def remove(self, vm):
        self.stop(vm)
        self.act(['rm', self.name, '--yes'])

    def define(self, vm, inputs):
        """Returns the definition afterwards (the preview in check mode)."""
        # In the inputs' directory: `new` measures app/*.sh of its working directory by default.
        preview = self.cvm.run(['new', self.name, '--dry-run'] + inputs.args, cwd=inputs.dir)[1]
        have, want = measured(vm), measured(preview)
        self.diff = dict(before=json.dumps(have, indent=2, sort_keys=True) + '\n' if have else '',
                         after=json.dumps(want, indent=2, sort_keys=True) + '\n')
        if have == want and not self.module.params['force']:
            return vm
        self.redefined = True
        if vm:
            self.remove(vm)
        self.act(['new', self.name] + inputs.args, cwd=inputs.dir)
        if self.module.check_mode:
            return dict(preview, state='defined')
        return self.current()

    def converge(self):
        p = self.module.params
        vm = self.current()
        was_live = bool(vm) and vm.get('state') in LIVE
        if p['state'] == 'absent':
            if vm:
                self.diff = dict(before=json.dumps(measured(vm), indent=2, sort_keys=True) + '\n',
                                 after='')
                self.remove(vm)
            return None
        if p['env'] is not None or p['env_file']:
            inputs = Inputs(self.module)
            try:
                vm = self.define(vm, inputs)
            finally:
                inputs.close()
        elif vm is None:
            raise LiumCvmError('VM %s is not defined: give env (or env_file) and compose (or '
                               'compose_file) to define it' % self.name)
        # present leaves the VM as it was: one that ran before a redefinition runs again
        restart = p['state'] == 'present' and self.redefined and was_live
        if (p['state'] == 'running' or restart) and vm.get('state') not in LIVE:
            self.act(['run', self.name])
            vm['state'] = 'running'
        elif p['state'] == 'stopped':
            self.stop(vm)
        if not self.module.check_mode and self.changed:
            vm = self.current()
        return vm


def main():
    spec = dict(COMMON_ARGS)
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='running', choices=['running', 'stopped', 'present',
                                                           'absent']),
        env=dict(type='dict'),
        env_file=dict(type='path'),
        compose=dict(type='str'),
        compose_file=dict(type='path'),
        init_script=dict(type='str'),
        pre_launch_script=dict(type='str'),
        image=dict(type='str'),
        enable_logs=dict(type='bool', default=False),
        enable_sysinfo=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        stop_timeout=dict(type='int', default=30),
    )
    module = AnsibleModule(
        argument_spec=spec, supports_check_mode=True,
        mutually_exclusive=[('env', 'env_file'), ('compose', 'compose_file')],
    )
    p = module.params
    has_env = p['env'] is not None or p['env_file'] is not None
    has_compose = p['compose'] is not None or p['compose_file'] is not None
    if has_env != has_compose:
        module.fail_json(msg='a definition needs both the .env values (env or env_file) and the '
                             'compose file (compose or compose_file)')
    if (p['init_script'] is None) != (p['pre_launch_script'] is None):
        module.fail_json(msg='give both init_script and pre_launch_script (lium-cvm.sh always '
                             'measures both), or neither to measure no scripts')
    if p['stop_timeout'] < 0:
        module.fail_json(msg='stop_timeout must be 0 or more seconds')
    cvm = LiumCvm(module)
    vm = Vm(module, cvm)
    try:
        final = vm.converge()
    except LiumCvmError as e:
        cvm.fail(e, changed=vm.changed, redefined=vm.redefined)
    result = dict(changed=vm.changed, redefined=vm.redefined, commands=cvm.commands,
                  vm_state=final.get('state') if final else 'absent')
    if final:
        result.update(compose_hash=final.get('compose_hash'), definition=measured(final))
    if module._diff:
        result['diff'] = vm.diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
