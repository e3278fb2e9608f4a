#!/usr/bin/env bash
# Courier's one entry point for machines and people:
#   ci/do_ci.sh setup          install every Debian package the build, tests and benchmarks need
#   ci/do_ci.sh build          build //source/exe:courier
#   ci/do_ci.sh test           setup + build + every test; ends with "N passed, N failed"
#   ci/do_ci.sh run [CONFIG]   setup + build + run Courier in the foreground (default example)
#   ci/do_ci.sh bench          setup + build + Google Benchmarks + the peers comparison
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PACKAGES=(
  # build
  bazel-bootstrap bazel-rules-java default-jdk-headless g++ python3
  # libraries (see DESIGN.md for why each)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libnghttp2-dev libc-ares-dev libssl-dev libevent-dev libyaml-cpp-dev libre2-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev node-llhttp libxxhash-dev
  # tests and benchmarks: real peers on loopback
  curl nginx-light haproxy wrk nghttp2-client openssl util-linux procps gdb
)

BAZEL_FLAGS=(--jobs=2)

log() { printf 'do_ci: %s\n' "$*" >&2; }

setup() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing: ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The nginx package starts a system server on port 80; tests start their own.
  "${sudo[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
}

build() {
  bazel build "${BAZEL_FLAGS[@]}" //source/exe:courier
}

# Counts GoogleTest cases from the XML reports of the current test targets
# (a test target without a report counts as one failure).
summarize() {
  local labels
  labels=$(bazel query --noshow_progress 'tests(//test/...)' 2>/dev/null | grep '^//' || true)
  # shellcheck disable=SC2086
  python3 - "$ROOT/bazel-testlogs" $labels <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
passed = failed = skipped = 0
logs = pathlib.Path(sys.argv[1])
for label in sys.argv[2:]:
    pkg, name = label.lstrip("/").split(":")
    f = logs / pkg / name / "test.xml"
    try:
        root = ET.parse(f).getroot()
    except (OSError, ET.ParseError):
        failed += 1
        continue
    cases = list(root.iter("testcase"))
    if not cases:
        continue
    for c in cases:
        if c.find("failure") is not None or c.find("error") is not None:
            failed += 1
        elif c.get("status") == "notrun" or c.get("result") == "skipped" or c.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
}

test_all() {
  setup
  build
  local rc=0
  bazel test "${BAZEL_FLAGS[@]}" --keep_going --test_output=errors //test/... || rc=$?
  # Bazel exit 3: some tests failed (they are counted below); anything else
  # (build failure) must fail the run even if every report that exists passed.
  local line
  line=$(summarize)
  echo "$line"
  if [[ $rc -ne 0 ]]; then
    [[ $rc -eq 3 ]] || log "bazel test exited $rc"
    return 1
  fi
  [[ $line == *" 0 failed"* ]]
}

run() {
  setup
  build
  local config=${1:-examples/canary/bootstrap.yaml}
  exec "$ROOT/bazel-bin/source/exe/courier" -c "$config" "${@:2}"
}

bench() {
  setup
  build
  bazel build "${BAZEL_FLAGS[@]}" //test/benchmark/...
  for b in "$ROOT"/bazel-bin/test/benchmark/*_benchmark; do
    [[ -x $b ]] && "$b"
  done
  bash "$ROOT/../shared/bench/peers.sh" --ours "$ROOT/bazel-bin/source/exe/courier" "$@"
}

case ${1:-} in
  setup) setup ;;
  build) setup; build ;;
  test) test_all ;;
  run) shift; run "$@" ;;
  bench) shift; bench "$@" ;;
  *) echo "usage: ci/do_ci.sh setup|build|test|run [CONFIG]|bench" >&2; exit 2 ;;
esac
