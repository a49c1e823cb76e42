#!/usr/bin/env bash
# ansible-test sanity for the collection, without Docker: copy the collection to
# build/ansible_collections/mailops/powermta (ansible-test needs that path) and run the
# sanity tests in per-test virtual environments (--venv; requirements come from PyPI).
#   tests/testbed/ansible-test-sanity.sh [ansible-test sanity options, e.g. --test pep8]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
export PATH=$BIN:$PATH
DEST=$ROOT/build/ansible_collections/mailops/powermta

mkdir -p "$DEST"
# What a collection ships plus its tests; not the developer's environment.
rsync -a --delete \
  --exclude=/.git --filter='P /.git' --exclude=/tests/output --filter='P /tests/output' --exclude=/.venv --exclude=/.ansible --exclude=/.cache --exclude=/build \
  --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.hypothesis \
  --exclude='*.tar.gz' --exclude=/lab-report \
  "$ROOT/" "$DEST/"

# ansible-test --venv bootstraps pip with a script from a host unreachable here; put our
# stand-in (ensurepip + PyPI) where ansible-test looks for a saved copy.
PIP_VERSION=$("$BIN/python" -c '
import pathlib, re, ansible_test
src = pathlib.Path(ansible_test.__file__).parent.joinpath("_internal/python_requirements.py").read_text()
print(re.search(r"pip=.([0-9.]+).", src).group(1))')
mkdir -p ~/.ansible/test/cache
install -m 0644 tests/testbed/get_pip_standin.py ~/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py

cd "$DEST"
# ansible-test lists the files to check with git; without a repository here it would find
# the checkout's own (where build/ is ignored) and check nothing.
# A fresh index each run: only the copied files, never ansible-test's own tests/output/.
[ -d .git ] || git init -q
echo "/tests/output/" > .git/info/exclude
rm -f .git/index
git add -A
exec "$BIN/ansible-test" sanity --venv --python 3.11 --color no "$@"
