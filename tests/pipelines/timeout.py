"""`kfp.kubernetes.set_timeout`: a step that would sleep 10 s is stopped at its 2 s deadline,
as a pod's activeDeadlineSeconds stops it on a cluster; a quick one under the same limit ends."""
from kfp import dsl, kubernetes

from parallel import nap


@dsl.pipeline(name="timeout")
def pipeline(long: float = 10.0):
    quick = nap(seconds=0.1)
    kubernetes.set_timeout(quick, 2)
    slow = nap(seconds=long).after(quick)
    kubernetes.set_timeout(slow, 2)
