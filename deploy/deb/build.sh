#!/usr/bin/env bash
# make deb: builds target/deb/furui_<version>_<arch>.deb with dpkg-deb from
# the release binary. Installs: /usr/bin/furui, the systemd unit (not
# enabled, not started), /etc/furui (config template, prefixes, rules; all
# conffiles), the Prometheus rules and scrape config, the Grafana
# dashboard and the README. postinst creates the `furui` system user and
# its state directory; nothing runs until an operator enables the unit.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${FURUI_BIN:-target/release/furui}
[ -x "$BIN" ] || cargo build --release --bin furui
VERSION=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
ARCH=$(dpkg --print-architecture)
PKG=target/deb/furui_${VERSION}_${ARCH}
rm -rf "$PKG" && mkdir -p "$PKG/DEBIAN"

install -D -m 0755 "$BIN" "$PKG/usr/bin/furui"
strip --strip-unneeded "$PKG/usr/bin/furui"
install -D -m 0644 deploy/systemd/furui.service "$PKG/lib/systemd/system/furui.service"
install -D -m 0640 config/furui.toml "$PKG/etc/furui/furui.toml"
install -D -m 0640 config/prefixes/domestic.txt "$PKG/etc/furui/prefixes/domestic.txt"
for r in config/rules/*.toml; do
  install -D -m 0640 "$r" "$PKG/etc/furui/rules/$(basename "$r")"
done
install -D -m 0644 deploy/prometheus/furui-alerts.yml "$PKG/usr/share/furui/prometheus/furui-alerts.yml"
install -D -m 0644 deploy/prometheus/prometheus.yml "$PKG/usr/share/furui/prometheus/prometheus.yml"
install -D -m 0644 deploy/grafana/furui.json "$PKG/usr/share/furui/grafana/furui.json"
install -D -m 0644 README.md "$PKG/usr/share/doc/furui/README.md"
printf 'furui\nLicense: see the project repository.\n' > "$PKG/usr/share/doc/furui/copyright"

(cd "$PKG" && find etc -type f | sed 's|^|/|' | sort) > "$PKG/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: furui
Version: $VERSION
Architecture: $ARCH
Maintainer: furui maintainers <furui@localhost>
Installed-Size: $SIZE
Depends: libc6, libelf1, zlib1g, adduser
Section: net
Priority: optional
Description: capture appliance: XDP jurisdiction classifier, AF_XDP capture, erasure
 furui pre-selects cross-border traffic in XDP, captures it through AF_XDP,
 keeps only mechanical information selected as related to attacks, erases
 every frame, and exports de-identified records. The service is installed
 but neither enabled nor started: edit /etc/furui/furui.toml, check it with
 'furui check-config', then 'systemctl enable --now furui'.
CONTROL

cat > "$PKG/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd furui >/dev/null; then
    adduser --system --group --no-create-home --home /var/lib/furui \
      --shell /usr/sbin/nologin --gecos "furui capture appliance" furui >/dev/null
  fi
  install -d -o furui -g furui -m 0700 /var/lib/furui
  chown -R root:furui /etc/furui
  chmod 0750 /etc/furui /etc/furui/prefixes /etc/furui/rules
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
  fi
  echo "furui: installed, not started. Edit /etc/furui/furui.toml, run 'furui check-config /etc/furui/furui.toml', then 'systemctl enable --now furui'."
fi
POSTINST

cat > "$PKG/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop furui.service >/dev/null 2>&1 || true
  systemctl disable furui.service >/dev/null 2>&1 || true
fi
PRERM

cat > "$PKG/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  # Records are erased with the package's state; the system user stays
  # (Debian practice: files elsewhere may still belong to it).
  rm -rf /var/lib/furui /etc/furui
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null || true
fi
POSTRM
chmod 0755 "$PKG/DEBIAN/postinst" "$PKG/DEBIAN/prerm" "$PKG/DEBIAN/postrm"

dpkg-deb --root-owner-group -Zxz --build "$PKG" "$PKG.deb" >/dev/null
echo "$PKG.deb"
