#!/usr/bin/env bash
# make bench (rig part): furui vs tcpdump -w /dev/null, softflowd and
# pmacctd on one veth rig, in one run. Receiver pinned to core 0, trafgen
# to core 1. Needs root; creates and deletes its own namespaces.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 deploy/bench/veth_rig.py "$@"
