#!/usr/bin/env bash
# Sets up this machine, builds Podium, starts a one-machine cluster and deploys the seed's app
# (examples/hello) on it; then stays in the foreground until Ctrl-C, which stops everything.
#
# Environment: PODIUM_DATA_DIR (default ./.podium), PODIUM_API_PORT (6443),
# PODIUM_REGISTRY_PORT (5000). Extra arguments go to `podium server`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
DATA_DIR=${PODIUM_DATA_DIR:-$PWD/.podium}
API_PORT=${PODIUM_API_PORT:-6443}
REGISTRY_PORT=${PODIUM_REGISTRY_PORT:-5000}
REGISTRY=127.0.0.1:$REGISTRY_PORT
mkdir -p "$DATA_DIR"
rm -f "$DATA_DIR/kubeconfig.yaml"

./build/podium server --data-dir "$DATA_DIR" --api-port "$API_PORT" --registry-port "$REGISTRY_PORT" "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server' INT TERM
export KUBECONFIG=$DATA_DIR/kubeconfig.yaml
for _ in $(seq 600); do
  [ -f "$KUBECONFIG" ] && kubectl get nodes 2>/dev/null | grep -q ' Ready' && break
  kill -0 $server 2>/dev/null || { echo "up: podium server exited" >&2; exit 1; }
  sleep 0.2
done

# The seed's image, built from its multi-stage Dockerfile, and the seed's manifests unchanged.
./scripts/cxx-builder-image.sh --registry "$REGISTRY" --data-dir "$DATA_DIR"
./build/podium image build -t my-docker-hub/golang-app:v1.0.0 --registry "$REGISTRY" --data-dir "$DATA_DIR" \
  examples/hello
./build/podium image build -t my-docker-hub/golang-app:v2.0.0 --registry "$REGISTRY" --data-dir "$DATA_DIR" \
  examples/hello

# GitOps, as in the seed: a repository with the source on `development` and the manifests on
# `argo-dev` (the Deployment, the canary's v1/v2 Deployments, DestinationRule, Gateway and the
# 90/10 VirtualService), and an Argo CD Application that makes the cluster follow `argo-dev`.
REPO=$DATA_DIR/git/golang-app
if [ ! -d "$REPO/.git" ]; then
  export GIT_AUTHOR_NAME=podium GIT_AUTHOR_EMAIL=podium@localhost
  export GIT_COMMITTER_NAME=podium GIT_COMMITTER_EMAIL=podium@localhost
  mkdir -p "$REPO"
  git -C "$REPO" init -q -b development
  cp examples/hello/main.cc examples/hello/Dockerfile "$REPO/"
  git -C "$REPO" add -A && git -C "$REPO" commit -q -m "golang-app source"
  git -C "$REPO" checkout -q --orphan argo-dev
  git -C "$REPO" rm -q -rf .
  mkdir -p "$REPO/manifests"
  cp -r examples/hello/manifests/namespace.yaml examples/hello/manifests/deployment.yaml \
    examples/hello/manifests/virtual-service.yaml examples/hello/manifests/canary "$REPO/manifests/"
  git -C "$REPO" add -A && git -C "$REPO" commit -q -m "golang-app manifests"
fi
kubectl create namespace argocd --dry-run=client -o yaml | kubectl apply -f -
sed "s|repoURL: .*|repoURL: file://$REPO|" examples/hello/application.yaml | kubectl apply -f -
kubectl wait -n argocd application/golang-app --for=jsonpath='{.status.sync.status}'=Synced --timeout=120s
kubectl wait -n argocd application/golang-app --for=jsonpath='{.status.health.status}'=Healthy --timeout=180s
kubectl get applications -n argocd
kubectl get pods -n my-apps -o wide
for ip in $(kubectl get pods -n my-apps -l app=golang-app -o jsonpath='{.items[*].status.podIP}'); do
  echo "curl http://$ip:8080/ -> $(curl -s -m 2 "http://$ip:8080/")"
done
INGRESS_PORT=80
for arg in "$@"; do case "$arg" in --ingress-http-port=*) INGRESS_PORT=${arg#*=} ;; esac; done
for _ in $(seq 50); do
  curl -s -m 1 -o /dev/null -H 'Host: golang-app.example.com' "http://127.0.0.1:$INGRESS_PORT/" && break
  sleep 0.2
done
echo "100 requests through the gateway (Host: golang-app.example.com, port $INGRESS_PORT):"
for _ in $(seq 100); do
  curl -s -m 2 -H 'Host: golang-app.example.com' "http://127.0.0.1:$INGRESS_PORT/"
done | sort | uniq -c
cat <<EOT

Podium is running (Ctrl-C stops it and everything it started). In another shell:
  export KUBECONFIG=$KUBECONFIG
  kubectl get pods -n my-apps
  curl -H 'Host: golang-app.example.com' http://127.0.0.1:$INGRESS_PORT/
  kubectl get application -n argocd golang-app   # Synced, Healthy, at the argo-dev commit
  cd $REPO   # branch argo-dev: edit manifests/ and commit; the cluster follows in seconds
EOT
wait $server
