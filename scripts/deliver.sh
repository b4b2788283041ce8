#!/usr/bin/env bash
# The delivery loop end to end on the cluster scripts/up.sh started: sets the example app's
# version string to VERSION in the working clone, commits on `development` and pushes; then
# follows the ImageBuild (build, tag, bump on argo-dev), the Application's sync and the
# Rollout's canary — sending requests through the gateway meanwhile so its analysis has
# traffic to judge — and prints a timeline and the versions that answered.
#
# Usage: scripts/deliver.sh VERSION          (for example 2.0.0)
# Environment: PODIUM_DATA_DIR (default ./.podium), PODIUM_INGRESS_PORT (80).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: $0 VERSION" >&2; exit 2; }
version=$1
DATA_DIR=${PODIUM_DATA_DIR:-$PWD/.podium}
INGRESS_PORT=${PODIUM_INGRESS_PORT:-80}
WORK=$DATA_DIR/git/work/golang-app
export KUBECONFIG=$DATA_DIR/kubeconfig.yaml
[ -d "$WORK/.git" ] || { echo "deliver: no working clone at $WORK (run scripts/up.sh first)" >&2; exit 1; }

start=$(date +%s%N)
elapsed() { local ds=$((($(date +%s%N) - start) / 100000000)); printf '%4d.%d s' $((ds / 10)) $((ds % 10)); }
field() { kubectl get "$1" -n "$2" "$3" -o jsonpath="$4" 2>/dev/null || true; }

# Requests through the gateway for as long as the canary runs (stopped by PID at exit).
answers=$(mktemp)
( while :; do curl -s -m 2 -H 'Host: golang-app.example.com' "http://127.0.0.1:$INGRESS_PORT/" || echo; done ) \
  >"$answers" 2>/dev/null &
load=$!
trap 'kill $load 2>/dev/null; wait $load 2>/dev/null; rm -f "$answers"' EXIT

export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-developer} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-developer@localhost}
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
git -C "$WORK" checkout -q development
git -C "$WORK" pull -q --ff-only origin development
sed -i -E "s/(version = v && \*v \? v : )\"[^\"]*\"/\1\"$version\"/" "$WORK/main.cc"
if git -C "$WORK" diff --quiet; then echo "deliver: main.cc already says $version" >&2; exit 1; fi
git -C "$WORK" commit -q -am "version $version"
git -C "$WORK" push -q origin development
commit=$(git -C "$WORK" rev-parse HEAD)
echo "$(elapsed)  pushed ${commit:0:7} (version $version) to development"

state=pushed
while :; do
  case $state in
    pushed)
      if [ "$(field imagebuild argocd golang-app '{.status.builds[0].commit}')" = "$commit" ]; then
        phase=$(field imagebuild argocd golang-app '{.status.builds[0].phase}')
        if [ "$phase" = Failed ]; then
          echo "$(elapsed)  build failed: $(field imagebuild argocd golang-app '{.status.message}')"; exit 1
        fi
        if [ "$phase" = Succeeded ]; then
          bump=$(field imagebuild argocd golang-app '{.status.builds[0].writeBackCommit}')
          echo "$(elapsed)  built $(field imagebuild argocd golang-app '{.status.builds[0].image}')" \
            "(buildah $(field imagebuild argocd golang-app '{.status.builds[0].buildSeconds}' | cut -c1-4) s);" \
            "argo-dev at ${bump:0:7}"
          state=built
        fi
      fi ;;
    built)
      if [ "$(field application argocd golang-app '{.status.sync.revision}')" = "$bump" ]; then
        echo "$(elapsed)  synced argo-dev ${bump:0:7}"; state=synced
      fi ;;
    synced)
      st=$(field rollout my-apps golang-app '{.status.phase} {.status.currentStepIndex} {.status.message}')
      step=${st#* }; step=${step%% *}
      spec=$(field rollout my-apps golang-app "{.spec.strategy.canary.steps[$step]}")
      case $st in
        Healthy*) echo "$(elapsed)  promoted: all traffic on $version"; break ;;
        Degraded*) echo "$(elapsed)  aborted: ${st#* * }"; break ;;
        # A pause with a duration ends by itself; any other pause waits for a person.
        Paused*) if [[ $spec != *duration* || $st == *Inconclusive* ]]; then
                   echo "$(elapsed)  paused: ${st#* * } (podium rollout promote|abort golang-app -n my-apps)"; break
                 fi ;;
      esac
      if [ "$step" != "${last:-}" ]; then
        echo "$(elapsed)  canary step $step $spec; canary weight now" \
          "$(field virtualservice my-apps golang-app-route '{.spec.http[0].route[1].weight}') %"
        last=$step
      fi ;;
  esac
  sleep 0.2
done
echo "versions that answered meanwhile:"
grep -o 'version: .*' "$answers" | sort | uniq -c
./build/podium rollout get golang-app -n my-apps --data-dir "$DATA_DIR" | head -20
