#!/usr/bin/env bash
# Makes podium/cxx-builder:bookworm — Debian 12 with g++ — from Debian's packages (mmdebstrap)
# and pushes it to the cluster registry. It is the build stage of examples/hello's multi-stage
# Dockerfile, playing the part golang:1.21-alpine plays in the seed (Docker Hub is out of reach
# on these machines). The root filesystem is cached, so later runs only import and push it.
#
# Usage: scripts/cxx-builder-image.sh [--registry HOST:PORT] [--data-dir DIR]
set -euo pipefail
registry=127.0.0.1:5000
data_dir=/var/lib/podium
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    *) echo "usage: $0 [--registry HOST:PORT] [--data-dir DIR]" >&2; exit 2 ;;
  esac
done
image=podium/cxx-builder
tag=bookworm
accept='application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json'
if curl -sf -o /dev/null -H "Accept: $accept" "http://$registry/v2/$image/manifests/$tag"; then
  exit 0
fi
cache=${PODIUM_CACHE_DIR:-/var/cache/podium}
rootfs=$cache/cxx-builder-bookworm.tar
mkdir -p "$cache"
if [ ! -s "$rootfs" ]; then
  echo "cxx-builder: creating a Debian 12 root filesystem with g++ (once; cached in $cache)" >&2
  mmdebstrap --quiet --variant=minbase --include=g++,libc6-dev,make bookworm "$rootfs.tmp"
  mv "$rootfs.tmp" "$rootfs"
fi
storage=(--root "$data_dir/buildah/root" --runroot "$data_dir/buildah/runroot" --storage-driver vfs)
ctr=$(buildah "${storage[@]}" from scratch)
trap 'buildah "${storage[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah "${storage[@]}" add "$ctr" "$rootfs" / >/dev/null
buildah "${storage[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd /bin/bash "$ctr"
buildah "${storage[@]}" commit -q "$ctr" "$registry/$image:$tag" >/dev/null
buildah "${storage[@]}" push --tls-verify=false -q "$registry/$image:$tag"
echo "cxx-builder: pushed $registry/$image:$tag" >&2
