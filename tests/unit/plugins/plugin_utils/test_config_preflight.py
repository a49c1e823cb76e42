# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight names the inventory variable and item behind a line of a rendered PowerMTA config."""

from ansible_collections.mailops.powermta.plugins.plugin_utils._config_preflight import origin

MODEL = {"injectors": [{"name": "mumara", "networks": ["198.51.100.0/28"]}]}


def test_local_conf_lines_are_lines_of_extra_config():
    lines = ["# Managed by Ansible", "# powermta_extra_config: site-specific directives", "a 1", "b 2"]
    assert origin("etc/pmta/conf.d/local.conf", lines, 4, MODEL) == "powermta_extra_config line 2"


def test_a_line_inside_a_vmta_names_the_item_and_the_nested_block():
    lines = ["<virtual-mta tx-01>", "    smtp-source-host 203.0.113.10 mta10.example.com", "    <domain gmail.com>",
             "        max-smtp-out many", "    </domain>", "</virtual-mta>"]
    assert origin("etc/pmta/conf.d/vmtas.conf", lines, 2, MODEL) == "powermta_vmtas item tx-01"
    assert origin("etc/pmta/conf.d/vmtas.conf", lines, 4, MODEL) == "powermta_vmtas item tx-01, <domain gmail.com>"


def test_a_source_block_of_an_injector_network_names_the_injector():
    lines = ["<source 198.51.100.0/28>", "    always-allow-relaying yes", "</source>"]
    assert origin("etc/pmta/conf.d/sources.conf", lines, 2, MODEL) == (
        "powermta_injectors item mumara (network 198.51.100.0/28)")


def test_isp_policy_domains_and_top_level_directives():
    lines = ["<domain *>", "    retry-after soon", "</domain>", "<domain $gmail>", "    max-msg-rate x", "</domain>"]
    assert origin("etc/pmta/conf.d/isp-policies.conf", lines, 2, MODEL) == "powermta_domain_defaults"
    assert origin("etc/pmta/conf.d/isp-policies.conf", lines, 5, MODEL) == "powermta_isp_policies item gmail"
    assert origin("etc/pmta/config", ["host-name x", "log-file /var/log/pmta.log"], 2, MODEL) == "powermta_log_file"
