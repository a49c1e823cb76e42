# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that build mail DNS records (for mailops.powermta.dns_records) from the fleet model."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils import _dns_mail_records as builders
from ansible_collections.mailops.powermta.plugins.module_utils._layered import LayerError, merge_by_name


def _wrap(function):
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except builders.RecordBuildError as exc:
            raise AnsibleFilterError(str(exc)) from exc

    run.__name__ = function.__name__
    run.__doc__ = function.__doc__
    return run


def _mail_dns_records(domains, vmtas, dkim_keys=None, ttl=builders.DEFAULT_TTL, spf_all="-all", bounce_mx=None,
                      require_dkim=True):
    """``domains | mailops.powermta.mail_dns_records(vmtas, dkim_keys)``."""
    return builders.mail_records(domains, vmtas, dkim_keys, ttl=ttl, spf_all=spf_all, bounce_mx=bounce_mx,
                                 require_dkim=require_dkim)


def _mail_dns_verify_spec(domains, vmtas, dkim_keys=None):
    """``domains | mailops.powermta.mail_dns_verify_spec(vmtas, dkim_keys)`` -> {domains, ips}."""
    return builders.verify_spec(domains, vmtas, dkim_keys)


def _spf_records(ips, domain, extra_terms=None, all_qualifier="-all", ttl=builders.DEFAULT_TTL):
    """``ips | mailops.powermta.spf_records('example.com')``."""
    return builders.spf_records(domain, ips, extra_terms, all_qualifier, ttl)


def _dkim_record(public_key, domain, selector, ttl=builders.DEFAULT_TTL):
    """``pem | mailops.powermta.dkim_record('example.com', 's2026a')``."""
    return builders.dkim_record(domain, selector, public_key, ttl)


def _dmarc_record(domain, policy="none", rua=None, subdomain_policy=None, ttl=builders.DEFAULT_TTL):
    """``'example.com' | mailops.powermta.dmarc_record('quarantine', 'mailto:d@example.com')``."""
    return builders.dmarc_record(domain, policy, rua, subdomain_policy, ttl=ttl)


def _ptr_records(vmtas, ttl=builders.DEFAULT_TTL):
    """``vmtas | mailops.powermta.ptr_records``."""
    return builders.ptr_records(vmtas, ttl)


def _address_records(vmtas, ttl=builders.DEFAULT_TTL):
    """``vmtas | mailops.powermta.address_records``."""
    return builders.address_records(vmtas, ttl)


def _layers(hostvars_of_host, name):
    return [hostvars_of_host.get("powermta_%s" % name) or [], hostvars_of_host.get("powermta_group_%s" % name) or [],
            hostvars_of_host.get("powermta_host_%s" % name) or []]


def _mail_fleet_model(hosts, hostvars):
    """``groups['pmta_fleet'] | mailops.powermta.mail_fleet_model(hostvars)`` -> {domains, vmtas, dkim_keys}."""
    domains, vmtas, dkim_keys = None, [], []
    try:
        for host in hosts or []:
            host_vars = hostvars[host]
            effective = host_vars.get("powermta_effective_vmtas")
            if effective is None:  # the powermta role did not run in this play: merge the inventory layers
                effective = merge_by_name(*_layers(host_vars, "vmtas"))
            vmtas.extend(dict(v, inventory_host=host) for v in effective)
            dkim_keys.extend(host_vars.get("powermta_dkim_public_keys") or [])
            if domains is None:
                domains = merge_by_name(*_layers(host_vars, "domains"))
    except LayerError as exc:
        raise AnsibleFilterError(str(exc)) from exc
    return {"domains": domains or [], "vmtas": vmtas, "dkim_keys": dkim_keys}


class FilterModule:
    def filters(self):
        return {
            "mail_dns_records": _wrap(_mail_dns_records),
            "mail_fleet_model": _mail_fleet_model,
            "mail_dns_verify_spec": _wrap(_mail_dns_verify_spec),
            "spf_records": _wrap(_spf_records),
            "dkim_record": _wrap(_dkim_record),
            "dmarc_record": _wrap(_dmarc_record),
            "ptr_records": _wrap(_ptr_records),
            "address_records": _wrap(_address_records),
        }
