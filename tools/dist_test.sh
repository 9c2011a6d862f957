#!/usr/bin/env bash
# Distributed testing with torchrun, as MMAction2's tools/dist_test.sh:
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py arguments]
# GPUS processes per node; NNODES, NODE_RANK, PORT and MASTER_ADDR come from
# the environment. Without CUDA, tools/test.py runs the GPUS processes on the
# CPU with the gloo backend.

set -x

CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

# Arguments starting from the fourth one are captured by ${@:4}
PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
$PYTHON -m torch.distributed.run --nnodes=$NNODES --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR --nproc_per_node=$GPUS --master_port=$PORT \
    "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch \
    "${@:4}"
