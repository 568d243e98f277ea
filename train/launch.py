"""``octconv-launch``: run a command as MXNet parameter-server workers (``kvstore='dist_*'``).

    octconv-launch -n 2 -s 1 -- octconv-train --kv-store dist_sync ...
    octconv-launch -n 4 -s 2 --launcher ssh --hosts hosts.txt -- octconv-train ...
    octconv-launch -n 2 --mode horovod -- octconv-train --kv-store horovod ...

Starts the ps-lite scheduler, ``-s`` servers and ``-n`` workers with the
``DMLC_*`` variables set (MXNet's own tools/launch.py no longer runs on
Python >= 3.9). On one machine every process binds to 127.0.0.1 and nothing
listens on or sends to any other address. With ``--launcher ssh`` the processes
are spread over the hosts of ``--hosts`` (one address a line; the scheduler runs
on the first), each started in the current directory over ssh.

If a worker fails, the launcher stops every other process and exits non-zero
with a message naming the worker; no process is left behind.
"""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

__all__ = ['Process', 'plan', 'plan_horovod', 'run', 'main']

LOCALHOST = '127.0.0.1'


class Process:
    """One ps-lite process: its role, index, host and environment."""

    def __init__(self, role, index, host, env, command):
        self.role, self.index, self.host, self.env, self.command = role, index, host, env, command
        self.popen = None

    @property
    def name(self):
        return self.role if self.role == 'scheduler' else '%s %d' % (self.role, self.index)

    def __repr__(self):
        return '<%s on %s>' % (self.name, self.host)


def _free_port(host=LOCALHOST):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def plan(command, num_workers, num_servers, hosts=None, port=None, python=None):
    """The processes to start: scheduler, servers, workers (workers and servers round-robin
    over ``hosts``; everything on 127.0.0.1 without hosts)."""
    if num_workers < 1 or num_servers < 1:
        raise ValueError('need at least one worker and one server, got -n %d -s %d'
                         % (num_workers, num_servers))
    if not command:
        raise ValueError('no command to run: put it after --')
    hosts = list(hosts or [LOCALHOST])
    root = hosts[0]
    if port is None:
        port = _free_port() if root == LOCALHOST else 9091
    python = python or sys.executable
    base = {'DMLC_PS_ROOT_URI': root, 'DMLC_PS_ROOT_PORT': str(port),
            'DMLC_NUM_SERVER': str(num_servers), 'DMLC_NUM_WORKER': str(num_workers)}
    # importing mxnet runs the server loop; octconv first, for its numpy shim (_compat.py)
    serve = [python, '-c', 'import octconv, mxnet']
    processes = [Process('scheduler', 0, root, dict(base, DMLC_ROLE='scheduler',
                                                     DMLC_NODE_HOST=root), serve)]
    for index in range(num_servers):
        host = hosts[index % len(hosts)]
        processes.append(Process('server', index, host,
                                 dict(base, DMLC_ROLE='server', DMLC_NODE_HOST=host), serve))
    for index in range(num_workers):
        host = hosts[index % len(hosts)]
        processes.append(Process('worker', index, host,
                                 dict(base, DMLC_ROLE='worker', DMLC_NODE_HOST=host),
                                 list(command)))
    return processes


def plan_horovod(command, num_workers, port):
    """Horovod (Gloo) workers on this machine, rendezvous on 127.0.0.1:``port``."""
    from horovod.runner.common.util.hosts import get_host_assignments, parse_hosts
    processes = []
    for slot in get_host_assignments(parse_hosts('localhost:%d' % num_workers), num_workers):
        env = {'HOROVOD_HOSTNAME': 'localhost', 'HOROVOD_RANK': str(slot.rank),
               'HOROVOD_SIZE': str(slot.size), 'HOROVOD_LOCAL_RANK': str(slot.local_rank),
               'HOROVOD_LOCAL_SIZE': str(slot.local_size),
               'HOROVOD_CROSS_RANK': str(slot.cross_rank),
               'HOROVOD_CROSS_SIZE': str(slot.cross_size),
               'HOROVOD_GLOO_RENDEZVOUS_ADDR': LOCALHOST,
               'HOROVOD_GLOO_RENDEZVOUS_PORT': str(port), 'HOROVOD_CONTROLLER': 'gloo',
               'HOROVOD_CPU_OPERATIONS': 'gloo', 'HOROVOD_GLOO_IFACE': 'lo'}
        processes.append(Process('worker', slot.rank, LOCALHOST, env, list(command)))
    return processes


class _Rendezvous:
    """Horovod's rendezvous HTTP server, bound to 127.0.0.1 only (horovodrun binds all)."""

    def __init__(self, num_workers):
        from horovod.runner.common.util.hosts import get_host_assignments, parse_hosts
        from horovod.runner.http.http_server import RendezvousHandler, RendezvousHTTPServer
        self.httpd = RendezvousHTTPServer((LOCALHOST, 0), RendezvousHandler, 0)
        self.port = self.httpd.server_address[1]
        self.httpd.init(get_host_assignments(parse_hosts('localhost:%d' % num_workers),
                                             num_workers))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _start(process, launcher):
    if launcher == 'local':
        process.popen = subprocess.Popen(process.command, env=dict(os.environ, **process.env),
                                         start_new_session=True)
    else:
        remote = 'cd %s && env %s %s' % (
            shlex.quote(os.getcwd()),
            ' '.join('%s=%s' % (k, shlex.quote(v)) for k, v in sorted(process.env.items())),
            ' '.join(shlex.quote(part) for part in process.command))
        process.popen = subprocess.Popen(['ssh', '-o', 'BatchMode=yes', process.host, remote],
                                         start_new_session=True)


