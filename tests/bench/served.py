"""What the benchmarks that start `kfbox up` share: a free port, and whether the API answers."""
import socket
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url):
    try:
        with urllib.request.urlopen(url + "/apis/v2beta1/healthz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False
