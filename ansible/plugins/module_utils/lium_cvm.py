# SPDX-License-Identifier: MIT
# -*- coding: utf-8 -*-
# Copyright: lium-cvm developers
# MIT License (see the lium-cvm repository)
"""The one way the lium.cvm modules talk to a host: `lium-cvm --json --no-ask-password ...`
run on the managed host, its JSON answer parsed, its error reported as lium-cvm words it.
The modules decide what to change; lium-cvm (and its helper) does every change."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

# The options every module has (documented by the doc fragment in each module).
COMMON_ARGS = dict(
    binary=dict(type='str', default='lium-cvm'),
    config=dict(type='path'),
)


class LiumCvmError(Exception):
    def __init__(self, message, rc=None, result=None):
        super(LiumCvmError, self).__init__(message)
        self.rc = rc
        self.result = result


class LiumCvm(object):
    def __init__(self, module):
        self.module = module
        self.binary = module.get_bin_path(module.params['binary'], required=True)
        self.commands = []

    def argv(self, args, json_output=True):
        argv = [self.binary, '--no-ask-password']
        if json_output:
            argv.append('--json')
        if self.module.params.get('config'):
            argv += ['--config', self.module.params['config']]
        return argv + [str(a) for a in args]

    def run(self, args, ok=(0,), json_output=True, cwd=None):
        """Runs lium-cvm with args; returns (rc, parsed JSON or None, stderr). A status outside
        ok raises LiumCvmError with lium-cvm's own message."""
        argv = self.argv(args, json_output)
        self.commands.append(' '.join(argv[1:]))
        rc, out, err = self.module.run_command(argv, cwd=cwd)
        doc = None
        if json_output and out.strip():
            try:
                doc = json.loads(out)
            except ValueError:
                doc = None
        if rc not in ok:
            message = doc.get('error') if isinstance(doc, dict) else None
            if not message:
                lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith('{')]
                message = lines[-1] if lines else 'exit status %d' % rc
            raise LiumCvmError('lium-cvm %s: %s' % (' '.join(str(a) for a in args), message),
                               rc=rc, result=doc)
        return rc, doc, err

    def json(self, args, ok=(0,)):
        return self.run(args, ok=ok)[1]

    def fail(self, error, **result):
        self.module.fail_json(msg=str(error), rc=error.rc, commands=self.commands, **result)
