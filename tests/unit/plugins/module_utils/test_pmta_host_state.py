# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.state import (
    needs_start,
    needs_stop,
    parse_deb_fields,
    parse_dpkg_status,
    parse_os_release,
    probe,
    stat_paths,
)

DPKG = ("pmta-test-double\t5.0.8-1\tinstalled\n"
        "python3-cryptography\t38.0.4-3\tinstalled\n"
        "oldpkg\t1.0\tconfig-files\n")


def test_only_installed_packages_count():
    assert parse_dpkg_status(DPKG) == {"pmta-test-double": "5.0.8-1", "python3-cryptography": "38.0.4-3"}


def test_deb_fields():
    assert parse_deb_fields("Package: PowerMTA\nVersion: 5.0r8\n") == {"package": "PowerMTA", "version": "5.0r8"}


def test_needs_start():
    services = {"pmta": {"active": True, "enabled": "enabled"},
                "pmtahttp": {"active": True, "enabled": "disabled"},
                "other": {"active": False, "enabled": "enabled"}}
    assert needs_start(services, True) == ["other", "pmtahttp"]
    assert needs_start(services, False) == ["other", "pmta"]


def test_needs_stop():
    services = {"running": {"active": True, "enabled": "disabled"},
                "at-boot": {"active": False, "enabled": "enabled"},
                "off": {"active": False, "enabled": "disabled"},
                "gone": {"active": False, "enabled": "unknown"}}
    assert needs_stop(services) == ["at-boot", "running"]


def test_os_release():
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n'
    assert parse_os_release(text) == {"id": "debian", "version_id": "12"}
    assert parse_os_release("") == {"id": None, "version_id": None}


def test_stat_paths(tmp_path):
    directory = tmp_path / "dir"
    directory.mkdir()
    os.chmod(directory, 0o750)
    (tmp_path / "file").write_text("x")
    os.chmod(tmp_path / "file", 0o640)
    (tmp_path / "link").symlink_to(directory)
    found = stat_paths([str(directory), str(tmp_path / "file"), str(tmp_path / "link"), str(tmp_path / "none")])
    assert found[str(directory)]["type"] == "directory" and found[str(directory)]["mode"] == "0750"
    assert found[str(tmp_path / "file")]["type"] == "file" and found[str(tmp_path / "file")]["mode"] == "0640"
    assert found[str(tmp_path / "link")]["type"] == "link"
    assert found[str(tmp_path / "none")] == {"exists": False}
    assert found[str(directory)]["owner"] and found[str(directory)]["group"]


def fake_runner(answers):
    calls = []

    def run(argv):
        calls.append(argv)
        for prefix, answer in answers:
            if argv[:len(prefix)] == prefix:
                return answer
        raise AssertionError(f"unexpected command {argv}")
    return run, calls


def test_probe_compares_the_cached_deb_with_dpkg(tmp_path):
    deb = tmp_path / "p.deb"
    deb.write_bytes(b"!<arch>\n")
    run, calls = fake_runner([
        (["dpkg-deb"], (0, "Package: pmta-test-double\nVersion: 5.0.9-1\n", "")),
        (["dpkg-query"], (1, DPKG, "dpkg-query: no packages found matching x\n")),
        (["systemctl", "is-active", "--quiet", "pmta"], (0, "", "")),
        (["systemctl", "is-enabled", "pmta"], (0, "enabled\n", "")),
    ])
    state = probe(run, str(deb), ["python3-cryptography", "x"], ["pmta"])
    assert state["deb"]["package"] == "pmta-test-double"
    assert state["deb"]["installed_version"] == "5.0.8-1"
    assert state["deb"]["current"] is False  # 5.0.9-1 is cached, 5.0.8-1 installed: apt must run
    assert state["packages"] == {"python3-cryptography": "38.0.4-3", "x": None}
    assert state["services"] == {"pmta": {"active": True, "enabled": "enabled"}}
    assert ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n",
            "python3-cryptography", "x", "pmta-test-double"] in calls


def test_probe_without_the_cached_deb_says_so(tmp_path):
    run, calls = fake_runner([(["dpkg-query"], (0, DPKG, ""))])
    state = probe(run, str(tmp_path / "missing.deb"), ["python3-cryptography"], [])
    assert state["deb"] is None
    assert not [c for c in calls if c[0] == "dpkg-deb"]


def _self_signed(tmp_path, names, days=30, other_key=False):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = rsa.generate_private_key(public_exponent=65537, key_size=2048) if other_key else key
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(signer.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(signer, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)
    path = tmp_path / "listener.pem"
    path.write_bytes(pem)
    return str(path)


def test_tls_pem_names_expiry_and_key(tmp_path):
    from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.state import read_tls_pem

    info = read_tls_pem(_self_signed(tmp_path, ["mta1.example.com", "a.example.com"], days=10))
    assert info["readable"] and info["key_matches"]
    assert info["common_name"] == "mta1.example.com"
    assert info["names"] == ["a.example.com", "mta1.example.com"]
    assert info["days_left"] == 9  # whole days: 9 days and some hours


def test_tls_pem_with_a_foreign_key_does_not_match(tmp_path):
    from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.state import read_tls_pem

    assert read_tls_pem(_self_signed(tmp_path, ["mta1.example.com"], other_key=True))["key_matches"] is False
    assert read_tls_pem(str(tmp_path / "none.pem")) == {"exists": False}
    (tmp_path / "bad.pem").write_text("not a pem\n")
    assert read_tls_pem(str(tmp_path / "bad.pem"))["readable"] is False


def test_public_keys_of_readable_private_keys_only(tmp_path):
    from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.state import read_public_keys
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    good = tmp_path / "s1.pem"
    good.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    (tmp_path / "broken.pem").write_text("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
    found = read_public_keys([str(good), str(tmp_path / "broken.pem"), str(tmp_path / "missing.pem")])
    assert list(found) == [str(good)]
    assert found[str(good)].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert serialization.load_pem_public_key(found[str(good)].encode()).public_numbers() == \
        key.public_key().public_numbers()


def test_group_exists():
    from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.state import group_exists

    assert group_exists("root") is True
    assert group_exists("mailops-no-such-group") is False
