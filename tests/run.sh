#!/usr/bin/env bash
# Runs every kfbox check and test: formatting, lints, unit tests and the end-to-end tests
# (the real kfbox binary, pipelines compiled by the real kfp SDK, the shared conformance corpus).
#
# The end-to-end tests need a Python with the kfp SDK to compile pipelines; it is created here
# once, under the cargo target directory, with pip from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/test-python"
if ! "$venv/bin/python" -c 'import kfp' 2>/dev/null; then
  echo "creating $venv with the kfp SDK (once)" >&2
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'kfp==2.17.0'
fi
export KFBOX_TEST_PYTHON="$venv/bin/python"
# ML Metadata pins protobuf<5 and kfp>=6: it reads kfbox's store from a venv of its own.
mlmd="$target/mlmd-python"
if ! "$mlmd/bin/python" -c 'import ml_metadata' 2>/dev/null; then
  echo "creating $mlmd with ml-metadata (once)" >&2
  rm -rf "$mlmd"
  "${PYTHON:-python3}" -m venv "$mlmd"
  "$mlmd/bin/python" -m pip install --quiet --disable-pip-version-check 'ml-metadata==1.17.1'
fi
export KFBOX_TEST_MLMD_PYTHON="$mlmd/bin/python"
# One kfbox home for all tests, kept between runs: its managed Python environment is built once.
export KFBOX_TEST_HOME="$target/kfbox-test-home"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --success-output final
else
  cargo test --workspace --locked --no-fail-fast
fi
