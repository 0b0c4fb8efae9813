#!/usr/bin/env bash
# GRPO training of @@MODEL@@ with EasyR1, written by tpru @@VERSION@@ (recipe @@RECIPE@@).
#
# One node:
#   bash launch.sh [key=value ...]            key=value overrides any key of config.yaml
# Several nodes, through Ray (this folder at the same path on every node):
#   bash launch.sh head                       on the head node: start Ray
#   RAY_HEAD=<head address>:6379 bash launch.sh worker
#                                             on every other node: join it
#   NNODES=<nodes> bash launch.sh [key=value ...]
#                                             on the head node: train, attached
#   NNODES=<nodes> bash launch.sh submit [key=value ...]
#                                             or as a Ray job (ray job logs / ray job stop)
# Environment: NNODES (default @@NNODES@@), GPUS_PER_NODE (default @@GPUS_PER_NODE@@),
# RAY_PORT (6379), RAY_DASHBOARD_PORT (8265), PYTHON (python3, with EasyR1 installed).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

NNODES="${NNODES:-@@NNODES@@}"
GPUS_PER_NODE="${GPUS_PER_NODE:-@@GPUS_PER_NODE@@}"
RAY_PORT="${RAY_PORT:-6379}"
RAY_DASHBOARD_PORT="${RAY_DASHBOARD_PORT:-8265}"
PYTHON="${PYTHON:-python3}"

mode=train
case "${1:-}" in
  head|worker|submit|train) mode="$1"; shift ;;
  -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
@@WANDB@@
case "$mode" in
  head)
    exec ray start --head --port="$RAY_PORT" --dashboard-host=0.0.0.0 \
      --dashboard-port="$RAY_DASHBOARD_PORT" --num-gpus="$GPUS_PER_NODE" ;;
  worker)
    exec ray start --address="${RAY_HEAD:?set RAY_HEAD to <head address>:$RAY_PORT}" \
      --num-gpus="$GPUS_PER_NODE" ;;
  submit)
    entry="NNODES=$NNODES GPUS_PER_NODE=$GPUS_PER_NODE PYTHON=$(printf '%q' "$PYTHON")"
    entry="$entry bash $(printf '%q' "$PWD/launch.sh") train"
    for arg in "$@"; do entry="$entry $(printf '%q' "$arg")"; done
    exec ray job submit --address="http://127.0.0.1:$RAY_DASHBOARD_PORT" -- "$entry" ;;
esac

if [ "$NNODES" -gt 1 ] && ! ray status >/dev/null 2>&1; then
  echo "launch.sh: NNODES=$NNODES but no Ray cluster is running on this node;" \
       "start one with 'bash launch.sh head' and join it from the others" >&2
  exit 1
fi

# EasyR1 makes the prompt and reward paths absolute itself, but not the data files, which
# a Ray worker on another node opens from its own working directory.
exec "$PYTHON" -m verl.trainer.main config=config.yaml \
  @@DATA_FILES@@trainer.nnodes="$NNODES" trainer.n_gpus_per_node="$GPUS_PER_NODE" "$@"
