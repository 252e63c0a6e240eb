#!/usr/bin/env bash
# What CI cannot show: `kfbox cluster` with the real rancher/k3s image. Run on a connected
# machine with Docker (not run by CI); it prints the timings and memory to report.
#
#   tests/cluster-e2e.sh [path/to/kfbox]
#
# Set KFBOX_E2E_PYTHON to a Python with kfp to send a run with `--target cluster`, and
# KFBOX_E2E_GPU=1 on a machine with an NVIDIA GPU (driver and Docker's GPU support) to build
# the GPU node image and check --gpus too.
set -euo pipefail
kfbox="${1:-$(command -v kfbox || echo target/release/kfbox)}"
name="e2e$$"
home="$(mktemp -d)"
export KFBOX_HOME="$home"
container="kfbox-cluster-$name"
kubeconfig="$home/clusters/$name/kubeconfig.yaml"
image="rancher/k3s:v1.35.5-k3s1"
cleanup() { "$kfbox" cluster down --name "$name" >/dev/null 2>&1 || true; rm -rf "$home"; }
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
in_node() { docker exec "$container" kubectl "$@"; }
# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds, at most SECONDS.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out after ${limit} s waiting for $what" >&2; exit 1; }
    sleep 1
  done
}
node_ready() { in_node get nodes | grep -q ' Ready '; }

start=$(now)
docker image inspect "$image" >/dev/null 2>&1 || docker pull -q "$image" >/dev/null
echo "image present:      $(since "$start")"

# The node, then Kubeflow Pipelines: `up` returns once every component is ready.
start=$(now)
"$kfbox" cluster up --name "$name"
echo "node and KFP ready: $(since "$start")"
wait_for 60 "the node to be Ready" node_ready
"$kfbox" cluster status --name "$name"
# The KFP API answers, through the Kubernetes API server's service proxy.
in_node get --raw "/api/v1/namespaces/kubeflow/services/ml-pipeline:8888/proxy/apis/v2beta1/healthz"
echo

# From the host, through the published port and the rewritten kubeconfig.
if command -v kubectl >/dev/null; then
  kubectl --kubeconfig "$kubeconfig" get nodes -o wide
else
  echo "(no kubectl on the host: skipped the host-side check)"
fi
in_node get pods -A
echo "memory with KFP:    $(docker stats --no-stream --format '{{.MemUsage}}' "$container")"

# The same file on the cluster: a pipeline compiled by the SDK (KFBOX_E2E_PYTHON: a Python
# with kfp; the SDK's pip prelude needs the node to reach PyPI here).
if [ -n "${KFBOX_E2E_PYTHON:-}" ]; then
  pipeline="$home/conditions.yaml"
  "$KFBOX_E2E_PYTHON" tests/pipelines/compile.py tests/pipelines/conditions.py "$pipeline"
  start=$(now)
  "$kfbox" run "$pipeline" --param value=12 --target "cluster:$name"
  echo "run on the cluster: $(since "$start")"
fi
# A second up applies the same objects again: nothing changes, nothing fails.
start=$(now)
"$kfbox" cluster up --name "$name"
echo "up again (re-apply): $(since "$start")"

start=$(now)
docker restart -t 10 "$container" >/dev/null
"$kfbox" cluster up --name "$name"
wait_for 300 "the node to be Ready again" node_ready
echo "restart to Ready:   $(since "$start")"

"$kfbox" cluster down --name "$name"

# The offline bundle: every pinned image, then a node that boots from it with what it imported.
bundle="$home/bundle"
start=$(now)
"$kfbox" cluster bundle "$bundle"
echo "bundle written:     $(since "$start"), $(du -sh "$bundle" | cut -f1)"
start=$(now)
# Offline as far as the node goes: no image may be pulled (each is in the bundle).
"$kfbox" cluster up --name "$name" --bundle "$bundle"
echo "KFP from bundle ready: $(since "$start")"
images_imported() { docker exec "$container" crictl images | grep -q kfp-driver; }
wait_for 60 "k3s to import the bundle" images_imported
if in_node get events -A | grep -q 'Pulling image'; then
  echo "an image was pulled although the bundle holds them all:" >&2
  in_node get events -A | grep 'Pulling image' >&2
  exit 1
fi
"$kfbox" cluster down --name "$name"

if [ "${KFBOX_E2E_GPU:-}" = 1 ]; then
  start=$(now)
  "$kfbox" images build-gpu-node
  echo "GPU node image built: $(since "$start")"
  # `up` waits for every component, GPUs included: the device plugin advertising nvidia.com/gpu.
  start=$(now)
  "$kfbox" cluster up --name "$name" --gpus all
  echo "GPU node allocatable nvidia.com/gpu: $(in_node get nodes -o jsonpath='{.items[0].status.allocatable.nvidia\.com/gpu}') after $(since "$start")"
  "$kfbox" cluster down --name "$name"
fi
echo "ok"
