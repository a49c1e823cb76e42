#!/usr/bin/env bash
# Builds the PowerMTA TEST DOUBLE package (never the product) with dpkg-deb.
# Usage: tests/pmta_test_double/build.sh [OUTPUT_DIR]   (default: build/pmta-test-double)
# Prints the path of the .deb. Same sources -> byte-identical .deb, so roles stay idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/build/pmta-test-double}
grammar=$repo/plugins/module_utils/_pmta_config

if [ ! -f "$grammar/__init__.py" ]; then
    echo "build.sh: $grammar/__init__.py is missing: the config grammar is needed by the test double" >&2
    exit 1
fi

# The version grows with the newest source file (so an edit upgrades the test hosts) and carries a hash
# of everything packaged (so the same sources give the same version and the same .deb).
sources=$(cd "$repo" && find tests/pmta_test_double plugins/module_utils/_pmta_config -type f \
    \( -name '*.py' -o -name '*.service' -o -name 'post*' -o -name 'pre*' -o -name 'config' -o -name build.sh \) \
    -not -path '*/__pycache__/*' -not -name 'test_*' | LC_ALL=C sort)
hash=$(cd "$repo" && echo "$sources" | xargs sha256sum | sha256sum | cut -c1-10)
newest=$(cd "$repo" && echo "$sources" | xargs stat -c %Y | sort -n | tail -1)
version="0.1.$newest+td.$hash"

root=$out/root
rm -rf "$root"
lib=$root/usr/lib/pmta-test-double
install -d "$root/DEBIAN" "$root/usr/sbin" "$lib" "$root/lib/systemd/system" "$root/usr/share/pmta-test-double" \
    "$root/usr/share/doc/pmta-test-double" "$root/etc/pmta/conf.d" "$root/var/spool/pmta" "$root/var/log/pmta"
# The three programs are thin launchers of the Python package.
for launcher in pmtad:daemon pmta:cli pmtahttpd:httpd; do
    cat > "$root/usr/sbin/${launcher%%:*}" <<LAUNCHER
#!/usr/bin/python3
# TEST DOUBLE — not PowerMTA (mailops.powermta test suite).
import sys

sys.path.insert(0, "/usr/lib/pmta-test-double")
from pmta_test_double.${launcher##*:} import main  # noqa: E402

sys.exit(main())
LAUNCHER
    chmod 0755 "$root/usr/sbin/${launcher%%:*}"
done
install -m 0644 "$here"/systemd/pmta.service "$here"/systemd/pmtahttp.service "$root/lib/systemd/system/"
install -m 0644 "$here/etc/config" "$root/usr/share/pmta-test-double/config.sample"
install -m 0644 "$here/README.md" "$root/usr/share/doc/pmta-test-double/README.md"
for package in pmta_test_double _pmta_config; do
    src=$here/pmta_test_double
    [ "$package" = _pmta_config ] && src=$grammar
    install -d "$lib/$package"
    find "$src" -maxdepth 1 -name '*.py' -exec install -m 0644 {} "$lib/$package/" \;
done
install -m 0755 "$here"/debian/postinst "$here"/debian/prerm "$here"/debian/postrm "$root/DEBIAN/"
installed_kb=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: pmta-test-double
Version: $version
Architecture: all
Maintainer: mailops.powermta contributors <maintainers@example.com>
Depends: python3 (>= 3.11), python3-dnspython, passwd
Conflicts: powermta
Section: mail
Priority: optional
Installed-Size: $installed_kb
Description: TEST DOUBLE — not PowerMTA
 A stand-in for PowerMTA used only by the mailops.powermta test suite.
 It installs pmtad, pmta and pmtahttpd look-alikes that read the config as the
 v5.0 User's Guide describes it, accept SMTP, deliver it by MX over real SMTP
 (queues, rollups, rates, backoff, pools, cold vMTAs) and write accounting
 records. It is not PowerMTA and contains no PowerMTA code.
CONTROL

# The bundled grammar must import standalone: the double uses its parser and the schema's name index.
PYTHONPATH=$lib python3 -c 'from _pmta_config import parse_path, schema; schema.lookup' || {
    echo "build.sh: the bundled _pmta_config has no parse_path()/schema" >&2; exit 1; }

export SOURCE_DATE_EPOCH=1700000000
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb=$out/pmta-test-double_${version}_all.deb
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
# A stable name for playbooks and Molecule.
cp -f "$deb" "$out/pmta-test-double_all.deb"
echo "$out/pmta-test-double_all.deb"
