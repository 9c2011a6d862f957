#!/usr/bin/env bash
# Distributed training with torchrun, as MMAction2's tools/dist_train.sh:
#   bash tools/dist_train.sh CONFIG GPUS [train.py arguments]
# GPUS processes per node; NNODES, NODE_RANK, PORT and MASTER_ADDR come from
# the environment. Without CUDA, tools/train.py runs the GPUS processes on the
# CPU with the gloo backend (e.g. `bash tools/dist_train.sh CONFIG 2`).

set -x

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

# Any arguments from the third one are captured by ${@:3}
PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
$PYTHON -m torch.distributed.run --nnodes=$NNODES --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR --nproc_per_node=$GPUS --master_port=$PORT \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
