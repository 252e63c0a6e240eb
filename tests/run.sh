#!/usr/bin/env bash
# Runs every kfbox check and test: formatting, lints, unit tests and the end-to-end tests
# (the real kfbox binary, pipelines compiled by the real kfp SDK, the shared conformance corpus).
#
# The end-to-end tests need a Python with the kfp SDK to compile pipelines; it is created here
# once, under the cargo target directory, with pip from PyPI. They also need a Docker daemon
# (.ci/run starts one).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"

# venv_with DIR MODULE REQUIREMENT: a virtual environment at DIR that can import MODULE,
# created once with pip from PyPI.
venv_with() {
  if ! "$1/bin/python" -c "import $2" 2>/dev/null; then
    echo "creating $1 with $3 (once)" >&2
    rm -rf "$1"
    "${PYTHON:-python3}" -m venv "$1"
    "$1/bin/python" -m pip install --quiet --disable-pip-version-check "$3"
  fi
}
venv_with "$target/test-python" kfp 'kfp==2.17.0'
export KFBOX_TEST_PYTHON="$target/test-python/bin/python"
# zig, from PyPI, builds the WebAssembly test modules (tests/wasi/*.c).
if ! "$KFBOX_TEST_PYTHON" -c 'import ziglang' 2>/dev/null; then
  "$KFBOX_TEST_PYTHON" -m pip install --quiet --disable-pip-version-check 'ziglang==0.17.1'
fi
# Playwright drives Debian's chromium in the UI tests (tests/ui); it needs no browser download.
if ! "$KFBOX_TEST_PYTHON" -c 'import playwright' 2>/dev/null; then
  "$KFBOX_TEST_PYTHON" -m pip install --quiet --disable-pip-version-check 'playwright==1.65.2'
fi
# kfp-kubernetes compiles the `kfp.kubernetes` settings (volumes, secrets, timeouts) into
# platform_spec, as on a cluster.
if ! "$KFBOX_TEST_PYTHON" -c 'import kfp.kubernetes' 2>/dev/null; then
  "$KFBOX_TEST_PYTHON" -m pip install --quiet --disable-pip-version-check 'kfp-kubernetes==2.17.0'
fi
# maturin builds kfbox's wheel in the install test (tests/install.rs).
if ! "$KFBOX_TEST_PYTHON" -c 'import maturin' 2>/dev/null; then
  "$KFBOX_TEST_PYTHON" -m pip install --quiet --disable-pip-version-check 'maturin==1.16.0'
fi
export KFBOX_TEST_CHROMIUM="${KFBOX_TEST_CHROMIUM:-$(command -v chromium || true)}"
if [ -z "$KFBOX_TEST_CHROMIUM" ]; then
  echo "error: the UI tests need Chromium (Debian: sudo apt-get install -y chromium)" >&2
  exit 2
fi
# schemathesis checks the API against its OpenAPI document; its dependencies are its own.
venv_with "$target/schemathesis-python" schemathesis 'schemathesis==4.32.5'
export KFBOX_TEST_SCHEMATHESIS="$target/schemathesis-python/bin/st"
# ML Metadata pins protobuf<5 and kfp>=6: it reads kfbox's store from a venv of its own.
venv_with "$target/mlmd-python" ml_metadata 'ml-metadata==1.17.1'
export KFBOX_TEST_MLMD_PYTHON="$target/mlmd-python/bin/python"
# kubernetes-validate checks the cluster install against Kubernetes' own schemas, offline.
venv_with "$target/kubernetes-validate-python" kubernetes_validate 'kubernetes-validate==1.37.0'
export KFBOX_TEST_KUBERNETES_VALIDATE="$target/kubernetes-validate-python/bin/kubernetes-validate"
# One kfbox home for all tests, kept between runs: its managed Python environment is built once.
export KFBOX_TEST_HOME="$target/kfbox-test-home"

# The Docker tests need a daemon and a base image with python3; no registry is reachable from
# CI, so the image is built once from Debian's packages (images/base/build.sh, as root).
if ! docker info >/dev/null 2>&1; then
  echo "error: no Docker daemon answers (start one: sudo dockerd &)" >&2
  exit 2
fi
if ! docker image inspect kfbox/base:bookworm >/dev/null 2>&1; then
  echo "building kfbox/base:bookworm with debootstrap (once)" >&2
  if [ "$(id -u)" = 0 ]; then images/base/build.sh; else sudo images/base/build.sh; fi
fi

# The UI compiled into kfbox must be what its sources build: rebuild it from the lockfile and
# fail if the committed copy differs.
(cd embedded/ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
if ! git diff --quiet -- embedded/ui/dist; then
  echo "error: embedded/ui/dist is stale: commit what \`npm run build\` in embedded/ui wrote:" >&2
  git diff --stat -- embedded/ui/dist >&2
  exit 1
fi

cargo fmt --all -- --check
(cd sandbox/spec/fuzz && cargo fmt -- --check)
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --success-output final
else
  cargo test --workspace --locked --no-fail-fast
fi

# Fuzz the pipeline loader, validator and placeholder expansion for a minute, from KFP's own
# compiled pipelines (sandbox/spec/fuzz; README says how to run it longer). Any crash, abort
# or hang fails. libFuzzer comes from crates.io through cargo-fuzz; without a sanitizer it
# builds with the stable toolchain, in a target directory of its own (other compiler flags).
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (once)" >&2
  cargo install --locked --quiet cargo-fuzz@0.13.2
fi
corpus="$target/fuzz-corpus/pipeline"
mkdir -p "$corpus"
(cd sandbox/spec && CARGO_TARGET_DIR="$target/fuzz" cargo fuzz run --sanitizer none pipeline \
  "$corpus" "${KFBOX_CONFORMANCE_DIR:-$PWD/../../../shared/conformance/kfp-ir}" -- \
  -max_total_time="${KFBOX_FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
  -print_final_stats=1)
echo "fuzzing: no crash, abort or hang in ${KFBOX_FUZZ_SECONDS:-60} s" >&2
