#!/usr/bin/env bash
# Run the bench's lifecycle test, then every Molecule scenario (molecule/*/molecule.yml;
# directories starting with "_" are shared helpers, not scenarios). Fails if any fails;
# prints a summary with each scenario's time.
#   tests/testbed/run-molecule.sh [SCENARIO...]   (default: all)
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
export PATH=$BIN:$PATH
export ANSIBLE_COLLECTIONS_PATH=$ROOT/.ansible/collections
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}
export PY_COLORS=${PY_COLORS:-0}

if [ $# -gt 0 ]; then
  scenarios=("$@")
else
  scenarios=()
  for f in molecule/*/molecule.yml; do
    d=$(basename "$(dirname "$f")")
    case $d in _*) continue ;; esac
    scenarios+=("$d")
  done
fi

declare -a summary
failed=0
run_step() {  # name, command...
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name: $*"
  if "$@"; then
    summary+=("PASS  $(printf '%5ss' $((SECONDS - start)))  $name")
  else
    summary+=("FAIL  $(printf '%5ss' $((SECONDS - start)))  $name")
    failed=1
  fi
}

if [ $# -eq 0 ]; then
  run_step "bench lifecycle (tests/testbed)" "$BIN/pytest" -q -p no:cacheprovider tests/testbed
fi
for s in "${scenarios[@]}"; do
  run_step "molecule $s" "$BIN/molecule" test -s "$s"
done

echo
echo "=== Molecule summary"
printf '%s\n' "${summary[@]}"
if [ $failed -ne 0 ]; then
  echo "run-molecule: some scenarios FAILED" >&2
  # A failed scenario's destroy already ran (molecule test --destroy=always); show
  # whatever is still up (the next create removes stale hosts of the same names).
  python3 tests/testbed/testbed.py list
fi
exit $failed
