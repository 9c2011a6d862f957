#!/usr/bin/env bash
# Testing on a Slurm cluster, as MMAction2's tools/slurm_test.sh:
#   [GPUS=8] bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py arguments]
# GPUS (total processes), GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS, MASTER_PORT
# and PYTHON come from the environment. GRES (default gpu:GPUS_PER_NODE) is
# srun's --gres; set it empty (GRES=) on a partition without GPUs: the
# processes then run on the CPU over gloo (see docs/reliability.md).

export MASTER_PORT=${MASTER_PORT:-$((12000 + $RANDOM % 20000))}
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
GRES=${GRES-gpu:${GPUS_PER_NODE}}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
PY_ARGS=("${@:5}")  # Arguments starting from the fifth one, quoting kept

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    ${GRES:+--gres=${GRES}} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    ${PYTHON} -u "$(dirname "$0")/test.py" "${CONFIG}" "${CHECKPOINT}" --launcher="slurm" "${PY_ARGS[@]}"
