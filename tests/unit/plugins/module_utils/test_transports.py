import copy
import csv
import io
import json
import pathlib

import jsonschema
import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._operations import transports
from ansible_collections.mailops.powermta.plugins.module_utils._warmup import engine as warmup

SCHEMA = json.loads(
    (pathlib.Path(__file__).parents[4] / "docs" / "schemas" / "injector-transports.schema.json").read_text()
)
ISPS = ["gmail", "other"]
SCHEDULE = {"default": [100, 1000, 10000]}  # warm = 10000/day per ISP group, 20000 per IP
T0 = "2026-11-01T00:00:00Z"


def nodes(state_pmta1=None, paused_vmta=None):
    return [
        {
            "name": "pmta1", "host": "198.51.100.10", "port": 587, "tls": "starttls",
            "warmup_state": state_pmta1,
            "vmtas": [
                {"name": "mk-01", "ip": "203.0.113.11", "pool": "marketing", "warmup": True},
                {"name": "tx-01", "ip": "203.0.113.10", "pool": "transactional", "warmup": False},
            ],
        },
        {
            "name": "pmta2", "host": "198.51.100.20", "port": 587, "tls": "starttls",
            "vmtas": [
                {"name": "mk-02", "ip": "203.0.113.21", "pool": "marketing", "warmup": False,
                 "paused": paused_vmta == "mk-02"},
                {"name": "tx-02", "ip": "203.0.113.20", "pool": "transactional", "warmup": False,
                 "daily_capacity": 60000},
            ],
        },
    ]


INJECTORS = [
    {"name": "mumara", "username": "mumara-smtp", "password": "s3cret-from-vault",
     "pools": ["marketing", "transactional"]},
    {"name": "crm", "vmtas": ["tx-01"], "password": "other"},
]


def build(state=None, paused_vmta=None, **kwargs):
    return transports.build_transports(INJECTORS, nodes(state, paused_vmta), schedule=SCHEDULE, isps=ISPS, **kwargs)


def by_id(document):
    return {t["id"]: t for t in document["transports"]}


def step(state, ip, now, sent=1000, delivered=1000, blocklisted=None):
    """One real warm-up step with clean observations, through the warm-up engine."""
    observations = {ip: {isp: {"sent": sent, "delivered": delivered} for isp in ISPS}}
    return warmup.plan(state=state, observations=observations, blocklisted=blocklisted, now=now,
                       schedule=SCHEDULE, ips=[ip], isps=ISPS,
                       thresholds={"min_stage_hours": 0, "min_delivered_share": 0.0})["state"]


def test_documents_validate_against_the_schema():
    documents = build()
    assert set(documents) == {"mumara", "crm"}
    for document in documents.values():
        jsonschema.validate(document, SCHEMA)
    with_passwords = build(include_passwords=True)
    for document in with_passwords.values():
        jsonschema.validate(document, SCHEMA)
        assert all("password" in t for t in document["transports"])


