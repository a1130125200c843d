"""Real ``ratsfed`` processes for the end-to-end tests: started in their own process group on
127.0.0.1 (port 0, the bound URL read from their first stdout line), stopped with SIGTERM, then
SIGKILL, always reaped, and checked to be gone.

stdout and stderr go to files (never to a pipe nobody reads: a full pipe would block the server),
so a failing start shows the process's own words.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["RATSFED", "ServerProcess", "alive", "ratsfed", "start_servers", "stop_all"]

RATSFED = Path(sys.executable).with_name("ratsfed")  # the console script of the venv running the tests


def ratsfed(*args: str) -> list[str]:
    """The command line of ``ratsfed ARGS`` (the venv's console script, else ``python -m federation``)."""
    if RATSFED.exists():
        return [str(RATSFED), *args]
    return [sys.executable, "-m", "federation", *args]


def alive(pid: int) -> bool:
    """Whether *pid* or any process of its group still exists (a zombie counts as alive)."""
    for probe in (os.kill, os.killpg):
        try:
            probe(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:  # exists, owned by someone else: a reused pid, not ours
            continue
        return True
    return False


class ServerProcess:
    """One ``ratsfed serve --config FILE --port 0`` process, leader of its own process group."""

    def __init__(self, name: str, config: Path, logs: Path) -> None:
        self.name = name
        self.config = config
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logs / f"{name}.stdout"
        self.stderr_path = logs / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                ratsfed("serve", "--config", str(config), "--host", "127.0.0.1", "--port", "0"),
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.pid = self.proc.pid
        self.url = ""

    def wait_listening(self, deadline: float) -> str:
        """Block until the process announced its URL (``... listening on http://127.0.0.1:PORT``)."""
        while time.monotonic() < deadline:
            text = self.stdout_path.read_text(errors="replace")
            for line in text.splitlines():
                if "listening on " in line:
                    self.url = line.rsplit(" ", 1)[1].strip().rstrip("/")
                    return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{self.name} did not start (exit {self.proc.poll()}): "
                             f"{self.stdout_path.read_text(errors='replace')!r} "
                             f"{self.stderr_path.read_text(errors='replace')[-2000:]!r}")

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no graceful shutdown. Reaped before returning."""
        self.signal_group(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM (graceful), then SIGKILL after *grace* seconds; always reaped. The exit code."""
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.signal_group(signal.SIGKILL)  # anything left in its group
        return self.proc.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def start_servers(specs: Sequence[tuple[str, Path]], logs: Path, started: list[ServerProcess],
                  timeout: float = 30.0) -> list[ServerProcess]:
    """Start every (name, config) at once, then wait for each to listen. Each process is appended
    to *started* as soon as it exists, so the caller's teardown stops it even if a later one fails."""
    procs = []
    for name, config in specs:
        p = ServerProcess(name, config, logs)
        started.append(p)
        procs.append(p)
    deadline = time.monotonic() + timeout
    for p in procs:
        p.wait_listening(deadline)
    return procs


def stop_all(procs: Iterable[ServerProcess]) -> list[int]:
    """Stop every process (the last started first); return the pids still alive (should be none)."""
    procs = list(procs)
    for p in reversed(procs):
        p.stop()
    return [p.pid for p in procs if p.proc.poll() is None or alive(p.pid)]
