"""Run the repository's Python tools in fresh processes without paying for
their imports each time.

A ``python tools/x.py ARGS`` spends 5-8 s importing torch, MMEngine and
MMAction2 before it does anything; the tests run the tools dozens of times.
:func:`run_script` instead asks a server process, which imported those once
(this file, run as a script), to ``fork`` a child that runs the tool as
``__main__`` with the given arguments, working directory and environment, its
stdout and stderr in files. The child is a new process, like a subprocess: a
crash, ``sys.exit`` or a changed registry stays in it. What differs from a
fresh interpreter: the warm modules are imported already, so what they print
or warn while being imported is not in the child's output. The server never
runs a tensor operation, so that no thread pool exists when it forks.
"""
import atexit
import json
import os
import os.path as osp
import runpy
import select
import signal
import subprocess
import sys
import tempfile
import threading
import traceback

#: Imported by the server before it forks: what every tool imports first.
WARM_MODULES = ('cv2', 'torch', 'mmengine.runner', 'mmaction.models',
                'mmaction.datasets', 'h2cn_mmaction')


def _child(request: dict) -> None:
    """Run one tool in the forked child; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own group, killed whole on a timeout
        for fd, path in ((1, request['stdout']), (2, request['stderr'])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(out, fd)
            os.close(out)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for stream in (sys.stdout, sys.stderr):  # as PYTHONUNBUFFERED
            stream.reconfigure(write_through=True)
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        script = osp.abspath(request['argv'][0])
        sys.argv = list(request['argv'])
        sys.path[0] = osp.dirname(script)  # as `python script.py`
        threads = os.environ.get('OMP_NUM_THREADS')
        if threads:
            import torch
            torch.set_num_threads(int(threads))
        try:
            runpy.run_path(script, run_name='__main__')
            code = 0
        except SystemExit as e:  # what the interpreter makes of it
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """Read one JSON request per line on stdin; for each, fork a child that
    runs it and answer ``{"pid": ...}`` then ``{"returncode": ...}``."""
    protocol = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)  # stray prints of the imports go to stderr
    import importlib
    for name in WARM_MODULES:
        importlib.import_module(name)
    protocol.write('{"ready": true}\n')
    protocol.flush()
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            protocol.close()
            _child(request)
        protocol.write(json.dumps({'pid': pid}) + '\n')
        protocol.flush()
        _, status = os.waitpid(pid, 0)
        protocol.write(
            json.dumps({'returncode': os.waitstatus_to_exitcode(status)}) +
            '\n')
        protocol.flush()


class _Server:
    """One server per test process, started on first use."""

    def __init__(self) -> None:
        self.proc = None
        self.lock = threading.Lock()

    def _start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL,
                                     text=True)
        atexit.register(self.close)
        if json.loads(self._read(600)) != {'ready': True}:
            raise RuntimeError('warm_python: the server did not start')

    def _read(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('warm_python: the server exited')
        return line

    def run(self, argv, cwd, env, timeout, merge):
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            out = osp.join(tmp, 'out')
            paths = dict(stdout=out,
                         stderr=out if merge else osp.join(tmp, 'err'))
            for path in paths.values():
                open(path, 'w').close()
            self.proc.stdin.write(
                json.dumps(dict(argv=argv, cwd=cwd, env=env, **paths)) +
                '\n')
            self.proc.stdin.flush()
            pid = json.loads(self._read(60))['pid']
            try:
                code = json.loads(self._read(timeout))['returncode']
            except TimeoutError:
                os.killpg(pid, signal.SIGKILL)
                self._read(60)
                raise subprocess.TimeoutExpired(argv, timeout)
            return code, [open(path).read()
                          for path in dict.fromkeys(paths.values())]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(60)


_SERVER = _Server()


def run_script(args,
               cwd: str,
               env: dict = None,
               timeout: float = 300,
               merge: bool = False) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, script, *args], text=True)`` with
    the output captured, through the warm server.

    Args:
        args (list): ``[sys.executable, script, ...]``; any other command runs
            as a plain subprocess.
        cwd (str): Working directory.
        env (dict, optional): The environment. Defaults to ``os.environ``.
        timeout (float): Seconds before the child is killed
            (``subprocess.TimeoutExpired``).
        merge (bool): stderr into stdout, as ``stderr=STDOUT``.

    Returns:
        subprocess.CompletedProcess: ``stdout`` and ``stderr`` as text (with
        ``merge``, stdout holds both as they were written).
    """
    args = [str(a) for a in args]
    env = dict(os.environ if env is None else env)
    if len(args) < 2 or args[0] != sys.executable or \
            not args[1].endswith('.py'):
        return subprocess.run(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            text=True, timeout=timeout)
    code, outputs = _SERVER.run(args[1:], str(cwd), env, timeout, merge)
    return subprocess.CompletedProcess(args, code, *outputs)


if __name__ == '__main__':
    serve()
