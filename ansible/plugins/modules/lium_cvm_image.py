#!/usr/bin/python
# SPDX-License-Identifier: MIT
# -*- coding: utf-8 -*-
# Copyright: lium-cvm developers
# MIT License (see the lium-cvm repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: lium_cvm_image
short_description: A dstack OS image present and verified in the lium-cvm image store
version_added: 0.1.0
description:
  - Makes an OS image present and verified in the image store of a lium-cvm host with
    C(lium-cvm download), which resumes an interrupted download, checks the archive's sha256,
    extracts it safely and verifies C(sha256sum.txt) and C(digest.txt). An image already
    present and intact is neither downloaded nor changed.
extends_documentation_fragment:
  - lium.cvm.lium_cvm
attributes:
  check_mode:
    support: full
    description: Reads the store (C(lium-cvm images)); an image that is absent, or not
      recorded as verified, is reported as a change. Nothing is downloaded or verified.
options:
  name:
    description:
      - The image name (the directory in the store), such as C(dstack-nvidia-0.5.11).
    type: str
    required: true
  url:
    description:
      - Where to download the archive from. Default is the dstack release URL of the version
        at the end of I(name).
    type: str
  sha256:
    description:
      - The sha256 the downloaded archive must have (64 hex digits). It is checked when the
        image is downloaded; an image already present is checked against its own
        C(digest.txt) instead (the archive is gone).
    type: str
author:
  - lium-cvm developers (@lium-network)
'''

EXAMPLES = r'''
- name: The dstack NVIDIA image of the fleet
  lium.cvm.lium_cvm_image:
    name: dstack-nvidia-0.5.11
    sha256: "{{ dstack_image_sha256 }}"
'''

RETURN = r'''
image:
  description: The image as C(lium-cvm images --json) shows it (name, version, digest, state,
    dir, size); null in check mode when it is absent.
  returned: always
  type: dict
downloaded:
  description: Whether the image was (or in check mode would be) downloaded.
  returned: always
  type: bool
commands:
  description: The lium-cvm commands that ran.
  returned: always
  type: list
  elements: str
'''

import json
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lium.cvm.plugins.module_utils.lium_cvm import (
    COMMON_ARGS, LiumCvm, LiumCvmError)


def present(cvm, name):
    for image in cvm.json(['images']):
        if image.get('name') == name:
            return image
    return None


def download(cvm, params):
    """`lium-cvm download` prints JSON lines; the last one is the result."""
    args = ['download', params['name']]
    if params['url']:
        args += ['--url', params['url']]
    if params['sha256']:
        args += ['--sha256', params['sha256']]
    rc, out, err = cvm.module.run_command(cvm.argv(args))
    cvm.commands.append(' '.join(cvm.argv(args)[1:]))
    lines = [ln for ln in out.splitlines() if ln.strip().startswith('{')]
    last = json.loads(lines[-1]) if lines else {}
    if rc != 0 or last.get('event') != 'done':
        raise LiumCvmError('lium-cvm download %s: %s' % (
            params['name'], last.get('error') or last.get('message') or
            (err.strip().splitlines() or ['exit status %d' % rc])[-1]), rc=rc)
    return last


def main():
    spec = dict(COMMON_ARGS)
    spec.update(
        name=dict(type='str', required=True),
        url=dict(type='str'),
        sha256=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if p['sha256'] is not None and not re.match(r'^[0-9a-fA-F]{64}$', p['sha256']):
        module.fail_json(msg='sha256 must be 64 hex digits (the sha256 of the image archive)')
    cvm = LiumCvm(module)
    try:
        image = present(cvm, p['name'])
        if module.check_mode:
            change = image is None or image.get('state') != 'verified'
            module.exit_json(changed=change, downloaded=change, image=image,
                             commands=cvm.commands)
        result = download(cvm, p)
    except LiumCvmError as e:
        cvm.fail(e)
    downloaded = bool(result.get('downloaded'))
    image = dict((k, v) for k, v in result.items() if k not in ('event', 'downloaded'))
    module.exit_json(changed=downloaded, downloaded=downloaded, image=image,
                     commands=cvm.commands)


if __name__ == '__main__':
    main()
