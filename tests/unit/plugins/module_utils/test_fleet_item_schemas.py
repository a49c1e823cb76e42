"""One schema per item: tools/gen-argument-specs.py writes the powermta role's item options from _fleet SCHEMAS."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.mailops.powermta.plugins.module_utils._dns import mail_records as records
from ansible_collections.mailops.powermta.plugins.module_utils._fleet import item_specs
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.items import LAYERS, SCHEMAS, check_item

ROOT = Path(__file__).resolve().parents[4]
SPEC_FILE = ROOT / "roles/powermta/meta/argument_specs.yml"
SPECS = yaml.safe_load(SPEC_FILE.read_text())["argument_specs"]
SPEC = SPECS["main"]["options"]
TOOL = ROOT / "tools/gen-argument-specs.py"


def load_tool():
    module_spec = importlib.util.spec_from_file_location("gen_argument_specs", TOOL)
    tool = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(tool)
    return tool


def test_the_spec_file_is_generated_from_the_schema():
    run = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr


def test_every_schema_key_has_one_description():
    assert item_specs.description_problems() == []


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_argument_spec_items_are_the_schema(kind):
    for variable in LAYERS[kind]:
        assert SPEC[variable]["type"] == "list" and SPEC[variable]["elements"] == "dict", variable
        assert list(SPEC[variable]["options"]) == list(SCHEMAS[kind]) + ["state"], variable
        assert SPEC[variable]["options"] == item_specs.item_options(kind), variable


def test_every_layered_list_of_the_spec_has_a_schema():
    described = {variable for variables in LAYERS.values() for variable in variables}
    item_lists = {name for name, spec in SPEC.items()
                  if spec.get("elements") == "dict" and "state" in spec.get("options", {})}
    assert item_lists == described


def test_choices_and_defaults_are_those_the_model_uses():
    domain = item_specs.item_options("domains")
    assert domain["dkim_key_bits"]["choices"] == [1024, 2048, 3072, 4096]
    assert domain["dmarc_policy"]["choices"] == ["none", "quarantine", "reject"]
    assert item_specs.item_options("listeners")["starttls"]["default"] is True
    assert item_specs.item_options("injectors")["password"]["no_log"] is True
    assert item_specs.item_options("vmtas")["ip"]["description"].endswith("Required after merging the layers.")


def test_a_drifted_spec_is_named_and_fails_the_check(tmp_path):
    text = SPEC_FILE.read_text()
    drifted = text.replace(
        "          bounce_mx:\n            type: list\n            elements: str\n",
        "          bounce_mx:\n            type: str\n          dkim:\n            type: bool\n"
        "            description: Never read.\n", 1)
    assert drifted != text
    tool = load_tool()
    problems = tool.differences(drifted)
    for variable in LAYERS["domains"]:
        assert "%s.bounce_mx.type is 'str', the item schema says 'list'" % variable in problems
        assert "%s.bounce_mx.elements is missing" % variable in problems
        assert "%s.dkim is not in the item schema" % variable in problems
    path = tmp_path / "argument_specs.yml"
    path.write_text(drifted)
    assert tool.main(["--check", "--spec", str(path)]) == 1
    assert tool.main(["--spec", str(path)]) == 0
    assert path.read_text() == text


def test_a_layout_change_alone_fails_the_check(tmp_path):
    path = tmp_path / "argument_specs.yml"
    path.write_text(SPEC_FILE.read_text().replace("        options: *domain_options\n", "        options:\n"
                                                  "          <<: *domain_options\n", 1))
    tool = load_tool()
    assert tool.check(path)[0] == "argument_specs.yml: layout differs from the generated text:"


def test_bounce_mx_given_as_a_string_is_refused_by_name():
    _item, problems = check_item("domains", "powermta_domains", {"name": "example.com", "bounce_mx": "mx.example.com"})
    assert len(problems) == 1
    assert problems[0].startswith("powermta_domains item example.com: bounce_mx must be a list")


def test_bounce_mx_list_builds_the_mx():
    domain = {"name": "example.com", "bounce_domain": "bounces.example.com", "bounce_mx": ["mx1.example.com"],
              "dmarc_rua": "mailto:d@example.com"}
    item, problems = check_item("domains", "powermta_domains", domain)
    assert problems == []
    vmtas = [{"name": "v1", "ip": "192.0.2.10", "hostname": "v1.example.com"}]
    mx = [r for r in records.mail_records([item], vmtas, require_dkim=False) if r["type"] == "MX"]
    assert mx == [records.record("bounces.example.com", "MX", ["10 mx1.example.com."], records.DEFAULT_TTL)]


def test_one_exchange_as_a_string_is_one_exchange():
    assert records.mx_record("bounces.example.com", "mx1.example.com")["values"] == ["10 mx1.example.com."]


def test_spf_ips_are_checked_and_used():
    _item, problems = check_item("domains", "powermta_domains", {"name": "example.com", "spf_ips": ["192.0.2.300"]})
    assert problems == ["powermta_domains item example.com: spf_ips must list IP addresses (e.g. [203.0.113.10]), "
                        "not ['192.0.2.300']"]
    item, problems = check_item(
        "domains", "powermta_domains",
        {"name": "example.com", "spf_ips": [" 192.0.2.20 "], "dmarc_rua": "mailto:d@example.com"})
    assert problems == []
    vmtas = [{"name": "v1", "ip": "192.0.2.10", "hostname": "v1.example.com"}]
    spf = [r for r in records.mail_records([item], vmtas, require_dkim=False)
           if r["name"] == "example.com" and r["type"] == "TXT"]
    assert spf[0]["values"] == ["v=spf1 ip4:192.0.2.20 -all"]


def test_dmarc_subdomain_policy_is_checked():
    _item, problems = check_item("domains", "powermta_domains",
                                 {"name": "example.com", "dmarc_subdomain_policy": "strict"})
    assert problems == ["powermta_domains item example.com: dmarc_subdomain_policy must be one of none, quarantine, "
                        "reject, got 'strict'"]
