#!/usr/bin/env python3
"""http-server.py -- a loopback HTTP server for `cfutures download`: Debian's nginx
(nginx-light), run as the current user with a throwaway configuration of its own.

Usage:
  http-server.py start ROOT STATE_DIR    serve the folder ROOT on 127.0.0.1 at a free port,
                                         nginx's files in STATE_DIR (new, or empty as from
                                         mktemp -d); prints the base URL once nginx listens
                                         (http://127.0.0.1:PORT/) and returns, nginx running on
  http-server.py stop STATE_DIR          stop that nginx, wait until its master and worker
                                         processes have all exited, remove STATE_DIR
  http-server.py run ROOT -- CMD [ARG...]
                                         start, run CMD with CF_HTTP_URL set to the base
                                         URL, stop; exits with CMD's status
As a module (the CLI tests and bench/workloads.py load it with importlib):
`with Nginx(root, state) as url: ...`; Nginx(..., limit_rate="8m") limits every transfer.

Why it is built this way:
- Everything nginx writes (config, pid file, lock file, logs, temp paths) lives in the state
  directory, and the configuration loads no modules and names no system path, so the
  server neither needs root nor touches a system nginx that the package may have started on
  port 80.
- nginx runs with `daemon off` as a child of this script, so it is never detached behind the
  caller's back: `run` and the module keep it as a child that the kernel sends SIGTERM if
  this process dies first (PR_SET_PDEATHSIG), and `start` gives it a session of its own on
  purpose, to outlive the script until `stop`.
- Readiness is a handshake, not a guess: nginx logs "start worker process PID" on stderr
  (our pipe) once its listening socket is bound and its worker forked, and exits with an
  [emerg] line if the bind fails.  The port is one the kernel just handed out for port 0;
  if something takes it in between, the bind fails and a new port is tried.
- When run as root, the workers keep root's identity (a `user` line), since nginx would
  otherwise hand them to "nobody", who may not read the caller's private folders.
- Stopping waits on pidfds of the master and each of its workers (taken before the signal),
  so "stopped" means no process is left, whatever the order they exit in; a server that
  has not exited within a grace period is killed.  The pid file's process is signalled only
  if its command line names this state directory (a stale pid may belong to anything).
"""
import ctypes
import grp
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Debian installs nginx in /usr/sbin, which a non-root PATH may lack.
NGINX = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
START_TIMEOUT = 10.0  # seconds for nginx to bind and start its workers
STOP_GRACE = 5.0      # seconds for a fast shutdown before SIGKILL
BIND_ATTEMPTS = 5     # ports tried when another program takes the one picked
# The master's notice after forking its worker, which comes after it bound the port.
WORKER_STARTED = re.compile(r"start worker process \d+")

CONFIG = """\
{user}daemon off;
master_process on;
worker_processes 1;
pid {state}/nginx.pid;
lock_file {state}/nginx.lock;
error_log stderr notice;
error_log {state}/error.log notice;
events {{
    worker_connections 512;
}}
http {{
    access_log {state}/access.log;
    client_body_temp_path {state}/tmp/body;
    proxy_temp_path {state}/tmp/proxy;
    fastcgi_temp_path {state}/tmp/fastcgi;
    uwsgi_temp_path {state}/tmp/uwsgi;
    scgi_temp_path {state}/tmp/scgi;
    types {{
        text/html html;
        text/plain txt;
        image/jpeg jpg jpeg;
        image/png png;
    }}
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {root};
{extra}    }}
}}
"""


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user_line():
    # A master started by root hands its workers to "nobody" unless told otherwise, and
    # nobody may not read a private folder of the caller: keep the caller's identity.
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"


def _die_with_parent():
    # Runs in the child between fork and exec: SIGTERM it when this process dies.
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _children(pid):
    """The processes whose parent is pid (nginx's workers)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name, which is in parentheses and may hold
        # spaces, so split after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _wait_gone(pids, timeout):
    """Waits until every pid has exited; returns those still alive at the deadline."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    try:
        while fds:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                os.close(fd)
                del fds[fd]
        return list(fds.values())
    finally:
        for fd in fds:
            os.close(fd)


def _master_pid(state):
    """The pid in state/nginx.pid if that process is the nginx of this state dir, else None."""
    try:
        with open(os.path.join(state, "nginx.pid")) as f:
            pid = int(f.read().strip() or 0)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode(errors="replace")
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and "nginx" in cmdline and state in cmdline else None


