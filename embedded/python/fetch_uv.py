"""Put kfbox's package installer (uv, from its wheel on PyPI) at a given path.

Run by kfbox with the user's own Python and nothing but its standard library, so that it works
where pip or venv are missing. Usage:

    python fetch_uv.py VERSION DESTINATION DOWNLOAD_DIR [--offline] [--wheels DIR]...

The wheel for this machine is looked for in DOWNLOAD_DIR and each --wheels DIR first; otherwise
(unless --offline) it is downloaded from the package index (UV_DEFAULT_INDEX, UV_INDEX_URL or
PIP_INDEX_URL, else PyPI) into DOWNLOAD_DIR, its SHA-256 checked against the index's. Proxies
and certificates are the system's, as for any urllib client.
"""

import hashlib
import json
import os
import platform
import stat
import sys
import urllib.parse
import urllib.request
import zipfile


def wanted(tag):
    """Whether a wheel's platform tag (one of its dot-separated parts) suits this machine."""
    machine = platform.machine().lower()
    if sys.platform == "darwin":
        machine = "arm64" if machine in ("arm64", "aarch64") else "x86_64"
        return tag.startswith("macosx_") and tag.endswith("_" + machine)
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    family = "manylinux" if platform.libc_ver()[0] == "glibc" else "musllinux"
    return tag.startswith(family) and tag.endswith("_" + machine)


def matches(filename, version):
    prefix = "uv-%s-" % version
    if not (filename.startswith(prefix) and filename.endswith(".whl")):
        return False
    return any(wanted(tag) for tag in filename[: -len(".whl")].split("-")[-1].split("."))


def local_wheel(version, dirs):
    for directory in dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if matches(name, version):
                return os.path.join(directory, name)
    return None


def index_url():
    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(var):
            return os.environ[var].rstrip("/")
    return "https://pypi.org/simple"


def download(version, download_dir):
    page = index_url() + "/uv/"
    request = urllib.request.Request(
        page, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    candidates = [f for f in files if matches(f["filename"], version)]
    if not candidates:
        sys.exit("%s lists no uv %s wheel for this machine (%s)" % (page, version, platform.platform()))
    chosen = candidates[0]
    url = urllib.parse.urljoin(page, chosen["url"])
    expected = chosen.get("hashes", {}).get("sha256")
    os.makedirs(download_dir, exist_ok=True)
    target = os.path.join(download_dir, chosen["filename"])
    partial = target + ".part"
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        done = shown = 0
        while True:
            block = response.read(1 << 16)
            if not block:
                break
            digest.update(block)
            out.write(block)
            done += len(block)
            if done - shown >= 1 << 20 or done == total:
                print("bytes %d %d" % (done, total), flush=True)
                shown = done
    if expected and digest.hexdigest() != expected:
        os.remove(partial)
        sys.exit("%s: SHA-256 %s, the index says %s" % (url, digest.hexdigest(), expected))
    os.replace(partial, target)
    return target


def main():
    version, destination, download_dir = sys.argv[1:4]
    rest = sys.argv[4:]
    offline = "--offline" in rest
    wheelhouses = [rest[i + 1] for i, a in enumerate(rest) if a == "--wheels"]
    wheel = local_wheel(version, [download_dir] + wheelhouses)
    if wheel is None:
        if offline:
            sys.exit(
                "no uv %s wheel for this machine in %s"
                % (version, ", ".join([download_dir] + wheelhouses))
            )
        wheel = download(version, download_dir)
    member = "uv-%s.data/scripts/uv" % version
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(member)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    partial = destination + ".part"
    with open(partial, "wb") as out:
        out.write(data)
    os.chmod(partial, stat.S_IRWXU)
    os.replace(partial, destination)
    print("wheel %s" % wheel, flush=True)


if __name__ == "__main__":
    main()
