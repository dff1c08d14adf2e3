# SPDX-License-Identifier: MIT
# -*- coding: utf-8 -*-
# Copyright: lium-cvm developers
# MIT License (see the lium-cvm repository)
"""The options every lium.cvm module shares."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  binary:
    description:
      - The C(lium-cvm) command on the managed host (a name looked up in C(PATH), or a path).
    type: str
    default: lium-cvm
  config:
    description:
      - The C(lium-cvm.conf) the frontend reads (C(lium-cvm --config)). It changes only what
        the frontend itself reads and writes; the helper always uses its own configuration.
      - Without it, C(LIUM_CVM_CONFIG) or C(/etc/lium-cvm/lium-cvm.conf).
    type: path
notes:
  - Runs C(lium-cvm --json --no-ask-password) on the managed host as the connecting user, who
    must be in group C(lium-cvm) (or be root) for the privileged steps; the module itself does
    nothing the helper does.
  - Use C(module_defaults) with the action group C(group/lium.cvm.lium_cvm) to set I(binary)
    and I(config) once for every module of a play.
requirements:
  - lium-cvm on the managed host
'''