def _stop(processes, grace=5.0):
    """SIGTERM every running process group, then SIGKILL what is left after ``grace`` s."""
    running = [p for p in processes if p.popen is not None and p.popen.poll() is None]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in running:
            try:
                os.killpg(p.popen.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace
        while time.time() < deadline and any(p.popen.poll() is None for p in running):
            time.sleep(0.05)
        running = [p for p in running if p.popen.poll() is None]
        if not running:
            break
    for p in processes:
        if p.popen is not None:
            p.popen.wait()


class _Signalled(Exception):
    """SIGTERM, SIGINT or SIGHUP reached the launcher."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _forward_signals():
    """Turn SIGTERM, SIGINT and SIGHUP into :class:`_Signalled` (so that the children are
    stopped before the launcher exits); returns the previous handlers. Only the main
    thread can set handlers: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def raise_signalled(signum, frame):
        raise _Signalled(signum)
    return {sig: signal.signal(sig, raise_signalled)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}


def run(command, num_workers, num_servers=1, hosts=None, launcher='local', timeout=None,
        log=None, port=None, mode='ps'):
    """Start everything, wait for the workers; returns 0, 1 naming a failed worker, or
    128 + N when signal N (SIGTERM, SIGINT, SIGHUP) stopped the run.

    ``mode`` 'ps': ps-lite scheduler, servers and workers; 'horovod': Horovod Gloo
    workers on this machine. Every process is stopped before returning, whatever happens:
    SIGTERM to each process group, then SIGKILL to what is left after a grace period.
    """
    log = log or sys.stderr
    rendezvous = None
    if mode == 'horovod':
        if launcher != 'local':
            raise ValueError('--mode horovod starts workers on this machine; use horovodrun '
                             'for several machines')
        rendezvous = _Rendezvous(num_workers)
        processes = plan_horovod(command, num_workers, rendezvous.port)
    else:
        processes = plan(command, num_workers, num_servers, hosts, port)
    workers = [p for p in processes if p.role == 'worker']
    start = time.time()
    previous = _forward_signals()
    try:
        for process in processes:
            _start(process, launcher)
        while True:
            failed = [p for p in processes if p.popen.poll() not in (None, 0)]
            if failed:
                print('octconv-launch: %s (pid %d, %s) exited with code %d; stopping the others'
                      % (failed[0].name, failed[0].popen.pid, failed[0].host,
                         failed[0].popen.returncode), file=log)
                return 1
            if all(p.popen.poll() == 0 for p in workers):
                return 0
            if timeout is not None and time.time() - start > timeout:
                print('octconv-launch: the workers did not finish within %g s; stopping them'
                      % timeout, file=log)
                return 1
            time.sleep(0.1)
    except _Signalled as signalled:
        print('octconv-launch: %s received; stopping every process'
              % signal.Signals(signalled.signum).name, file=log)
        return 128 + signalled.signum
    finally:
        _stop(processes)
        if rendezvous is not None:
            rendezvous.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv=None):
    """Parse ``-n -s [--hosts] [--launcher] -- COMMAND`` and run it; exit code of the run."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[argv.index('--') + 1:] if '--' in argv else []
    own = argv[:argv.index('--')] if '--' in argv else argv
    parser = argparse.ArgumentParser(prog='octconv-launch', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-n', '--num-workers', type=int, required=True)
    parser.add_argument('-s', '--num-servers', type=int, default=1)
    parser.add_argument('--hosts', help='file with one host address a line (ssh launcher)')
    parser.add_argument('--launcher', choices=('local', 'ssh'), default='local')
    parser.add_argument('--mode', choices=('ps', 'horovod'), default='ps',
                        help="'ps': MXNet parameter server (kvstore dist_*); 'horovod': Horovod "
                             'Gloo workers on this machine (kvstore horovod)')
    parser.add_argument('--timeout', type=float, help='stop everything after this many seconds')
    parser.add_argument('--dry-run', action='store_true', help='print the processes and exit')
    args = parser.parse_args(own)
    hosts = None
    if args.launcher == 'ssh':
        if not args.hosts:
            parser.error('--launcher ssh needs --hosts FILE')
        with open(args.hosts) as handle:
            hosts = [line.strip() for line in handle if line.strip() and
                     not line.startswith('#')]
    try:
        if args.dry_run:
            for process in plan(command, args.num_workers, args.num_servers, hosts):
                print('%-10s %-15s %s %s' % (process.name, process.host,
                                             ' '.join('%s=%s' % kv for kv in
                                                      sorted(process.env.items())),
                                             ' '.join(process.command)))
            return 0
        return run(command, args.num_workers, args.num_servers, hosts, args.launcher,
                   args.timeout, mode=args.mode)
    except (ValueError, ImportError) as err:
        print('octconv-launch: error: %s' % err, file=sys.stderr)
        return 2


if __name__ == '__main__':
    raise SystemExit(main())
