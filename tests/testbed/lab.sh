#!/usr/bin/env bash
# The local lab: bench hosts for inventories/lab (group pmta_fleet), the bench's BIND 9,
# then site.yml against it.
#   tests/testbed/lab.sh up     boot (or re-boot) the lab and run site.yml
#   tests/testbed/lab.sh down   remove all of it
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
export PATH=$BIN:$PATH
export ANSIBLE_CONFIG=$ROOT/ansible.cfg
INVENTORY=${LAB_INVENTORY:-inventories/lab}
STATE=${MAILOPS_TESTBED_STATE:-/var/lib/mailops-testbed}
LAB=$STATE/lab
PREFIX=lab-
TESTBED=(python3 tests/testbed/testbed.py)
BIND=tests/testbed/bind9.py
ISP=("$BIN/python" tests/testbed/isp_world.py)
ISP_NET=198.19.254.0/24
ISP_RESOLVER=198.19.254.1

lab_hosts() {  # bench names of the lab's hosts: recorded ones and the inventory's
  { cat "$LAB/hosts.txt" 2>/dev/null || true
    "$BIN/ansible-inventory" -i "$INVENTORY" --list 2>/dev/null \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); print("\n".join(d.get("pmta_fleet",{}).get("hosts",[])))' \
      | sed "s/^/$PREFIX/" || true
  } | sort -u | grep -v '^$' || true
}