def _stop_pid(pid):
    workers = _children(pid)
    try:
        os.kill(pid, signal.SIGTERM)  # nginx's fast shutdown: it stops its workers too
    except ProcessLookupError:
        pass
    alive = _wait_gone([pid] + workers, STOP_GRACE)
    for p in alive:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if _wait_gone(alive, STOP_GRACE):
        raise RuntimeError(f"nginx processes {alive} did not exit")


class Nginx:
    """nginx serving `root` on 127.0.0.1 with its files in `state` (a new or empty folder)."""

    def __init__(self, root, state, detach=False, limit_rate=None):
        self.root = os.path.abspath(root)
        self.state = os.path.abspath(state)
        self.detach = detach
        # nginx's limit_rate (bytes/s per connection, "8m"): a slow network for every
        # client alike (the benchmark uses it).
        self.limit_rate = limit_rate
        self.proc = None
        self.url = None

    def start(self):
        if NGINX is None:
            raise RuntimeError("nginx is not installed (Debian: nginx-light)")
        if not os.path.isdir(self.root):
            raise RuntimeError(f"{self.root}: not a directory")
        for part in (self.root, self.state):
            if any(c in part for c in ' ;{}"\'\\$#'):
                raise RuntimeError(f"{part}: characters nginx's config cannot take unquoted")
        if os.path.isdir(self.state) and os.listdir(self.state):
            raise RuntimeError(f"{self.state}: not empty")
        os.makedirs(os.path.join(self.state, "tmp"))
        errors = []
        for _ in range(BIND_ATTEMPTS):
            port = _free_port()
            with open(os.path.join(self.state, "nginx.conf"), "w") as f:
                extra = f"        limit_rate {self.limit_rate};\n" if self.limit_rate else ""
                f.write(CONFIG.format(user=_user_line(), state=self.state, root=self.root,
                                      port=port, extra=extra))
            ready, log = self._launch()
            if ready:
                self.url = f"http://127.0.0.1:{port}/"
                return self.url
            errors.append(log)
            if "Address already in use" not in log:
                break
        shutil.rmtree(self.state)
        raise RuntimeError("nginx did not start:\n" + "\n".join(errors))

    def _launch(self):
        """Starts nginx; (True, log) once it listens, (False, log) if it exited or hung."""
        self.proc = subprocess.Popen(
            [NGINX, "-p", self.state + "/", "-c", os.path.join(self.state, "nginx.conf"),
             "-e", "stderr"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=self.detach,
            preexec_fn=None if self.detach else _die_with_parent)
        lines = []
        deadline = time.monotonic() + START_TIMEOUT
        stream = self.proc.stderr
        poller = select.poll()
        poller.register(stream, select.POLLIN)
        buf = b""
        ready = False
        while not ready:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                lines.append(f"(no sign of life within {START_TIMEOUT} s)")
                break
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break  # nginx exited: its [emerg] line says why
            buf += chunk
            *done, buf = buf.split(b"\n")
            for line in done:
                text = line.decode(errors="replace")
                lines.append(text)
                ready = ready or WORKER_STARTED.search(text) is not None
        # From here on nginx logs to state/error.log; writes to the closed pipe fail with
        # EPIPE, which nginx ignores.
        stream.close()
        if not ready:
            _stop_pid(self.proc.pid)
            self.proc.wait()
            self.proc = None
        return ready, "\n".join(lines)

    def stop(self):
        if self.proc is not None:
            _stop_pid(self.proc.pid)
            self.proc.wait()  # reaps the master: it was our child
            self.proc = None
        shutil.rmtree(self.state)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _usage():
    sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
    return 2


def main(argv):
    if len(argv) == 3 and argv[0] == "start":
        server = Nginx(argv[1], argv[2], detach=True)
        print(server.start(), flush=True)
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        state = os.path.abspath(argv[1])
        pid = _master_pid(state)
        if pid is not None:
            _stop_pid(pid)
        if os.path.isdir(state):
            shutil.rmtree(state)
        return 0
    if len(argv) >= 4 and argv[0] == "run" and argv[2] == "--":
        parent = tempfile.mkdtemp(prefix="cf-http-")
        try:
            with Nginx(argv[1], os.path.join(parent, "state")) as url:
                env = dict(os.environ, CF_HTTP_URL=url)
                rc = subprocess.call(argv[3:], env=env)
                return rc if rc >= 0 else 128 - rc  # killed by signal -rc, as a shell says
        finally:
            os.rmdir(parent)
    return _usage()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except RuntimeError as e:
        sys.stderr.write(f"http-server: {e}\n")
        sys.exit(1)