def test_schema_rejects_a_broken_document():
    document = build()["mumara"]
    broken = copy.deepcopy(document)
    broken["transports"][0]["weight"] = 150
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
    broken = copy.deepcopy(document)
    del broken["transports"][0]["x_virtual_mta"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_passwords_are_left_out_by_default():
    document = build()["mumara"]
    assert document["passwords_included"] is False
    assert "s3cret-from-vault" not in json.dumps(document)
    assert "password" not in transports.to_csv(document).splitlines()[0]


def test_every_node_by_pool_with_host_port_user_tls_header():
    transports_ = by_id(build()["mumara"])
    assert sorted(transports_) == [
        "mumara/pmta1/marketing", "mumara/pmta1/transactional",
        "mumara/pmta2/marketing", "mumara/pmta2/transactional",
    ]
    first = transports_["mumara/pmta2/transactional"]
    assert (first["host"], first["port"], first["username"], first["tls"], first["x_virtual_mta"]) == (
        "198.51.100.20", 587, "mumara-smtp", "starttls", "transactional")
    crm = build()["crm"]["transports"]
    assert [(t["node"], t["x_virtual_mta"], t["kind"], t["weight"], t["username"]) for t in crm] == [
        ("pmta1", "tx-01", "vmta", 100, "crm")]


def test_weights_use_capacity_warm_full_rate_and_explicit_capacity():
    transports_ = by_id(build()["mumara"])
    # transactional: tx-01 warm at full rate (2 ISP groups x 10000), tx-02 declares 60000
    assert transports_["mumara/pmta1/transactional"]["daily_capacity"] == 20000
    assert transports_["mumara/pmta1/transactional"]["hourly_capacity"] == 834  # 20000 / 24 rounded up
    assert transports_["mumara/pmta2/transactional"]["daily_capacity"] == 60000
    assert transports_["mumara/pmta1/transactional"]["weight"] == 25
    assert transports_["mumara/pmta2/transactional"]["weight"] == 75
    # marketing: mk-01 is warming with no state yet -> stage 1 (2 x 100); mk-02 warm (20000)
    assert transports_["mumara/pmta1/marketing"]["daily_capacity"] == 200
    assert transports_["mumara/pmta1/marketing"]["ips_warming"] == 1
    assert transports_["mumara/pmta1/marketing"]["weight"] == 1
    assert transports_["mumara/pmta2/marketing"]["weight"] == 99


def test_weights_change_when_a_warmup_step_moves_the_ip():
    ip = "203.0.113.11"
    state1 = step(None, ip, T0)  # first step: the pair starts at stage 1 and advances to 2
    state2 = step(state1, ip, "2026-11-02T00:00:00Z")  # second step: stage 3
    stages = []
    weights = []
    for state in (state1, state2):
        stage = {isp: pair["stage"] for isp, pair in state["ips"][ip].items()}
        stages.append(stage)
        marketing = by_id(build(state)["mumara"])
        weights.append((marketing["mumara/pmta1/marketing"]["daily_capacity"],
                        marketing["mumara/pmta1/marketing"]["weight"],
                        marketing["mumara/pmta2/marketing"]["weight"]))
    assert stages[0] != stages[1]
    assert weights[0] != weights[1]
    capacity_by_stage = {1: 100, 2: 1000, 3: 10000}
    for stage, (capacity, *_rest) in zip(stages, weights, strict=True):
        assert capacity == sum(capacity_by_stage[s] for s in stage.values())
    # more capacity on pmta1 -> a larger share for it and a smaller one for pmta2
    assert weights[1][1] > weights[0][1] and weights[1][2] < weights[0][2]
    assert weights[0][1] + weights[0][2] == 100 and weights[1][1] + weights[1][2] == 100


def test_blocklisted_ip_paused_by_warmup_has_weight_zero():
    ip = "203.0.113.11"
    state = step(None, ip, T0)
    paused = step(state, ip, "2026-11-02T00:00:00Z", blocklisted={ip: ["zen.spamhaus.org"]})
    assert {pair["status"] for pair in paused["ips"][ip].values()} == {"paused"}
    marketing = by_id(build(paused)["mumara"])
    assert marketing["mumara/pmta1/marketing"]["daily_capacity"] == 0
    assert marketing["mumara/pmta1/marketing"]["weight"] == 0
    assert marketing["mumara/pmta1/marketing"]["ips_paused"] == 1
    assert marketing["mumara/pmta2/marketing"]["weight"] == 100


def test_paused_vmta_in_inventory_has_weight_zero_and_all_paused_pool_is_all_zero():
    marketing = by_id(build(paused_vmta="mk-02")["mumara"])
    assert marketing["mumara/pmta2/marketing"]["weight"] == 0
    assert marketing["mumara/pmta1/marketing"]["weight"] == 100
    ip = "203.0.113.11"
    paused = step(step(None, ip, T0), ip, "2026-11-02T00:00:00Z", blocklisted={ip: ["zen.spamhaus.org"]})
    both = by_id(build(paused, paused_vmta="mk-02")["mumara"])
    assert both["mumara/pmta1/marketing"]["weight"] == 0 and both["mumara/pmta2/marketing"]["weight"] == 0


def test_one_paused_isp_group_counts_zero():
    state = {"version": 1, "updated_at": T0, "ips": {"203.0.113.11": {
        "gmail": {"stage": 3, "status": "paused", "stage_started_at": T0},
        "other": {"stage": 2, "status": "warming", "stage_started_at": T0},
    }}}
    capacity = by_id(build(state)["mumara"])["mumara/pmta1/marketing"]["daily_capacity"]
    assert capacity == 1000


def test_percentages_add_up_to_100():
    for capacities in ([1, 1, 1], [1, 10 ** 6], [0, 0], [5, 0, 5], [1, 1, 1, 1, 1, 1, 1]):
        shares = transports._percentages(capacities)
        assert sum(shares) in (0, 100)
        assert all((s > 0) == (c > 0) for s, c in zip(shares, capacities, strict=True))


def test_csv_has_one_row_per_transport():
    document = build()["mumara"]
    rows = list(csv.DictReader(io.StringIO(transports.to_csv(document))))
    assert len(rows) == len(document["transports"])
    assert rows[0]["injector"] == "mumara" and rows[0]["x_virtual_mta"] == document["transports"][0]["x_virtual_mta"]
    assert int(rows[0]["weight"]) == document["transports"][0]["weight"]
    with_password = transports.to_csv(build(include_passwords=True)["mumara"])
    assert "s3cret-from-vault" in with_password


def test_output_is_stable():
    assert json.dumps(build(), sort_keys=True) == json.dumps(build(), sort_keys=True)
    assert build()["mumara"] == transports.build_transports(
        INJECTORS, list(reversed(nodes())), schedule=SCHEDULE, isps=ISPS)["mumara"]


@pytest.mark.parametrize(
    "injectors, message",
    [
        ([{"name": "x", "pools": ["nope"]}], r"allows pool nope, but no host in pmta_fleet has a vMTA in that pool"),
        ([{"pools": ["marketing"]}], r"powermta_injectors\[0\] must be a dict with a name"),
        ([{"name": "x", "pools": "marketing"}], r"powermta_injectors\[x\].pools must be a list of names"),
    ],
)
def test_bad_injectors_are_named(injectors, message):
    with pytest.raises(transports.TransportError, match=message):
        transports.build_transports(injectors, nodes(), schedule=SCHEDULE, isps=ISPS)


def test_include_passwords_needs_a_password():
    with pytest.raises(transports.TransportError, match=r"powermta_injectors\[x\].password is empty"):
        transports.build_transports([{"name": "x", "pools": ["marketing"]}], nodes(), include_passwords=True,
                                    schedule=SCHEDULE, isps=ISPS)


def test_bad_nodes_and_state_are_named():
    broken = nodes()
    broken[0]["port"] = 0
    with pytest.raises(transports.TransportError, match="node pmta1: injection port must be 1-65535"):
        transports.build_transports(INJECTORS, broken, schedule=SCHEDULE, isps=ISPS)
    with pytest.raises(transports.TransportError, match=r"warm-up state of pmta1 \(ansible_local.pmta_warmup\)"):
        build({"version": 99, "ips": {}})
    with pytest.raises(transports.TransportError, match="warm-up schedule"):
        transports.build_transports(INJECTORS, nodes(), schedule={"default": [5, 1]}, isps=ISPS)


def test_injector_without_auth_has_no_username_or_password():
    documents = transports.build_transports([{"name": "relay", "auth": False, "pools": ["marketing"]}], nodes(),
                                            schedule=SCHEDULE, isps=ISPS, include_passwords=True)
    document = documents["relay"]
    jsonschema.validate(document, SCHEMA)
    assert {t["username"] for t in document["transports"]} == {None}
    assert all("password" not in t for t in document["transports"])


def test_injector_without_pools_gets_every_pool_of_the_fleet():
    document = transports.build_transports([{"name": "any"}], nodes(), schedule=SCHEDULE, isps=ISPS)["any"]
    assert sorted({t["x_virtual_mta"] for t in document["transports"]}) == ["marketing", "transactional"]
    jsonschema.validate(document, SCHEMA)


def test_a_new_fleet_node_is_capped_on_the_injector_side_at_the_rendered_vmta_totals():
    """No warm IP in the pool: what the injector may hand a node per day equals the sum of the
    max-smtp-msg-rate totals the warm-up renders for its vMTAs, so nothing piles up to expire."""
    import re

    from ansible_collections.mailops.powermta.plugins.module_utils._warmup.render import render

    vmtas = [{"name": "nf-01", "ip": "203.0.113.31", "pool": "fresh", "warmup": True},
             {"name": "nf-02", "ip": "203.0.113.32", "pool": "fresh", "warmup": True}]
    state = warmup.plan({}, {}, {}, T0, schedule=SCHEDULE, ips=[v["ip"] for v in vmtas], isps=ISPS)["state"]
    state["ips"]["203.0.113.31"]["gmail"].update(stage=2, cap=5000)  # an approach level counts as it renders
    result = warmup.plan(state, {}, {}, "2026-11-01T00:30:00Z", schedule=SCHEDULE, ips=[v["ip"] for v in vmtas],
                         isps=ISPS)
    totals = sum(int(re.search(r"^max-smtp-msg-rate (\d+)/d$", f["content"], re.M).group(1))
                 for f in render(vmtas, result["decisions"], ISPS, T0))
    node = {"name": "pmta3", "host": "198.51.100.30", "port": 587, "tls": "starttls", "vmtas": vmtas,
            "warmup_state": result["state"]}
    documents = transports.build_transports([{"name": "mumara", "pools": ["fresh"], "password": "x"}], [node],
                                            schedule=SCHEDULE, isps=ISPS)
    transport = documents["mumara"]["transports"][0]
    assert totals == 5000 + 100 + 100 + 100
    assert transport["daily_capacity"] == totals
    assert transport["hourly_capacity"] == -(-totals // 24)


def test_a_drained_node_has_weight_zero_and_its_peers_take_its_share():
    drained = nodes()
    drained[1]["drained"] = True
    document = transports.build_transports(INJECTORS, drained, schedule=SCHEDULE, isps=ISPS)["mumara"]
    jsonschema.validate(document, SCHEMA)
    found = by_id(document)
    for pool in ("marketing", "transactional"):
        assert found["mumara/pmta2/%s" % pool]["weight"] == 0
        assert found["mumara/pmta2/%s" % pool]["daily_capacity"] == 0
        assert found["mumara/pmta2/%s" % pool]["ips_paused"] == 1
        assert found["mumara/pmta1/%s" % pool]["weight"] == 100
