#!/bin/sh
# Build a Debian base image with python3 from Debian's own packages (debootstrap), for machines
# that reach Debian's mirror but no container registry. Usage: images/base/build.sh [TAG]
# Needs root, debootstrap and a running Docker daemon.
set -eu
tag=${1:-kfbox/base:bookworm}
suite=${KFBOX_BASE_SUITE:-bookworm}
mirror=${KFBOX_BASE_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv "$suite" "$root" "$mirror" >&2
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/sh"]' - "$tag"
