#!/usr/bin/env bash
# HTTPS keep-alive load, side by side: nginx (ssl, one worker) and courier
# (one worker) terminate TLS on loopback and answer a small body themselves,
# so the figure is the cost of TLS + HTTP per request, no upstream. Rounds
# alternate between the two so drift in machine speed hits both.
#
# Loads: wrk (HTTP/1.1 over TLS) and h2load (h2 over TLS, ALPN), each for a
# bounded --duration. Servers are pinned to CPU 1, load generators to CPU 0.
# Per target and load (medians over rounds): rps, and server CPU (user+sys)
# per request in microseconds; then the courier/nginx ratios.
#
# Usage: https_peers.sh --ours BINARY [--rounds N] [--duration S] [--conns C]
# Needs: nginx (nginx-light), wrk, h2load (nghttp2-client), openssl, curl, taskset.
set -euo pipefail

ours="" rounds=3 duration=5 conns=32
while (($#)); do
  case $1 in
    --ours) ours=$(readlink -f "$2"); shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $ours ]] || { echo "https_peers.sh: --ours BINARY is required" >&2; exit 2; }
for tool in nginx wrk h2load openssl curl taskset; do
  command -v "$tool" >/dev/null || { echo "https_peers.sh: $tool is missing" >&2; exit 2; }
done

base=${BENCH_PORT_BASE:-19400}
dir=$(mktemp -d -t https_peers.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/key.pem" \
  -out "$dir/cert.pem" -days 2 -subj /CN=bench -addext subjectAltName=DNS:bench >/dev/null 2>&1
body=hello-from-the-benchmark

cat >"$dir/nginx.conf" <<CONF
worker_processes 1; daemon off; master_process off; user root;
pid $dir/nginx.pid; error_log $dir/nginx.err warn;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$((base + 1)) ssl http2 backlog=8192;
    ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { default_type text/plain; return 200 "$body"; }
  }
}
CONF

cat >"$dir/ours.yaml" <<CONF
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $((base + 902))}}
static_resources:
  listeners:
  - name: https
    address: {socket_address: {address: 127.0.0.1, port_value: $((base + 2))}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: $dir/cert.pem}
              private_key: {filename: $dir/key.pem}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "$body"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
CONF

declare -A pid_of port_of
taskset -c 1 nginx -c "$dir/nginx.conf" & pids+=($!); pid_of[nginx]=$!; port_of[nginx]=$((base + 1))
taskset -c 1 "$ours" -c "$dir/ours.yaml" --concurrency 1 --log-level warn >"$dir/ours.log" 2>&1 & pids+=($!)
pid_of[courier]=$!; port_of[courier]=$((base + 2))

wait_port() {
  for _ in $(seq 100); do
    curl -sk -o /dev/null "https://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "https_peers.sh: nothing answers HTTPS on port $1" >&2
  return 1
}
for t in nginx courier; do
  wait_port "${port_of[$t]}" || { tail -20 "$dir/ours.log" "$dir/nginx.err" >&2; exit 1; }
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

run_one() { # target load -> "rps cpu_us_per_req"
  local t=$1 load=$2 pid=${pid_of[$1]} out c0 c1 rps reqs
  c0=$(ticks "$pid")
  if [[ $load == wrk ]]; then
    out=$(taskset -c 0 wrk -t1 -c"$conns" -d"${duration}s" "https://127.0.0.1:${port_of[$t]}/")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  else
    out=$(taskset -c 0 h2load -c"$conns" -m10 -D"$duration" "https://127.0.0.1:${port_of[$t]}/" 2>&1)
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' <<<"$out")
    reqs=$(awk '/^requests:/ {print $8}' <<<"$out")
  fi
  c1=$(ticks "$pid")
  [[ -n $rps && -n $reqs && $reqs -gt 0 ]] || { echo "https_peers.sh: no result from $t ($load)" >&2; echo "$out" >&2; return 1; }
  echo "$rps $(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.2f", d / hz * 1e6 / n}')"
}
median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "HTTPS keep-alive, ${#body}-byte body, conns=$conns duration=${duration}s rounds=$rounds (servers on CPU 1, load on CPU 0)"
printf '%-8s %-7s %10s %11s\n' target load rps cpu_us/req
for load in wrk h2load; do
  declare -A res=() med_rps=() med_cpu=()
  for ((r = 1; r <= rounds; r++)); do
    for t in nginx courier; do res[$t]+="$(run_one "$t" "$load")"$'\n'; done
  done
  for t in nginx courier; do
    med_rps[$t]=$(awk 'NF {print $1}' <<<"${res[$t]}" | median)
    med_cpu[$t]=$(awk 'NF {print $2}' <<<"${res[$t]}" | median)
    printf '%-8s %-7s %10.0f %11s\n' "$t" "$load" "${med_rps[$t]}" "${med_cpu[$t]}"
  done
  awk -v a="${med_rps[courier]}" -v b="${med_rps[nginx]}" -v ca="${med_cpu[courier]}" -v cb="${med_cpu[nginx]}" -v l="$load" \
    'BEGIN {printf "ratio courier/nginx %s: rps %.2f, cpu_us/req %.2f\n", l, a / b, ca / cb}'
  unset res med_rps med_cpu
done
