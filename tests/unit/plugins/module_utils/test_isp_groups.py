"""ISP groups: classification by domain and MX, throttling patterns, overrides."""

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._fleet import isp_groups
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.isp_groups import (
    IspClassifier,
    IspGroupError,
    group_names,
    merge_isp_groups,
    mx_host_from_dsn_mta,
)


@pytest.fixture(scope="module")
def classifier():
    return IspClassifier()


@pytest.mark.parametrize(
    "domain, group",
    [
        ("gmail.com", "gmail"), ("GoogleMail.com.", "gmail"), ("aol.com", "yahoo"), ("ymail.com", "yahoo"),
        ("hotmail.co.uk", "microsoft"), ("live.com", "microsoft"), ("me.com", "apple"),
        ("comcast.net", "comcast"), ("example.com", "other"), ("", "other"), ("mail.comcast.net", "comcast"),
    ],
)
def test_domains(classifier, domain, group):
    assert classifier.by_domain(domain) == group


def test_mx_classifies_hosted_domains_only_when_domain_is_unknown(classifier):
    assert classifier.classify("example.com", "aspmx.l.google.com") == "gmail"
    assert classifier.classify("example.com", "example-com.mail.protection.outlook.com") == "microsoft"
    assert classifier.classify("example.com", "mx.example.com") == "other"
    assert classifier.classify("yahoo.com", "aspmx.l.google.com") == "yahoo"


def test_dsn_mta_host():
    assert mx_host_from_dsn_mta("gmail-smtp-in.l.google.com (192.0.2.26)") == "gmail-smtp-in.l.google.com"
    assert mx_host_from_dsn_mta("") == ""


@pytest.mark.parametrize(
    "isp, reply, throttled",
    [
        ("gmail", "421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP",
         True),
        ("gmail", "421-4.7.0 This message is suspicious due to the very low reputation of the sending IP", True),
        ("gmail", "450-4.2.1 The user you are trying to contact is receiving mail at a rate that", False),
        ("yahoo", "421 4.7.0 [TSS04] Messages from 203.0.113.11 temporarily deferred due to unexpected volume", True),
        ("yahoo", "421 [IPTS04] Messages from 203.0.113.11 temporarily deferred", True),
        ("yahoo", "451 Message temporarily deferred - [160]", False),
        ("microsoft", "451 4.7.650 The mail server [203.0.113.11] has been temporarily rate limited due to IP "
                      "reputation. (S775)", True),
        ("microsoft", "421 4.3.2 The maximum number of concurrent connections has exceeded a limit", False),
        ("comcast", "421 4.1.0 203.0.113.11 Throttled - try again later. RL000001", True),
        ("apple", "421 [HCM1] Your mail from 203.0.113.11 was deferred", True),
        ("other", "451 4.7.1 You are being rate limited", True),
        ("gmail", "", False),
    ],
)
def test_throttle_patterns(classifier, isp, reply, throttled):
    assert classifier.is_throttle(isp, reply) is throttled


def test_override_adds_replaces_and_removes_groups():
    groups = merge_isp_groups([
        {"name": "gmx", "domains": ["gmx.net", "web.de"], "mx_patterns": ["*.gmx.net"]},
        {"name": "comcast", "state": "absent"},
        {"name": "gmail", "throttle_patterns": ["custom throttle"]},
    ])
    assert group_names(groups) == ["gmail", "yahoo", "microsoft", "apple", "gmx", "other"]
    classifier = IspClassifier(groups)
    assert classifier.by_domain("web.de") == "gmx"
    assert classifier.by_domain("comcast.net") == "other"
    assert classifier.is_throttle("gmail", "a Custom Throttle reply")
    assert not classifier.is_throttle("gmail", "4.7.28 unusual rate")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ([{"name": "Bad-Name"}], "must match"),
        ([{"name": "other", "state": "absent"}], "cannot be removed"),
        ([{"name": "x", "domains": ["gmail.com"]}], "is in both 'gmail' and 'x'"),
        ([{"name": "x", "throttle_patterns": ["(unclosed"]}], "not a valid regex"),
        ([{"name": "x", "domains": "a.com"}], "must be a list of strings"),
        (["gmail"], "must be a dict"),
    ],
)
def test_bad_overrides(overrides, message):
    with pytest.raises(IspGroupError, match=message):
        merge_isp_groups(overrides)


# ---------------------------------------------------------------- one source for PowerMTA and the warm-up
def test_isp_policies_are_the_groups_without_other():
    policies = isp_groups.isp_policies()
    assert [p["name"] for p in policies] == [g["name"] for g in isp_groups.DEFAULT_ISP_GROUPS if g["name"] != "other"]
    gmail = policies[0]
    assert gmail["directives"]["max-smtp-out"] == 10
    assert gmail["throttle_patterns"] == isp_groups.DEFAULT_ISP_GROUPS[0]["throttle_patterns"]
    assert gmail["reply_patterns"] == []


def test_isp_policies_overrides_reach_domains_and_mx_keep_directives():
    policies = isp_groups.isp_policies([{"name": "gmail", "domains": ["gmail.test"], "mx_patterns": ["*.google.test"]}])
    gmail = next(p for p in policies if p["name"] == "gmail")
    assert gmail["domains"] == ["gmail.test"] and gmail["mx_patterns"] == ["*.google.test"]
    assert gmail["directives"]["max-connect-rate"] == "60/m"


def test_isp_policies_include_other_on_request():
    assert isp_groups.isp_policies(include_other=True)[-1]["name"] == "other"


def test_isp_policies_reject_bad_directives():
    with pytest.raises(isp_groups.IspGroupError, match="directives must be a dict"):
        isp_groups.isp_policies([{"name": "gmail", "directives": ["max-smtp-out 5"]}])
    with pytest.raises(isp_groups.IspGroupError, match="reply_patterns"):
        isp_groups.isp_policies([{"name": "gmail", "reply_patterns": [{"regex": "x"}]}])


def test_microsoft_group_is_one_definition():
    microsoft = next(p for p in isp_groups.isp_policies() if p["name"] == "microsoft")
    assert "*.mail.protection.outlook.com" in microsoft["mx_patterns"]
