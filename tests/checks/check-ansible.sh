#!/bin/sh
# SPDX-License-Identifier: MIT
# The Ansible collection lium.cvm (ansible/): `ansible-test sanity` in a temporary copy under
# ansible_collections/lium/cvm with the host's python, `ansible-galaxy collection build`, and
# `ansible-doc` of every module and of the role from the built collection.
#
# ansible-test runs some sanity tests in virtual environments it fills from PyPI; this machine
# (and CI) is offline, so those seven run here with Debian's own packages instead:
#   validate-modules  ansible-test's validate.py with the host python (python3-voluptuous),
#                     honouring tests/sanity/ignore-X.Y.txt
#   yamllint          ansible-test's yamllinter.py with the host python (yamllint), which also
#                     lints the YAML inside the modules' DOCUMENTATION/EXAMPLES/RETURN
#   pep8              pycodestyle with ansible-test's settings (160 columns, its ignore list)
#   ansible-doc       ansible-doc of every module and the role (below)
#   compile           (ansible-test runs it)
# and three are not run: pylint (Debian's pylint is not the version ansible-test pins and
# reports differently), import (needs ansible-test's import venv) and runtime-metadata (needs
# its venv; meta/runtime.yml is loaded by ansible-doc and the playbook runs instead).
# Usage: check-ansible.sh SOURCE_ROOT
set -u
src=$1/ansible
for tool in ansible-test ansible-galaxy ansible-doc git; do
  if ! command -v $tool >/dev/null; then
    echo "$tool missing (apt install ansible-core git)"
    exit 77
  fi
done
py=/usr/bin/python3
sanity=$($py -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_util/controller/sanity
pyver=$($py -c 'import sys; print("%d.%d" % sys.version_info[:2])')
for mod in voluptuous yamllint pycodestyle; do
  if ! $py -c "import $mod" 2>/dev/null; then
    echo "python3 module $mod missing (apt install python3-voluptuous yamllint python3-pycodestyle)"
    exit 77
  fi
done

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
coll=$tmp/ansible_collections/lium/cvm
mkdir -p "$tmp/ansible_collections/lium"
cp -r "$src" "$coll"
cd "$coll" || exit 1
git init -q . && git add -A || exit 1
status=0
fail() {
  echo "FAIL: $*"
  status=1
}

echo "== ansible-test sanity (Python $pyver)"
ansible-test sanity --python "$pyver" --color no \
  --skip-test validate-modules --skip-test yamllint --skip-test pep8 --skip-test ansible-doc \
  --skip-test pylint --skip-test import --skip-test runtime-metadata || fail "ansible-test sanity"

echo "== validate-modules"
ignores=tests/sanity/ignore-$(ansible --version | sed -n 's/.*core \([0-9]*\.[0-9]*\).*/\1/p').txt
ANSIBLE_COLLECTIONS_PATH=$tmp $py "$sanity/validate-modules/validate.py" --format json --arg-spec \
  --collection ansible_collections/lium/cvm --collection-version "$(sed -n 's/^version: //p' galaxy.yml)" \
  plugins/modules/*.py >"$tmp/validate.json" 2>"$tmp/validate.err"
[ -s "$tmp/validate.err" ] && cat "$tmp/validate.err" && fail "validate-modules crashed"
$py - "$tmp/validate.json" "$ignores" <<'PY' || fail "validate-modules"
import json, sys
report = json.load(open(sys.argv[1]))
ignored = set()
for line in open(sys.argv[2]):
    path, code = line.split("#")[0].split()
    ignored.add((path, code.split(":", 1)[1]))
bad = 0
for path, result in sorted(report.items()):
    for e in result["errors"] + result["traces"]:
        code = e.get("code", "trace") if isinstance(e, dict) else "trace"
        if (path, code) not in ignored:
            print("%s: %s: %s" % (path, code, e.get("msg", e) if isinstance(e, dict) else e))
            bad += 1
print("validate-modules: %d module(s), %d error(s)" % (len(report), bad))
sys.exit(1 if bad else 0)
PY

echo "== yamllint"
git ls-files '*.yml' 'plugins/modules/*.py' 'plugins/doc_fragments/*.py' |
  $py "$sanity/yamllint/yamllinter.py" >"$tmp/yamllint.json" || fail "yamllint crashed"
$py -c 'import json, sys
msgs = json.load(open(sys.argv[1]))["messages"]
for m in msgs: print("%(path)s:%(line)s:%(column)s: %(code)s %(message)s" % m)
sys.exit(1 if msgs else 0)' "$tmp/yamllint.json" || fail "yamllint"

echo "== pep8"
$py -m pycodestyle --max-line-length 160 --config /dev/null \
  --ignore "$(paste -sd, "$sanity/pep8/current-ignore.txt")" \
  $(find plugins -name '*.py') || fail "pep8"

echo "== ansible-galaxy collection build, ansible-doc"
ansible-galaxy collection build --output-path "$tmp/build" >/dev/null || fail "collection build"
ansible-galaxy collection install -p "$tmp/installed" "$tmp"/build/lium-cvm-*.tar.gz \
  >/dev/null 2>&1 || fail "collection install"
for m in lium_cvm_facts lium_cvm_gpu lium_cvm_image lium_cvm_vm; do
  out=$(ANSIBLE_COLLECTIONS_PATH=$tmp/installed ansible-doc "lium.cvm.$m" 2>&1) ||
    { printf '%s\n' "$out"; fail "ansible-doc lium.cvm.$m"; }
  printf '%s\n' "$out" | grep -q "EXAMPLES" || fail "ansible-doc lium.cvm.$m shows no EXAMPLES"
done
out=$(ANSIBLE_COLLECTIONS_PATH=$tmp/installed ansible-doc -t role lium.cvm.host 2>&1) ||
  { printf '%s\n' "$out"; fail "ansible-doc -t role lium.cvm.host"; }
ANSIBLE_COLLECTIONS_PATH=$tmp/installed ansible-playbook --syntax-check -i localhost, \
  lium.cvm.fresh_host >/dev/null || fail "syntax of the sample playbook lium.cvm.fresh_host"

[ $status -eq 0 ] && echo "ok: the lium.cvm collection passes"
exit $status
