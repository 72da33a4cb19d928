"""Child processes that never outlive the launcher.

Every child is started from one long-lived thread with PR_SET_PDEATHSIG=SIGKILL (Linux sends
that signal when the *thread* that forked the child ends, so children are not forked from
short-lived threads), in its own process group, and is registered so `stop_all()` ends it.
Even a SIGKILL of the launcher therefore leaves no function or emulator process behind.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except Exception:  # noqa: BLE001 - best effort
            pass


class _Spawner:
    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.children: set[subprocess.Popen] = set()

    def _run(self) -> None:
        while True:
            args, kwargs, box, done = self._requests.get()
            try:
                box["proc"] = subprocess.Popen(args, preexec_fn=_die_with_parent, start_new_session=True, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                box["error"] = exc
            done.set()

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="child-spawner", daemon=True)
                self._thread.start()
        box: dict = {}
        done = threading.Event()
        self._requests.put((args, kwargs, box, done))
        done.wait()
        if "error" in box:
            raise box["error"]
        proc = box["proc"]
        with self._lock:
            self.children.add(proc)
        return proc

    def forget(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self.children.discard(proc)


_spawner = _Spawner()


def popen(args: list[str], **kwargs: Any) -> subprocess.Popen:
    return _spawner.popen(args, **kwargs)


def terminate(proc: subprocess.Popen, grace: float = 1.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after `grace` seconds."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    kill(proc)


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        _signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    _spawner.forget(proc)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def stop_all(grace: float = 1.0) -> None:
    with _spawner._lock:
        children = list(_spawner.children)
    for proc in children:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in children:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        kill(proc)
