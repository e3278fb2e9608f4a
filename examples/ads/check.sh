#!/usr/bin/env bash
# Checks the ADS example against a running Courier and xds_server (see README.md).
set -euo pipefail
body=$(curl -s localhost:10000/)
[[ $body == "hello from backend" ]] || { echo "listener from ADS answered '$body'" >&2; exit 1; }
state=$(curl -s localhost:9901/stats | awk -F': ' '$1 == "control_plane.connected_state" {print $2}')
[[ $state == 1 ]] || { echo "control_plane.connected_state is '$state'" >&2; exit 1; }
echo "ads example OK"
