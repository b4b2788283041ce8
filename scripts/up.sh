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

# The build stage of the seed's multi-stage Dockerfile (Debian's g++), in the cluster registry.
./scripts/cxx-builder-image.sh --registry "$REGISTRY" --data-dir "$DATA_DIR"

# GitOps, as in the seed: a repository (bare, as a git host keeps it) with the app's source on
# `development` and its manifests on `argo-dev` — the app as an Argo Rollouts Rollout behind the
# seed's Gateway and VirtualService, judged by its success rate (examples/hello/delivery) — and a
# working clone to commit in. An ImageBuild builds each commit of `development` and commits the
# new tag on `argo-dev`; the Argo CD Application makes the cluster follow `argo-dev`.
ORIGIN=$DATA_DIR/git/golang-app.git
WORK=$DATA_DIR/git/work/golang-app
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-developer} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-developer@localhost}
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
if [ ! -d "$ORIGIN" ]; then
  rm -rf "$WORK"
  git init -q --bare -b development "$ORIGIN"
  mkdir -p "$WORK"
  git -C "$WORK" init -q -b development
  git -C "$WORK" remote add origin "$ORIGIN"
  cp examples/hello/main.cc examples/hello/Dockerfile "$WORK/"
  git -C "$WORK" add -A && git -C "$WORK" commit -q -m "golang-app source"
  git -C "$WORK" push -q origin development
  git -C "$WORK" checkout -q --orphan argo-dev
  git -C "$WORK" rm -q -rf .
  mkdir -p "$WORK/manifests"
  cp examples/hello/delivery/rollout.yaml examples/hello/delivery/routing.yaml \
    examples/hello/delivery/analysis.yaml "$WORK/manifests/"
  git -C "$WORK" add -A && git -C "$WORK" commit -q -m "golang-app manifests"
  git -C "$WORK" push -q origin argo-dev
  git -C "$WORK" checkout -q development
fi
kubectl create namespace argocd --dry-run=client -o yaml | kubectl apply -f -
for f in image-build.yaml application.yaml; do
  sed "s|repoURL: .*|repoURL: file://$ORIGIN|" "examples/hello/delivery/$f" | kubectl apply -f -
  # The first build (development's head) lands on argo-dev before the Application deploys it.
  [ "$f" = image-build.yaml ] &&
    kubectl wait -n argocd imagebuild/golang-app --for=jsonpath='{.status.phase}'=Succeeded --timeout=600s
done
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
  kubectl get imagebuild -n argocd golang-app    # the image built from development's head

The delivery loop — edit the app, commit on development, watch the canary:
  cd $WORK     # branch development (git remote: $ORIGIN)
  sed -i 's/: "1.0.0"/: "2.0.0"/' main.cc && git commit -am "version 2.0.0" && git push origin development
  # built and tagged, argo-dev bumped, synced, 10 % to 2.0.0, analysed, promoted:
  watch -n 0.5 ./build/podium rollout get golang-app -n my-apps --data-dir $DATA_DIR
or all of it, with requests through the gateway so the analysis has traffic to judge:
  PODIUM_DATA_DIR=$DATA_DIR PODIUM_INGRESS_PORT=$INGRESS_PORT scripts/deliver.sh 2.0.0
EOT
wait $server
