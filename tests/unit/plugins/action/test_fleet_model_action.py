from ansible_collections.mailops.powermta.plugins.action.fleet_model import (
    ARGUMENT_SPEC,
    _referenced_names,
    role_defaults,
)
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.model import wanted_variables
from ansible_collections.mailops.powermta.plugins.plugin_utils._plain import plain as _plain


class TaggedStr(str):
    """Stands in for Ansible's tagged strings: a str subclass."""


def test_plain_copies_skip_secret_keys_and_give_exact_types():
    value = {"injectors": [{"name": TaggedStr("mumara"), "password": "never read", "auth": True, "port": 587}]}
    copied = _plain(value, ("password",))
    assert copied == {"injectors": [{"name": "mumara", "auth": True, "port": 587}]}
    # An exact str, not a tagged subclass (isinstance would accept both).
    assert type(copied["injectors"][0]["name"]) is str  # pylint: disable=unidiomatic-typecheck


def test_the_role_defaults_the_model_reads_and_the_names_their_templates_need():
    defaults = role_defaults()
    assert "powermta_default_isp_policies" in defaults and "powermta_default_acct_files" in defaults
    referenced = _referenced_names(defaults)
    assert "powermta_fbl_enabled" in referenced and "host_tuning_spool_dirs" in referenced
    # every layered list of the model that has role defaults is found in the defaults file
    assert {name for name in wanted_variables() if name.startswith("powermta_default_")} <= set(defaults)


def test_argument_spec_matches_the_documented_options():
    import yaml
    from ansible_collections.mailops.powermta.plugins.modules import fleet_model

    documented = yaml.safe_load(fleet_model.DOCUMENTATION)["options"]
    assert set(documented) == set(ARGUMENT_SPEC)
    for name, spec in ARGUMENT_SPEC.items():
        assert documented[name]["type"] == spec["type"]
        assert documented[name].get("default") == spec.get("default")
