"""Run Python code as ``python -c`` would, each run in a new process forked from one that
has already imported MXNet and octconv (their import is most of a new interpreter's
start-up time: about 2.5 of the 3 seconds a short example takes).

Each run gets its own working folder, environment, standard output and error, and exit
code; its process starts from the imports alone (the server runs nothing else), and
exits as a script does (``atexit`` handlers, an uncaught exception printed, exit code 1).
"""
import json
import os
import select
import signal
import subprocess
import sys

# The server: imports, then for each request (a JSON line on stdin) forks a child that
# runs the code and answers with the child's exit code (a JSON line on stdout).
SERVER = r'''
import json, os, sys, tempfile
import octconv  # noqa: F401  (its numpy shim first)
import mxnet, octconv.gluon, octconv.symbol  # noqa: F401
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        tempfile.tempdir = None
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request['stdout']), (2, request['stderr'])):
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(handle, fd)
            os.close(handle)
        sys.argv = ['-c']
        code = compile(request['code'], '<string>', 'exec')
        exec(code, {'__name__': '__main__', '__builtins__': __builtins__})
        sys.exit(0)
    os.write(1, (json.dumps(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])) + '\n').encode())
'''


class ForkedPython:
    """Runs code in forks of one server process, started in ``folder`` (its own HOME and
    TMPDIR) on first use; :meth:`close` ends it and anything it started."""

    def __init__(self, folder):
        self.folder = folder
        self.process = None

    def _start(self):
        env = dict(os.environ, HOME=str(self.folder), TMPDIR=str(self.folder))
        with open(os.path.join(self.folder, 'server.err'), 'wb') as errors:
            self.process = subprocess.Popen([sys.executable, '-c', SERVER], cwd=self.folder,
                                            env=env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=errors,
                                            start_new_session=True)

    def run(self, code, cwd, env, timeout):
        """``(exit code, stdout, stderr)`` of ``code`` run in ``cwd`` with the environment
        ``env``; TimeoutError (everything stopped) after ``timeout`` seconds."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        out, err = (os.path.join(self.folder, 'run.' + part) for part in ('out', 'err'))
        request = dict(code=code, cwd=str(cwd), env=dict(env), stdout=out, stderr=err)
        self.process.stdin.write((json.dumps(request) + '\n').encode())
        self.process.stdin.flush()
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            self.close()
            raise TimeoutError('the example ran longer than %s s' % timeout)
        line = self.process.stdout.readline()
        if not line:
            self.close()
            with open(os.path.join(self.folder, 'server.err')) as errors:
                raise RuntimeError('the example server ended: %s' % errors.read()[-3000:])
        outputs = []
        for path in (out, err):
            with open(path) as handle:
                outputs.append(handle.read())
            os.remove(path)
        return (json.loads(line),) + tuple(outputs)

    def close(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
            self.process.stdin.close()
            self.process.stdout.close()
        self.process = None
