#!/usr/bin/env bash
# Runs every kfbox check and test: formatting, lints, unit tests and the end-to-end tests
# (the real kfbox binary, pipelines compiled by the real kfp SDK, the shared conformance corpus).
#
# The end-to-end tests need a Python with the kfp SDK to compile pipelines; it is created here
# once, under the cargo target directory, with pip from PyPI.
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
# ML Metadata pins protobuf<5 and kfp>=6: it reads kfbox's store from a venv of its own.
venv_with "$target/mlmd-python" ml_metadata 'ml-metadata==1.17.1'
export KFBOX_TEST_MLMD_PYTHON="$target/mlmd-python/bin/python"
# One kfbox home for all tests, kept between runs: its managed Python environment is built once.
export KFBOX_TEST_HOME="$target/kfbox-test-home"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --success-output final
else
  cargo test --workspace --locked --no-fail-fast
fi
