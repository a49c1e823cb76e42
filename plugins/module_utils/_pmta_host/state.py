# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what the powermta role would otherwise ask several modules for, in one call.

A no-op re-run of the role spent most of its time in modules that only confirm nothing is to be done
(apt with a .deb that is installed, a package that is present, systemd for services that run). One
read of dpkg and systemctl tells the role which of those calls are needed at all. Only reads.
"""

from __future__ import annotations

import datetime
import os

from .ownership import owner_names


def parse_dpkg_status(text: str) -> dict:
    """``dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Status}\\n'`` output -> {name: version}.

    Only packages whose status is ``installed`` count (``config-files`` is a removed package).
    """
    installed = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip() == "installed":
            installed[parts[0]] = parts[1]
    return installed


def parse_deb_fields(text: str) -> dict:
    """``dpkg-deb -f FILE Package Version`` output -> {package, version}."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return {"package": fields.get("package"), "version": fields.get("version")}


def service_states(active_rc: dict, enabled_out: dict) -> dict:
    """Per service: active (``systemctl is-active`` rc 0) and the ``systemctl is-enabled`` word."""
    return {name: {"active": active_rc[name] == 0, "enabled": (enabled_out.get(name) or "").strip() or "unknown"}
            for name in active_rc}


def needs_start(services: dict, enabled: bool) -> list:
    """The services a ``systemd_service: state=started enabled=...`` call would change."""
    want = "enabled" if enabled else "disabled"
    return sorted(name for name, state in services.items()
                  if not state["active"] or state["enabled"] not in (want, "static", "alias"))


def needs_stop(services: dict) -> list:
    """The services a ``systemd_service: state=stopped enabled=false`` call would change."""
    return sorted(name for name, state in services.items()
                  if state["active"] or state["enabled"] in ("enabled", "enabled-runtime"))


def parse_os_release(text: str) -> dict:
    """/etc/os-release -> {id, version_id} (``debian``, ``12``): the platform, without gathering facts."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"').strip("'")
    return {"id": fields.get("ID"), "version_id": fields.get("VERSION_ID")}


def read_os_release(path: str = "/etc/os-release") -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_os_release(handle.read())
    except OSError:
        return {"id": None, "version_id": None}


def sha256_file(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stat_paths(paths: list, checksum_paths=()) -> dict:
    """{path: {exists, type, mode, owner, group}} (``type``: file, directory, link or other), without following
    a final symlink, so the caller knows which directories and files are there before it decides to call.
    A regular file of ``checksum_paths`` also gets its ``checksum`` (SHA-256): never give it a secret file."""
    import stat as stat_mod

    result = {}
    checksummed = set(checksum_paths)
    for path in list(dict.fromkeys(list(paths) + list(checksum_paths))):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            result[path] = {"exists": False}
            continue
        kind = ("directory" if stat_mod.S_ISDIR(st.st_mode) else "file" if stat_mod.S_ISREG(st.st_mode)
                else "link" if stat_mod.S_ISLNK(st.st_mode) else "other")
        owner, group = owner_names(st)
        result[path] = {"exists": True, "type": kind, "mode": "%04o" % stat_mod.S_IMODE(st.st_mode),
                        "owner": owner, "group": group}
        if kind == "file" and path in checksummed:
            try:
                result[path]["checksum"] = sha256_file(path)
            except OSError:
                pass  # unreadable: no checksum, so the caller installs it
    return result


def probe(run, deb_path: str | None, packages: list, services: list) -> dict:
    """run(argv) -> (rc, stdout, stderr). Returns the state the role decides on."""
    result = {"deb": None, "packages": {}, "services": {}}
    names = list(packages)
    if deb_path and os.path.isfile(deb_path):
        rc, out, err = run(["dpkg-deb", "-f", deb_path, "Package", "Version"])
        deb = parse_deb_fields(out) if rc == 0 else {"package": None, "version": None}
        deb["file"] = deb_path
        result["deb"] = deb
        if deb["package"]:
            names.append(deb["package"])
    if names:
        rc, out, err = run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n", *names])
        # rc 1 only means one of them is unknown to dpkg: the others are still listed.
        installed = parse_dpkg_status(out)
        result["packages"] = {name: installed.get(name) for name in packages}
        if result["deb"] and result["deb"]["package"]:
            deb = result["deb"]
            deb["installed_version"] = installed.get(deb["package"])
            deb["current"] = deb["installed_version"] is not None and deb["installed_version"] == deb["version"]
    active, enabled = {}, {}
    for name in services:
        active[name] = run(["systemctl", "is-active", "--quiet", name])[0]
        enabled[name] = run(["systemctl", "is-enabled", name])[1]
    result["services"] = service_states(active, enabled)
    return result


def read_tls_pem(path: str) -> dict:
    """The listener PEM PowerMTA reads (key + certificate): names, expiry and whether the two belong together.

    {exists: False} when there is no file; {exists: True, readable: False, error} when it cannot be judged
    (e.g. python3-cryptography not installed yet): the caller then makes the certificate as on a new host.
    """
    if not os.path.isfile(path):
        return {"exists": False}
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509.oid import NameOID
    except ImportError as exc:
        return {"exists": True, "readable": False, "error": f"cannot read certificates here: {exc}"}
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        cert = x509.load_pem_x509_certificate(data)
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        return {"exists": True, "readable": False, "error": str(exc)}
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    der = serialization.PublicFormat.SubjectPublicKeyInfo
    key_matches = (cert.public_key().public_bytes(serialization.Encoding.DER, der)
                   == key.public_key().public_bytes(serialization.Encoding.DER, der))
    not_after = getattr(cert, "not_valid_after_utc", None)
    if not_after is None:  # cryptography < 42 (Debian 12 has 38): a naive datetime in UTC
        not_after = cert.not_valid_after.replace(tzinfo=datetime.UTC)
    return {"exists": True, "readable": True, "common_name": common[0].value if common else None,
            "names": sorted(names), "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days_left": (not_after - datetime.datetime.now(datetime.UTC)).days,
            "key_matches": key_matches}


def read_public_keys(paths: list) -> dict:
    """{path: public key PEM (SubjectPublicKeyInfo, as openssl_privatekey_info returns it)} of the private
    key files that exist and can be read here; the others are left out for the caller to read otherwise."""
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        return {}
    keys = {}
    for path in paths:
        try:
            with open(path, "rb") as handle:
                key = serialization.load_pem_private_key(handle.read(), password=None)
        except (OSError, ValueError, TypeError):
            continue
        keys[path] = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    return keys


def group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True
