"""Node selectors on GPU product labels choose among a machine's kinds of GPU, as they choose a
node on a cluster; other scheduling settings are recorded and said, not applied."""
from kfp import dsl, kubernetes

from gpu import hold


@dsl.pipeline(name="gpu-product")
def pipeline():
    a100 = hold(tag="a100").set_gpu_limit(1)
    kubernetes.add_node_selector(a100, "nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB")
    t4 = hold(tag="t4").set_gpu_limit(1)
    kubernetes.add_node_selector(t4, "cloud.google.com/gke-accelerator", "nvidia-tesla-t4")
    kubernetes.add_toleration(t4, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    l4 = hold(tag="l4").set_gpu_limit(1)
    kubernetes.add_node_selector(l4, "cloud.google.com/gke-accelerator", "nvidia-l4")
    plain = hold(tag="plain")
    kubernetes.add_node_selector(plain, "disktype", "ssd")
