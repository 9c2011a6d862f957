"""A stand-in for Slurm's ``srun`` (one node) and ``scontrol show hostname``.

``tests/tools/test_tools.py`` puts shims named ``srun`` and ``scontrol`` that run
this file on ``PATH`` to run ``tools/slurm_*.sh`` without a cluster::

    srun -p PART --job-name=J [--gres=G] --ntasks=N --ntasks-per-node=N \\
        --cpus-per-task=C --kill-on-bad-exit=1 COMMAND...

starts COMMAND N times with what srun gives each task (``SLURM_PROCID``,
``SLURM_LOCALID``, ``SLURM_NTASKS``, ``SLURM_NODELIST``, ``SLURM_JOB_NAME``;
no ``MASTER_ADDR``: MMEngine asks ``scontrol`` for the first host), kills
the others when one fails (``--kill-on-bad-exit``) and exits with the first
failure's code. The options it got go to ``$FAKE_SRUN_LOG`` (JSON).
``scontrol show hostname NODES`` prints ``127.0.0.1``.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def scontrol(argv) -> int:
    if argv[:2] != ['show', 'hostname']:
        print(f'fake scontrol: unsupported: {argv}', file=sys.stderr)
        return 2
    print('127.0.0.1')
    return 0


def srun(argv) -> int:
    parser = argparse.ArgumentParser(prog='srun')
    parser.add_argument('-p', '--partition', required=True)
    parser.add_argument('--job-name', required=True)
    parser.add_argument('--gres')
    parser.add_argument('--ntasks', type=int, required=True)
    parser.add_argument('--ntasks-per-node', type=int, required=True)
    parser.add_argument('--cpus-per-task', type=int)
    parser.add_argument('--kill-on-bad-exit', type=int, default=0)
    parser.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.ntasks != args.ntasks_per_node:
        print('fake srun: one node only (ntasks == ntasks-per-node)',
              file=sys.stderr)
        return 2
    if os.environ.get('FAKE_SRUN_LOG'):
        with open(os.environ['FAKE_SRUN_LOG'], 'w') as f:
            json.dump(vars(args), f)
    procs = []
    for task in range(args.ntasks):
        env = dict(os.environ, SLURM_PROCID=str(task),
                   SLURM_LOCALID=str(task), SLURM_NTASKS=str(args.ntasks),
                   SLURM_NODELIST='fakenode', SLURM_JOB_NAME=args.job_name)
        env.pop('MASTER_ADDR', None)
        procs.append(subprocess.Popen(args.command, env=env))
    code = 0
    while any(p.poll() is None for p in procs):
        failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
        if failed and args.kill_on_bad_exit:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        time.sleep(0.2)
    for p in procs:
        if p.returncode != 0 and code == 0:
            code = p.returncode if p.returncode > 0 else 1
    return code


if __name__ == '__main__':
    tool = os.path.basename(sys.argv[1])
    sys.exit({'srun': srun, 'scontrol': scontrol}[tool](sys.argv[2:]))
