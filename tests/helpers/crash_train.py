"""Run ``tools/train.py`` so that it stops for good in a checkpoint write.

Used by ``tests/engine/test_crash_resume.py``, which SIGKILLs the process once it
is stuck::

    python tests/helpers/crash_train.py TARGET MARKER -- CONFIG [train.py args]

When :func:`h2cn_mmaction.engine.fileio.atomic_write` writes the file named
``TARGET`` (e.g. ``epoch_2.pth``; ``epoch_1.pth@2``: its second write, when
the epoch checkpoint is rewritten after a new best one), half of the bytes
reach the disk
(flushed and fsynced), then ``MARKER`` is created holding the path of the
partial file, and the process sleeps until it is killed. Everything else is
the real ``tools/train.py``.
"""
import os
import os.path as osp
import runpy
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main() -> None:
    if len(sys.argv) < 5 or sys.argv[3] != '--':
        sys.exit(f'usage: {sys.argv[0]} TARGET MARKER -- CONFIG [ARGS]')
    target, marker = sys.argv[1], sys.argv[2]
    target, _, nth = target.partition('@')
    writes = {'left': int(nth or 1)}

    from h2cn_mmaction.engine import fileio

    write_all = fileio._write_all

    def write_half_then_hang(fileobj, data: bytes) -> None:
        match = fileio.TEMP_FILE_RE.match(osp.basename(fileobj.name))
        if match is None or match.group('target') != target:
            return write_all(fileobj, data)
        writes['left'] -= 1
        if writes['left'] > 0:
            return write_all(fileobj, data)
        fileobj.write(data[:len(data) // 2])
        fileobj.flush()
        os.fsync(fileobj.fileno())
        with open(marker + '.part', 'w') as f:
            f.write(f'{fileobj.name}\n{len(data)}\n')
        os.replace(marker + '.part', marker)
        while True:  # until SIGKILL
            time.sleep(1)

    fileio._write_all = write_half_then_hang
    sys.argv = [osp.join(ROOT, 'tools', 'train.py')] + sys.argv[4:]
    runpy.run_path(sys.argv[0], run_name='__main__')


if __name__ == '__main__':
    main()
