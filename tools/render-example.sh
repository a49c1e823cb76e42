#!/bin/sh
# Regenerate docs/examples/powermta/rendered: what the powermta role renders for pmta-eu1 of the worked
# example (docs/examples/powermta), warm-up include stand-ins included, linted with fail_on warning.
# Run from the repository root after `make link`; tests/integration/test_rendered_configs_lint.py checks it.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ANSIBLE_CONFIG="$root/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$root/.ansible/collections" \
    "$root/.venv/bin/ansible-playbook" -i "$root/docs/examples/powermta/hosts.yml" \
    "$root/tools/render_pmta_configs.yml" -e render_hosts=pmta-eu1 -e "render_dest=$out" \
    -e powermta_lint_fail_on=warning >/dev/null
rm -rf "$root/docs/examples/powermta/rendered"
cp -r "$out/pmta-eu1" "$root/docs/examples/powermta/rendered"
find "$root/docs/examples/powermta/rendered" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
echo "docs/examples/powermta/rendered regenerated"
