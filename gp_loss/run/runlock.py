"""One run directory, one writer: an exclusive lock on ``RUN/.lock`` for the life of the process
that writes the run (``evolve``, ``evolve --resume``, ``finalize``).

The lock is ``flock``'s, which the kernel releases when its holder dies however it dies
(SIGKILL included): a lock left by a killed process is taken over by the next writer, which
says so. The file holds the holder's process id, host and start time, so that a refused
writer can name who holds the run. Within one process the lock is re-entrant (a script that
starts a search and resumes it holds it once).
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import sys
from pathlib import Path

from gp_loss.core.errors import GpLossError

LOCK = ".lock"

#: run directory -> (open lock file, holders in this process)
_HELD: dict[str, list] = {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire(directory: str | os.PathLike) -> None:
    """Hold ``directory``'s lock (creating the folder); a one-line error naming the holder when
    another live process writes the run."""
    path = Path(directory)
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = open(path / LOCK, "a+", encoding="utf-8")  # noqa: SIM115  (held until release)
    except OSError as err:
        raise GpLossError(f"cannot lock run directory {path}: {err.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.seek(0)
        holder = _holder(handle.read())
        handle.close()
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise GpLossError(
                f"{path} is being written by {holder}; wait for it to end or stop it, or use another folder (--out, or out=)"
            ) from None
        raise GpLossError(f"cannot lock run directory {path}: {err.strerror}") from None
    handle.seek(0)
    previous = handle.read()
    _note_takeover(path, previous)
    handle.seek(0)
    handle.truncate()
    handle.write(
        json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": _dt.datetime.now().isoformat(timespec="seconds"),
                "command": " ".join(sys.argv[:6]),
            }
        )
    )
    handle.flush()
    _HELD[key] = [handle, 1]


def release(directory: str | os.PathLike) -> None:
    """Let go of the lock (the last holder in this process unlocks the file)."""
    key = str(Path(directory).resolve())
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        handle = _HELD.pop(key)[0]
        handle.seek(0)
        handle.truncate()  # a clean exit leaves no holder: only a killed writer's name stays
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"process {info['pid']} on {info['host']} (since {info['since']}: {info['command']})"
    except (json.JSONDecodeError, KeyError, TypeError):
        return "another process"


def _note_takeover(path: Path, previous: str) -> None:
    """Say so when the lock file names a writer that is gone (it was killed)."""
    try:
        info = json.loads(previous)
        pid, host = int(info["pid"]), info["host"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return
    if pid != os.getpid() and host == socket.gethostname() and not _alive(pid):
        print(
            f"gp-loss: {path}: took over the lock left by process {pid} (no longer running)", file=sys.stderr
        )
