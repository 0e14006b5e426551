"""Tap processes forked from one that has already imported the tap (a "zygote").

A run of the tap spends most of its CPU importing singer-sdk and its dependencies
(about 0.7 s here); the suite runs the tap some 330 times per Python, and CI runs the suite
on three of them. A zygote per test process imports the tap once and forks a child for each
run. The child is a whole process, as with `python -m tap_omnitron`: its own pid, stdin,
stdout and stderr, environment and working directory, signals that reach it alone, and a
normal interpreter exit (atexit handlers, threads joined, buffers flushed), because it runs
the tap's `__main__` module at the top level, outside the zygote's loop.

`TAP_TESTS_FRESH_PROCESS=1` starts a fresh interpreter for every run instead.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import typing as t
from pathlib import Path

FRESH = os.environ.get("TAP_TESTS_FRESH_PROCESS") == "1"

# The zygote: import the tap, then fork a child per request; each child leaves the loop and
# runs the tap as `python -m tap_omnitron` would. Its parent reports each child's exit.
_SERVER = r"""
import json, os, select, signal, socket, sys
import tap_omnitron.tap  # noqa: F401  (the imports every run shares)

control = socket.socket(fileno=int(sys.argv[1]))
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)


def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        control.send(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def serve():
    while True:
        ready, _, _ = select.select([control, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            reap()
        if control in ready:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 3)
            if not message:
                os._exit(0)  # the test process has gone
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                return request, fds
            for fd in fds:
                os.close(fd)
            control.send(json.dumps({"seq": request["seq"], "pid": pid}).encode())


request, fds = serve()
signal.set_wakeup_fd(-1)
signal.signal(signal.SIGCHLD, signal.SIG_DFL)
control.close()
os.close(wake_r)
os.close(wake_w)
for target, fd in enumerate(fds):
    os.dup2(fd, target)
    os.close(fd)
os.environ.clear()
os.environ.update(request["env"])
os.chdir(request["cwd"])
del control, fds, reap, serve
import runpy
sys.argv = ["tap-omnitron", *request["args"]]
runpy.run_module("tap_omnitron", run_name="__main__", alter_sys=True)
"""


class Child:
    """A forked tap, with what the tests use of `subprocess.Popen`."""

    def __init__(self, pid: int, stdout: int | None, stderr: int | None) -> None:
        self.pid = pid
        self.stdout = os.fdopen(stdout, "rb") if stdout is not None else None
        self.stderr = os.fdopen(stderr, "rb") if stderr is not None else None
        self.returncode: int | None = None
        self._exited = threading.Event()

    def send_signal(self, signum: int) -> None:
        if not self._exited.is_set():
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired("tap-omnitron", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Read stdout and stderr to their end, then wait for the exit; on timeout the
        child is killed, as `subprocess.run(timeout=...)` does."""
        out: dict[str, bytes] = {}

        def drain(name: str, pipe: t.Any) -> None:
            out[name] = pipe.read() if pipe is not None else b""
            if pipe is not None:
                pipe.close()

        readers = [
            threading.Thread(target=drain, args=(name, pipe), daemon=True)
            for name, pipe in (("stdout", self.stdout), ("stderr", self.stderr))
        ]
        for reader in readers:
            reader.start()
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        for reader in readers:
            reader.join()
        return out["stdout"], out["stderr"]

    def _exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()


class Zygote:
    """One per test process, started on first use."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # not a terminal: the children's stdout is block-buffered, as in a pipe
        )
        theirs.close()
        self._control = ours
        self._lock = threading.Lock()
        self._seq = 0
        self._forked: dict[int, tuple[threading.Event, list[int]]] = {}  # seq -> (set when forked, [pid])
        self._children: dict[int, Child] = {}  # pid -> child still running
        self._exited: dict[int, int] = {}  # pid -> exit code, for a child that ended before it was registered
        threading.Thread(target=self._listen, name="zygote", daemon=True).start()
        atexit.register(self.close)

    def spawn(self, args: list[str], *, env: dict[str, str], stdout: bool, stderr: bool) -> Child:
        """A tap child with `args`; stdout and stderr are pipes to read, or /dev/null."""
        null = os.open(os.devnull, os.O_RDWR)
        out_r, out_w = os.pipe() if stdout else (None, null)
        err_r, err_w = os.pipe() if stderr else (None, null)
        forked, pid = threading.Event(), []
        with self._lock:
            self._seq += 1
            self._forked[self._seq] = (forked, pid)
            request = {"seq": self._seq, "args": args, "env": env, "cwd": str(Path.cwd())}
            socket.send_fds(self._control, [json.dumps(request).encode()], [null, out_w, err_w])
        for fd in {null, out_w, err_w}:
            os.close(fd)
        if not forked.wait(30):
            raise RuntimeError("the zygote forked no tap within 30 s")
        child = Child(pid[0], out_r, err_r)
        with self._lock:
            if pid[0] in self._exited:
                child._exit(self._exited.pop(pid[0]))
            else:
                self._children[pid[0]] = child
        return child

    def _listen(self) -> None:
        while message := self._control.recv(1 << 16):
            event = json.loads(message)
            with self._lock:
                if "seq" in event:
                    forked, pid = self._forked.pop(event["seq"])
                    pid.append(event["pid"])
                    forked.set()
                elif (child := self._children.pop(event["exited"], None)) is not None:
                    child._exit(event["code"])
                else:
                    self._exited[event["exited"]] = event["code"]
        self._control.close()

    def close(self) -> None:
        atexit.unregister(self.close)
        self._control.shutdown(socket.SHUT_RDWR)  # the zygote sees the end of its socket and exits
        self._process.wait(timeout=10)


_zygote: Zygote | None = None
_zygote_lock = threading.Lock()


def spawn(
    args: list[str], *, env: dict[str, str] | None = None, stdout: bool = True, stderr: bool = True
) -> Child | subprocess.Popen:
    """Start `tap-omnitron args` (see the module docstring) in `env` (default: this process's);
    stdout and stderr are binary pipes or /dev/null, stdin is /dev/null."""
    env = dict(os.environ) if env is None else env
    if FRESH:
        return fresh(["-m", "tap_omnitron", *args], env=env, stdout=stdout, stderr=stderr)
    global _zygote  # noqa: PLW0603  (one zygote per test process)
    with _zygote_lock:
        if _zygote is None:
            _zygote = Zygote()
    return _zygote.spawn(args, env=env, stdout=stdout, stderr=stderr)


def fresh(arguments: list[str], *, env: dict[str, str], stdout: bool = True, stderr: bool = True) -> subprocess.Popen:
    """`python arguments` in a fresh interpreter, with the pipes of `spawn`."""

    def pipe(wanted: bool) -> int:
        return subprocess.PIPE if wanted else subprocess.DEVNULL

    return subprocess.Popen(
        [sys.executable, *arguments], stdin=subprocess.DEVNULL, stdout=pipe(stdout), stderr=pipe(stderr), env=env
    )
