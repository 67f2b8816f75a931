#!/usr/bin/env bash
# make demo: a private namespace pair joined by a veth, furui on one end,
# traffic of every class from the other, then a readable summary. Cleans
# up everything it created, on success and on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "make demo needs root (XDP, AF_XDP, namespaces)"; exit 1; }
FURUI=$PWD/target/release/furui
GEN=$PWD/target/release/furui-gen
NS_CAP=furui-demo-cap
NS_GEN=furui-demo-gen
CAP_IF=fu-demo-cap      # must match config/demo.toml
GEN_IF=fu-demo-gen
RECORDS=/tmp/furui-demo/records.jsonl
PID=

cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  ip netns del "$NS_CAP" 2>/dev/null || true
  ip netns del "$NS_GEN" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

step() { printf '\n== %s\n' "$*"; }

step "creating namespaces $NS_CAP and $NS_GEN joined by a veth pair"
ip netns add "$NS_CAP"; ip netns add "$NS_GEN"
for ns in "$NS_CAP" "$NS_GEN"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
ip -n "$NS_CAP" link add "$CAP_IF" type veth peer name "$GEN_IF" netns "$NS_GEN"
ip -n "$NS_CAP" link set "$CAP_IF" up
ip -n "$NS_GEN" link set "$GEN_IF" up
ip netns exec "$NS_CAP" ethtool -K "$CAP_IF" gro off >/dev/null 2>&1 || true

step "starting furui with config/demo.toml"
rm -rf /tmp/furui-demo; mkdir -p "$(dirname "$RECORDS")"
ip netns exec "$NS_CAP" "$FURUI" run --config config/demo.toml 2>/tmp/furui-demo/furui.log &
PID=$!
for _ in $(seq 1 100); do
  ip netns exec "$NS_CAP" "$FURUI" stats >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat /tmp/furui-demo/furui.log; exit 1; }
  sleep 0.1
done
ip -n "$NS_CAP" link show "$CAP_IF" | grep -o 'prog/xdp id [0-9]* name [a-z_]*' || true

gen() { ip netns exec "$NS_GEN" "$GEN" --iface "$GEN_IF" --marker "DEMO-PAYLOAD" "$@" >/dev/null; }
step "sending traffic (domestic 192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32; indicators 203.0.113.0/24, 2001:4860:dead::/48)"
echo "  domestic:  300 frames (v4 + v6)                      -> must never reach user space"
gen --count 150 --flow 192.0.2.1,198.51.100.7 --flow 2001:db8::1,2001:db8:2::2,tcp
echo "  inbound:   200 frames, half from an indicator (TCP biflow)"
gen --count 100 --flow 203.0.113.66,192.0.2.10,tcp,4444,443 --flow 198.18.0.9,192.0.2.10,udp
gen --count 40 --flow 192.0.2.10,203.0.113.66,tcp,443,4444
echo "  outbound:  100 frames to an IPv6 indicator"
gen --count 100 --flow 2001:db8::10,2001:4860:dead::53,udp,5353,53
echo "  transit:   200 frames (v4 and VLAN-tagged v6)"
gen --count 100 --flow 8.8.8.8,9.9.9.9
gen --count 100 --vlan 100 --vlan 200 --flow 2a00:1450::1,2001:4860::8888,icmp
echo "  outbound:  5 frames carrying a command string a sealed rule knows (no indicator address)"
ip netns exec "$NS_GEN" "$GEN" --iface "$GEN_IF" --marker "EVIL-CMD" --count 5 --flow 192.0.2.77,198.18.7.7,udp,5000,8080 >/dev/null
echo "  tunnelled: the carrier's feeds, router and probe in the carrier's own space (outer 192.0.2.1 -> 192.0.2.2):"
echo "             VXLAN 5001, GTP-U, MPLS, ERSPAN II: 20 domestic + 20 inbound inner frames each (cut on the inner header)"
for e in vxlan:5001 gtpu:305419896 mpls:1000 erspan2:666; do
  gen --count 20 --encap "$e,192.0.2.1,192.0.2.2" --flow 192.0.2.20,198.51.100.20 --flow 203.0.113.80,192.0.2.20,udp,7000,53
done
echo "             VXLAN with a foreign outer header and a domestic inner one: 20 frames -> never captured"
gen --count 20 --encap vxlan:7,203.0.113.1,8.8.4.4 --flow 192.0.2.30,198.51.100.30
echo "  non-IP:    25 ARP frames; malformed: 25 IPv4 frames with IHL 4"
gen --non-ip 25 --malformed 25
sleep 3   # flows go idle after 2 s and become records

step "furui stats"
ip netns exec "$NS_CAP" "$FURUI" stats

step "waiting for the retention period (demo: about 10 s) to end: records purged, epoch keys destroyed"
for _ in $(seq 1 300); do
  [ -z "$(ls -A /tmp/furui-demo/retention-keys 2>/dev/null)" ] && break
  sleep 0.1
done
echo "  epoch key files left: $(ls /tmp/furui-demo/retention-keys | wc -l)"

step "stopping furui (SIGTERM)"
kill -TERM "$PID"; wait "$PID"; PID=
tail -n 1 /tmp/furui-demo/furui.log
if ip -n "$NS_CAP" link show "$CAP_IF" | grep -q prog/xdp; then echo "XDP still attached!"; exit 1; fi
echo "XDP program detached from $CAP_IF"

step "records ($RECORDS): $(wc -l <"$RECORDS") selected flows"
cat "$RECORDS"
grep -q -e DEMO-PAYLOAD -e EVIL-CMD "$RECORDS" && { echo "payload found in records!"; exit 1; }
grep -q '"rules":\["beacon-command"\]' "$RECORDS" || { echo "the sealed-signature rule did not select its flow"; exit 1; }
grep -q '"encap":"vxlan","tunnel_id":5001,"protocol":17,"initiator":"203.0.113.80"' "$RECORDS" \
  || { echo "no record of the inner flow in VXLAN 5001"; exit 1; }
echo
echo "No record holds payload (the beacon-command record names its rule, not the bytes);"
echo "unselected flows (198.18.0.9, 8.8.8.8, ...) left nothing behind but counters."

AUDIT=/tmp/furui-demo/audit
step "what an inspector checks, from the trail and the public key alone"
"$FURUI" audit verify "$AUDIT" --pubkey "$AUDIT/appliance.pub"
for c in capture erasure exports retention; do
  "$FURUI" audit check "$c" "$AUDIT" --pubkey "$AUDIT/appliance.pub"
done
"$FURUI" report --period hour --from "$(date -u -d '-1 hour' +%Y-%m-%dT%H:00:00Z)" \
  --to "$(date -u -d '+1 hour' +%Y-%m-%dT%H:00:00Z)" --out /tmp/furui-demo/report "$AUDIT" >/dev/null
echo
echo "transparency report: /tmp/furui-demo/report/report.html (and report.json)"
