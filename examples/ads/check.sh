#!/usr/bin/env bash
# Checks the ADS example against a running Courier and xds_server (see README.md):
# the listener (LDS) routes by its RDS table to the EDS cluster's endpoint.
set -euo pipefail
stat() { curl -s localhost:9901/stats | awk -F': ' -v name="$1" '$1 == name {print $2}'; }
body=$(curl -s localhost:10000/)
[[ $body == "hello from backend" ]] || { echo "listener from ADS answered '$body'" >&2; exit 1; }
state=$(stat control_plane.connected_state)
[[ $state == 1 ]] || { echo "control_plane.connected_state is '$state'" >&2; exit 1; }
routes=$(stat http.ingress.rds.ingress_routes.update_success)
[[ ${routes:-0} -ge 1 ]] || { echo "no route table from RDS (update_success '$routes')" >&2; exit 1; }
hosts=$(stat cluster.backend.membership_total)
[[ $hosts == 1 ]] || { echo "cluster backend has '$hosts' endpoint(s) from EDS, expected 1" >&2; exit 1; }
echo "ads example OK"