down() {
  if [ -f "$BIND" ] && [ -d "$LAB/bind" ]; then
    python3 "$BIND" stop --dir "$LAB/bind" || true
  fi
  if [ -d "$LAB/isp" ]; then
    "${ISP[@]}" down --dir "$LAB/isp" || true
  fi
  mapfile -t hosts < <(lab_hosts)
  if [ ${#hosts[@]} -gt 0 ]; then
    "${TESTBED[@]}" down "${hosts[@]}"
  fi
  rm -rf "$LAB"
  echo "lab: removed"
}

lab_running() {  # true when every recorded lab host is up and BIND 9 answers: reuse them
  [ -s "$LAB/hosts.txt" ] && [ -s "$LAB/bind/connection.json" ] || return 1
  local name
  while read -r name; do
    "${TESTBED[@]}" list | awk -v n="$name" '$1 == n && $3 == "running" {found=1} END {exit !found}' || return 1
  done < "$LAB/hosts.txt"
  [ -e "/run/netns/isp-lab-hub" ] || return 1  # a netns is a bind-mounted file, not a directory
  [ -e "/run/netns/isp-lab-mailbox" ] && [ -s "$LAB/mailbox.json" ] || return 1
  local pid
  pid=$(cat "$LAB/bind/named.proc.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null
}

up() {
  local start=$SECONDS
  mkdir -p "$LAB"
  "$BIN/ansible-inventory" -i "$INVENTORY" --list > "$LAB/inventory.json"
  if lab_running; then
    echo "=== lab: reusing the running lab hosts and BIND 9 (make lab-down to start afresh)"
  else
    echo "=== lab: starting bench hosts for $INVENTORY (group pmta_fleet)"
    "${TESTBED[@]}" lab-up "$LAB/inventory.json" --prefix "$PREFIX" > "$LAB/hosts.json"
    python3 -c 'import json,sys; print("\n".join(h["instance"] for h in json.load(open(sys.argv[1]))))' \
      "$LAB/hosts.json" > "$LAB/hosts.txt"
    # New hosts and new sinks: the suppression CSV of the previous lab would list addresses these sinks never saw.
    rm -f "$LAB/suppression.csv"
    echo "=== lab: starting the ISP side (one aiosmtpd sink per ISP group, own netns, $ISP_NET)"
    echo "    and the injector's mailbox (Postfix + Dovecot IMAP, own netns; login in $LAB/mailbox.json)"
    "${ISP[@]}" up --dir "$LAB/isp" --name lab --net "$ISP_NET" --fbl-address fbl@fbl.example.com \
      --mailbox-json "$LAB/mailbox.json" --mailbox-domain bounces.example.com
    echo "=== lab: starting BIND 9 (the lab's zones, DNSBL and the ISPs' .test zones; hosts resolve at $ISP_RESOLVER)"
    python3 "$BIND" stop --dir "$LAB/bind" >/dev/null 2>&1 || true
    python3 "$BIND" start --dir "$LAB/bind" --extra-zones-dir "$LAB/isp/zones" --also-listen "$ISP_RESOLVER"
    mapfile -t hosts < "$LAB/hosts.txt"
    "${ISP[@]}" attach --dir "$LAB/isp" "${hosts[@]}" >/dev/null
    # The test double on an accelerated clock (a TEST-DOUBLE hook; PowerMTA has nothing like it).
    for host in "${hosts[@]}"; do
      "${TESTBED[@]}" ssh "$host" 'mkdir -p /etc/pmta && echo "{\"speed\": 60}" > /etc/pmta/TEST-DOUBLE-clock'
    done
  fi
  # The injector's SMTP AUTH password: made once, kept out of git (the inventory reads this file).
  if [ ! -s "$LAB/injector-password" ]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$LAB/injector-password")
  fi

  # The PowerMTA TEST DOUBLE (never the product); the same sources give the same file.
  echo "=== lab: building the pmta-test-double package"
  tests/pmta_test_double/build.sh "$LAB/pmta-test-double" >/dev/null

  # lab_campaign.yml injects a small campaign (STARTTLS, AUTH, X-Virtual-MTA: <pool>) to every ISP group
  # through every pool and waits for the sinks and the injector's mailbox.
  echo "=== lab: ansible-playbook site.yml playbooks/warmup_step.yml tests/testbed/lab_campaign.yml -i $INVENTORY"
  "$BIN/ansible-playbook" -i "$INVENTORY" site.yml playbooks/warmup_step.yml tests/testbed/lab_campaign.yml \
    | tee "$LAB/last-run.log"
  # Then what the injector imports: the suppression CSV (suppression_export_file in the lab inventory) grows with
  # every campaign, so it runs apart from the converge whose changed count must be 0 on a second run; the summary
  # shows the fleet, the mail per ISP group x IP, and the mailbox and CSV beside the sinks.
  echo "=== lab: ansible-playbook playbooks/suppression.yml playbooks/lab_summary.yml -i $INVENTORY"
  "$BIN/ansible-playbook" -i "$INVENTORY" playbooks/suppression.yml playbooks/lab_summary.yml \
    | tee "$LAB/last-report.log"
  # The lab's promise (issue 21): every address the sinks rejected or complained about is in the CSV, once.
  if ! "$BIN/python" tests/testbed/lab_mailbox.py compare --mailbox-json "$LAB/mailbox.json" --world "$LAB/isp" \
      --bounce-domain bounces.example.com --suppression-csv "$LAB/suppression.csv" \
      | "$BIN/python" -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if r.get("agree") else "lab: the mailbox or the suppression CSV differs from the ISP sinks: missing %s, unexpected %s" % (r.get("missing"), r.get("unexpected", r.get("error"))))'; then
    exit 1
  fi

  local changed
  # With several playbooks in one call Ansible prints a cumulative recap after each: read the last.
  changed=$(awk '/^PLAY RECAP/ {sum = 0; recap = 1; next} recap && /changed=/ {split($0, a, "changed="); split(a[2], b, " "); sum += b[1]} END {print sum + 0}' "$LAB/last-run.log")
  echo
  echo "=== lab: built in $((SECONDS - start)) s; tasks changed in this run: $changed (a second 'make lab' reports 0)"
  echo "Hosts (bench name, kind, state, SSH address, vMTA addresses):"
  "${TESTBED[@]}" list | grep "^$PREFIX" || true
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("BIND 9: %(server)s port %(port)s, TSIG key %(key_name)s (%(key_algorithm)s)" % c)' \
    "$LAB/bind/connection.json"
  echo "ISP sinks (accepted/deferred/rejected per source IP): $BIN/python tests/testbed/isp_world.py counts --dir $LAB/isp"
  echo "Suppression CSV (playbooks/suppression.yml): $LAB/suppression.csv"
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("Injector mailbox: IMAP %(host)s port %(port)s, user %(user)s (password in " % c + sys.argv[1] + "); SMTP %(smtp_host)s:%(smtp_port)s" % c)' \
    "$LAB/mailbox.json"
  echo "Log in: python3 tests/testbed/testbed.py ssh ${PREFIX}pmta1    Remove: make lab-down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
