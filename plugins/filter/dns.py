# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that build mail DNS records (for mailops.powermta.dns_records) from the fleet model."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils._dns import mail_fleet as fleet
from ansible_collections.mailops.powermta.plugins.module_utils._dns import mail_records as builders


def _wrap(function):
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (builders.RecordBuildError, fleet.FleetGatherError) as exc:
            raise AnsibleFilterError(str(exc)) from exc

    run.__name__ = function.__name__
    run.__doc__ = function.__doc__
    return run


def _mail_dns_records(domains, vmtas, dkim_keys=None, ttl=builders.DEFAULT_TTL, spf_all="-all", bounce_mx=None,
                      require_dkim=True, ptr="publish", ptr_verify_only=None):
    """``domains | mailops.powermta.dns_mail_records(vmtas, dkim_keys)``."""
    return builders.mail_records(domains, vmtas, dkim_keys, ttl=ttl, spf_all=spf_all, bounce_mx=bounce_mx,
                                 require_dkim=require_dkim, ptr=ptr, ptr_verify_only=ptr_verify_only)


def _mail_dns_plan(domains, vmtas, dkim_keys=None, ttl=builders.DEFAULT_TTL, spf_all="-all", bounce_mx=None,
                   require_dkim=True, ptr="publish", ptr_verify_only=None):
    """``domains | mailops.powermta.dns_mail_plan(vmtas, dkim_keys)`` -> {records, verify, ptr_verify_names}."""
    return builders.mail_plan(domains, vmtas, dkim_keys, ttl=ttl, spf_all=spf_all, bounce_mx=bounce_mx,
                              require_dkim=require_dkim, ptr=ptr, ptr_verify_only=ptr_verify_only)


def _mail_dns_verify_spec(domains, vmtas, dkim_keys=None, ptr="publish", ptr_verify_only=None):
    """``domains | mailops.powermta.dns_verify_spec(vmtas, dkim_keys)`` -> {domains, ips}."""
    return builders.verify_spec(domains, vmtas, dkim_keys, ptr=ptr, ptr_verify_only=ptr_verify_only)


def _mail_dns_ptr_verify_names(vmtas, ptr="publish", ptr_verify_only=None):
    """``vmtas | mailops.powermta.dns_ptr_verify_names(ptr, verify_only)`` -> reverse names only verified."""
    return builders.ptr_verify_names(vmtas, ptr, ptr_verify_only)


def _spf_records(ips, domain, extra_terms=None, all_qualifier="-all", ttl=builders.DEFAULT_TTL):
    """``ips | mailops.powermta.dns_spf_records('example.com')``."""
    return builders.spf_records(domain, ips, extra_terms, all_qualifier, ttl)


def _dkim_record(public_key, domain, selector, ttl=builders.DEFAULT_TTL):
    """``pem | mailops.powermta.dns_dkim_record('example.com', 's2026a')``."""
    return builders.dkim_record(domain, selector, public_key, ttl)


def _dmarc_record(domain, policy="none", rua=None, subdomain_policy=None, ttl=builders.DEFAULT_TTL):
    """``'example.com' | mailops.powermta.dns_dmarc_record('quarantine', 'mailto:d@example.com')``."""
    return builders.dmarc_record(domain, policy, rua, subdomain_policy, ttl=ttl)


def _ptr_records(vmtas, ttl=builders.DEFAULT_TTL):
    """``vmtas | mailops.powermta.dns_ptr_records``."""
    return builders.ptr_records(vmtas, ttl)


def _address_records(vmtas, ttl=builders.DEFAULT_TTL):
    """``vmtas | mailops.powermta.dns_address_records``."""
    return builders.address_records(vmtas, ttl)


def _host_dkim_keys(host_vars, read_keys_var=None):
    """Keys read from the host (the caller's per-host variable ``read_keys_var``) first, then the powermta role's
    exported facts of this run (``powermta_dkim_public_keys``)."""
    read = list(host_vars.get(read_keys_var) or []) if read_keys_var else []
    have = {(k.get("domain"), k.get("selector")) for k in read}
    facts = [k for k in host_vars.get("powermta_dkim_public_keys") or [] if (k.get("domain"), k.get("selector"))
             not in have]
    return read + facts


def _mail_dns_fleet(model, hostvars, read_keys_var=None):
    """``mailops_fleet | mailops.powermta.dns_mail_fleet(hostvars, read_keys_var=NAME)`` -> {domains, vmtas, dkim_keys}.

    Domains and vMTAs from the fleet model (``mailops.powermta.fleet_model``), DKIM public keys as read
    from each of its hosts into the caller's variable ``read_keys_var``, else the powermta role's facts
    (``_dns_mail_fleet.mail_dns_from_model``).
    """
    hosts = sorted((model or {}).get("hosts") or {}) if isinstance(model, dict) else []
    try:
        keys = [(host, _host_dkim_keys(hostvars[host], read_keys_var) if host in hostvars else []) for host in hosts]
        return fleet.mail_dns_from_model(model, keys)
    except fleet.FleetGatherError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {
            "dns_mail_plan": _wrap(_mail_dns_plan),
            "dns_mail_records": _wrap(_mail_dns_records),
            "dns_mail_fleet": _mail_dns_fleet,
            "dns_verify_spec": _wrap(_mail_dns_verify_spec),
            "dns_ptr_verify_names": _wrap(_mail_dns_ptr_verify_names),
            "dns_spf_records": _wrap(_spf_records),
            "dns_dkim_record": _wrap(_dkim_record),
            "dns_dmarc_record": _wrap(_dmarc_record),
            "dns_ptr_records": _wrap(_ptr_records),
            "dns_address_records": _wrap(_address_records),
        }
