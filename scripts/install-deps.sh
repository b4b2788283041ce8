#!/usr/bin/env bash
# Installs everything Podium needs to build, run and test on Debian 12.
# Idempotent: packages already present are skipped quickly.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  libboost-dev libboost-system-dev libssl-dev libsqlite3-dev libnghttp2-dev zlib1g-dev libre2-dev
  nlohmann-json3-dev libyaml-cpp-dev libgtest-dev libgmock-dev clang-format
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc libgit2-dev
  libcctz-dev tzdata
  # fuzz targets (libFuzzer)
  clang libclang-rt-14-dev
  # run
  openssl sqlite3 ca-certificates
  # the node: container runtime, networking, image registry and builder
  containerd runc containernetworking-plugins iptables nftables conntrack docker-registry buildah
  busybox-static
  mmdebstrap
  # tests and benchmarks: the official Python client and etcd as the store benchmark's peer
  python3-kubernetes python3-yaml python3-grpcio etcd-server etcd-client curl
  # the mesh's tests and benchmarks: promtool, and the proxies and load generators it is compared with
  prometheus haproxy nginx-light wrk
  # autoscaling: a load generator that holds a fixed request rate
  hey
  # the web UI's tests: a real browser (driven by playwright-core from npm)
  chromium
  # zero trust: packet captures of the pod network, and test certificates
  tshark python3-cryptography
  # GitOps: a real ssh server (sshd on a loopback port) for repositories fetched over ssh://
  openssh-server
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq || true
  # Packages with daemons (sshd, nginx, etcd, containerd, ...) are not started by their
  # install: Podium and its tests start what they need themselves, on their own ports.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi
if ! command -v kubectl >/dev/null; then
  echo "install-deps: kubectl is not on PATH; e2e tests that drive kubectl will be skipped" >&2
fi
