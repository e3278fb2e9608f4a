#!/usr/bin/env bash
# Checks the canary example against a running Courier (see README.md).
set -euo pipefail
canary=$(curl -s -H 'Host: orders.example.com' -H 'x-canary-version: v2' localhost:8080/)
primary=$(curl -s -H 'Host: orders.example.com' localhost:8080/)
[[ $canary == us-west2-canary ]] || { echo "with x-canary-version: v2 got '$canary'" >&2; exit 1; }
[[ $primary == us-west2-primary ]] || { echo "without the header got '$primary'" >&2; exit 1; }
echo "canary example OK"
