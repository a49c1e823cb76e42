# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keys are never replaced in place: the rules of _dkim_keys on real RSA keys."""

from __future__ import annotations

import functools

from ansible_collections.mailops.powermta.plugins.module_utils._dns.dkim_key import key_info
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.dkim_keys import (
    dkim_key_problems,
    published_keys,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PATH = "/etc/pmta/dkim/example.com/s1.pem"


@functools.cache
def pem(bits=1024, seed=0):
    del seed  # a different cache entry: another key of the same size
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def txt(public_pem):
    return ["v=DKIM1; k=rsa; p=%s" % key_info(public_pem)[2]]


def want(hosts=("pmta1", "pmta2"), bits=1024, selectors=("s1",)):
    return [{"host": h, "domain": "example.com", "selector": s, "bits": bits,
             "path": "/etc/pmta/dkim/example.com/%s.pem" % s} for h in hosts for s in selectors]


def test_published_keys_reads_size_and_key():
    assert published_keys(txt(pem())) == [(1024, key_info(pem())[2])]
    assert published_keys(["v=spf1 -all", "v=DKIM1; p="]) == []


def test_everyone_agreeing_is_fine():
    hosts = {"pmta1": {PATH: pem()}, "pmta2": {PATH: pem()}}
    assert dkim_key_problems(want(), hosts, {"example.com/s1": pem()}, {"example.com/s1": txt(pem())},
                             "controller", "/srv/dkim") == []


def test_a_new_fleet_has_nothing_to_compare():
    assert dkim_key_problems(want(), {}, {"example.com/s1": None}, {"example.com/s1": []}, "controller", "/srv/d") == []
    assert dkim_key_problems(want(), {}, None, None, "host") == []


def test_a_bigger_key_for_a_live_selector_is_refused_with_the_rotation_steps():
    hosts = {"pmta1": {PATH: pem()}, "pmta2": {PATH: pem()}}
    problems = dkim_key_problems(want(bits=4096), hosts, {"example.com/s1": pem()}, {"example.com/s1": txt(pem())},
                                 "controller", "/srv/dkim")
    assert len(problems) == 1
    assert problems[0].startswith("DKIM selector s1._domainkey.example.com: host pmta1, host pmta2, the controller's "
                                  "/srv/dkim/example.com/s1.pem, DNS hold a 1024-bit key but the inventory asks for "
                                  "4096 bits")
    assert "never replaced in place" in problems[0] and "Rotate DKIM keys" in problems[0]
    assert "dkim_selectors (e.g. [s1, s12])" in problems[0] and "or set the size back to 1024" in problems[0]


def test_a_new_selector_carries_the_new_size_and_the_old_key_stays():
    hosts = {"pmta1": {PATH: pem()}}
    assert dkim_key_problems(want(("pmta1",), bits=4096, selectors=("s1", "s2")), hosts,
                             {"example.com/s1": pem(), "example.com/s2": None},
                             {"example.com/s1": txt(pem()), "example.com/s2": []}, "controller", "/srv/dkim") == []


def test_a_missing_controller_key_for_a_deployed_selector_is_refused():
    hosts = {"pmta1": {PATH: pem()}}
    problems = dkim_key_problems(want(("pmta1",)), hosts, {"example.com/s1": None}, {"example.com/s1": txt(pem())},
                                 "controller", "/srv/dkimm")
    assert problems == [problems[0]] and problems[0].startswith(
        "DKIM selector s1._domainkey.example.com: powermta_dkim_controller_dir /srv/dkimm has no key "
        "/srv/dkimm/example.com/s1.pem, but host pmta1, DNS already hold one; a new key would replace it in place."
        " Check powermta_dkim_controller_dir (a typo")


def test_a_controller_key_that_differs_from_hosts_and_dns_names_every_holder():
    hosts = {"pmta1": {PATH: pem()}, "pmta2": {PATH: pem()}}
    problems = dkim_key_problems(want(), hosts, {"example.com/s1": pem(seed=1)}, {"example.com/s1": txt(pem())},
                                 "controller", "/srv/dkim")
    assert len(problems) == 1
    assert problems[0].startswith("DKIM selector s1._domainkey.example.com: the public keys differ (host pmta1, "
                                  "host pmta2, DNS has key ...")
    assert "the controller's /srv/dkim/example.com/s1.pem has key ..." in problems[0]
    assert "the run stops before any host changes" in problems[0]


def test_hosts_that_disagree_with_each_other_are_named():
    hosts = {"pmta1": {PATH: pem()}, "pmta2": {PATH: pem(seed=2)}}
    problems = dkim_key_problems(want(), hosts, None, None, "host")
    assert len(problems) == 1 and "host pmta1 has key" in problems[0] and "host pmta2 has key" in problems[0]


def test_a_host_that_would_make_its_own_key_for_a_published_selector_is_refused():
    hosts = {"pmta1": {PATH: pem()}}
    problems = dkim_key_problems(want(), hosts, None, {"example.com/s1": txt(pem())}, "host")
    assert len(problems) == 1 and problems[0].startswith(
        "DKIM selector s1._domainkey.example.com: pmta2 has no key yet and would make a new one of its own")
    assert "Copy the existing private key to %s on pmta2" % PATH in problems[0]
