# mailops.powermta — the two commands users need are `make lab` and `make test`.
# Everything a fresh Debian 12 machine (root) needs is installed from here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(VENV)/bin
PY          := $(BIN)/python
COLL_ROOT   := .ansible/collections
COLL_LINK   := $(COLL_ROOT)/ansible_collections/mailops/powermta
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

APT_PACKAGES := python3 python3-venv python3-dev gcc git make rsync openssh-client \
	debootstrap systemd-container qemu-system-x86 qemu-utils e2fsprogs xfsprogs \
	iproute2 bind9 bind9-utils bind9-dnsutils dpkg-dev fakeroot util-linux kmod psmisc \
	postfix dovecot-imapd dovecot-lmtpd prometheus

.PHONY: help install apt venv link image lint sanity unit integration molecule \
	test lab lab-down build clean

help:
	@echo "make lab       boot the local lab (test hosts + BIND 9) and run site.yml on it"
	@echo "make lab-down  remove the lab"
	@echo "make test      install everything needed and run every test"

# ---------------------------------------------------------------- install
install: apt venv link

apt: .cache/apt.stamp
.cache/apt.stamp: Makefile
	@mkdir -p .cache
	@# The lab's Postfix, Dovecot and BIND 9 run in their own netns with their own configs: a temporary
	@# policy-rc.d keeps apt from starting them as this machine's system services.
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
	  rc=0; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null || rc=$$?; \
	  if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; fi
	@touch $@

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@

# Dependency collections come with the `ansible` package from PyPI (see
# requirements-dev.txt); requirements.yml lists them for users with Galaxy access.
# From a checkout, the collection is this directory: link it where Ansible looks.
link: $(VENV)/.stamp
	@mkdir -p $(dir $(COLL_LINK))
	@test -L $(COLL_LINK) || ln -sfn ../../../.. $(COLL_LINK)

image: install
	@$(PY) tests/testbed/testbed.py image

# ---------------------------------------------------------------- tests
lint: install
	$(BIN)/yamllint -s .
	$(BIN)/ruff check plugins tests tools
	$(BIN)/ansible-lint --profile production
	$(PY) tools/gen-argument-specs.py --check
	$(PY) tools/gen-variables-doc.py --check
	$(BIN)/antsibull-changelog lint

sanity: install
	@tests/testbed/ansible-test-sanity.sh

unit: install
	$(BIN)/pytest -q tests/unit

integration: install
	$(BIN)/pytest -q tests/integration tests/pmta_test_double

molecule: image
	@tests/testbed/run-molecule.sh

test: install lint sanity unit integration molecule
	@echo "make test: all suites passed"

# ---------------------------------------------------------------- lab
lab: image
	@tests/testbed/lab.sh up

lab-down:
	@tests/testbed/lab.sh down

build: install
	$(BIN)/ansible-galaxy collection build --force --output-path build/

clean: lab-down
	rm -rf build .cache
