#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""app-compose.json is byte-identical to what lium-cvm.sh + dstack.py write for the same
inputs. The expected bytes come from Python's own json.dump(obj, f, indent=4) at test time
(vmtest.reference_app_compose), never from a stored copy; the compose hash is their sha256.
"""
import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmtest  # noqa: E402

ALL_CONTROLS = "".join(chr(c) for c in range(1, 32) if c not in (10, 13))

# name → (compose bytes, {extra files}, new flags, reference kwargs)
CASES = {
    "ascii_compose_with_default_scripts": (
        b"services:\n  executor:\n    image: x@${EXECUTOR_RUNNER_IMAGE_DIGEST}\n", {}, [], {}),
    "non_ascii_text": (
        "name: h\u00e9llo \u00fcber \u4e2d\u6587 \u0416 \u20ac \u0085 \u2028 \u00a0\n".encode(), {}, [], {}),
    "emoji_outside_the_bmp": (
        "command: echo \U0001F680 \U0001F9EA \U00010348\n".encode(), {}, [], {}),
    "byte_order_mark_is_kept_as_text": ("\ufeffservices: {}\n".encode(), {}, [], {}),
    "quotes_and_backslashes": (
        b'command: ["sh", "-c", "echo \\"hi\\" \\\\ C:\\\\path \'single\'"]\n', {}, [], {}),
    "tabs_and_control_characters": (
        ("a:\tb\t\n" + ALL_CONTROLS + "\x7f\n").encode(), {}, [], {}),
    "crlf_line_ends": (b"services:\r\n  a:\r\n    image: x\r\n", {}, [], {}),
    "lone_carriage_returns": (b"a: 1\rb: 2\r\n\rc: 3", {}, [], {}),
    "empty_compose_file": (b"", {}, [], {}),
    "digest_braced_and_bare": (
        b"image: a@${EXECUTOR_RUNNER_IMAGE_DIGEST}\nalso: $EXECUTOR_RUNNER_IMAGE_DIGEST\n"
        b"not: $EXECUTOR_RUNNER_IMAGE_DIGESTX ${EXECUTOR_RUNNER_IMAGE_DIGEST:-d}\n", {}, [], {}),
    "bare_digest_reference_alone_is_not_stamped": (
        b"image: a@$EXECUTOR_RUNNER_IMAGE_DIGEST\n", {}, [], {}),
    "shell_and_yaml_syntax_stays_text": (
        b"x: $(id) `id` ${HOME} $$ {{ .Name }} &anchor *ref\n", {}, [], {}),
    "large_compose": (("line: " + "x" * 100 + "\n").encode() * 2000, {}, [], {}),
    "empty_scripts": (b"s: 1\n", {"app/init_script.sh": b"", "app/pre_launch_script.sh": b""},
                      [], {}),
    "scripts_with_crlf_and_unicode": (
        b"s: 1\n", {"app/init_script.sh": "echo \u00e9\r\necho \U0001F680\r\n".encode(),
                    "app/pre_launch_script.sh": b"#!/bin/sh\r\nexit 0"}, [], {}),
    "no_scripts": (b"s: 1\n", {}, ["--no-scripts"], {"init": None, "pre": None}),
    "explicit_script_files": (
        b"s: 1\n", {"my-init.sh": b"echo mine\n", "my-pre.sh": b"echo pre \\\"q\\\"\n"},
        ["--init-script", "my-init.sh", "--pre-launch-script", "my-pre.sh"],
        {"init": "my-init.sh", "pre": "my-pre.sh"}),
    "enable_logs": (b"s: 1\n", {}, ["--enable-logs"], {"logs": True}),
    "enable_sysinfo": (b"s: 1\n", {}, ["--enable-sysinfo"], {"sysinfo": True}),
    "enable_logs_and_sysinfo": (b"s: 1\n", {}, ["--enable-logs", "--enable-sysinfo"],
                                {"logs": True, "sysinfo": True}),
    "compose_chosen_by_env_local": (
        b"unused\n", {"app/docker-compose.local.yml": b"local: \xc3\xa9\n"}, ["--env", "local"],
        {"compose": "app/docker-compose.local.yml"}),
    "compose_chosen_by_env_staging": (
        b"unused\n", {"app/docker-compose.staging.yml": b"staging: 1\n"}, ["--env", "staging"],
        {"compose": "app/docker-compose.staging.yml"}),
    "compose_given_as_a_file": (
        b"unused\n", {"other/compose.yaml": b"other: \"\\\\\"\n"}, ["--compose", "other/compose.yaml"],
        {"compose": "other/compose.yaml"}),
}


class AppComposeGolden(vmtest.Host):
    def check(self, compose, files, flags, ref):
        self.write("app/docker-compose.yml", compose, "wb")
        for rel, data in files.items():
            if rel.startswith("-"):
                os.unlink(self.path(rel[1:]))
            else:
                self.write(rel, data, "wb")
        kw = {"init": self.path("app/init_script.sh"), "pre": self.path("app/pre_launch_script.sh"),
              "compose": "app/docker-compose.yml"}
        kw.update(ref)
        for key in ("init", "pre", "compose"):
            if kw[key] is not None:
                kw[key] = self.path(kw[key])
        compose_path = kw.pop("compose")
        expected = vmtest.reference_app_compose(compose_path, workdir=self.root, **kw)

        r = self.new("vm1", *flags)
        self.assert_ok(r)
        actual = self.vm_file("vm1", "app-compose.json")
        self.assertEqual(actual, expected)
        want_hash = hashlib.sha256(expected).hexdigest()
        self.assertEqual(self.manifest()["compose_hash"], want_hash)
        self.assertIn("Compose hash:        " + want_hash, r.stdout)
        self.assert_ok(self.cli("hash", "vm1", "--expect", want_hash))


def make_test(case):
    def test(self):
        self.check(*case)
    return test


for _name, _case in CASES.items():
    setattr(AppComposeGolden, "test_" + _name, make_test(_case))


class ReferenceSanity(unittest.TestCase):
    """The reference itself reproduces the published shape (guards the comparison)."""

    def test_reference_is_python_json_dump_indent_4(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "c.yml")
            with open(p, "wb") as f:
                f.write("\u00e9\U0001F680\r\n".encode())
            data = vmtest.reference_app_compose(p, workdir=d)
        self.assertTrue(data.startswith(b'{\n    "manifest_version": 1,\n    "name": "example",'))
        self.assertIn(b'"docker_compose_file": "\\u00e9\\ud83d\\ude80\\n",', data)
        self.assertTrue(data.endswith(b'"secure_time": false\n}'))


if __name__ == "__main__":
    unittest.main(verbosity=2)
