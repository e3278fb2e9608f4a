#!/usr/bin/env bash
# Checks the default example against a running Courier (see README.md).
set -euo pipefail
[[ $(curl -s localhost:9901/ready) == LIVE ]] || { echo "admin /ready is not LIVE" >&2; exit 1; }
[[ $(curl -s localhost:10000/ready) == LIVE ]] || { echo "TCP proxy to admin failed" >&2; exit 1; }
curl -s localhost:9901/stats | grep -q '^tcp.to_admin.downstream_cx_total: [1-9]' || { echo "no tcp_proxy stats" >&2; exit 1; }
echo "default example OK"
