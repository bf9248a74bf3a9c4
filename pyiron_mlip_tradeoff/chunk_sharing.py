"""Work that several chunk jobs need, done once and shared among them through files.

The chunks of a grid all need the same once-per-grid parts (the test and validation statistics, the pool's leverage
scores); each used to compute all of them. With :func:`share_parts` each part is computed by the first chunk that
claims it and read by the others: chunks running side by side compute different parts at the same time (each
starts at another part), and a chunk that has claimed all it can waits for the parts others are computing. A chunk
submitted again after being killed reads what is already there.

Protocol, per part ``name`` in ``folder``: a chunk claims the part by creating ``<key>_<name>.claim`` (atomic
exclusive create; the file holds its host and process id and is touched every few seconds while the part is
computed), computes it and writes ``<key>_<name>.pkl`` (written to a temporary name, then renamed: a reader never
sees half a file). A claim whose process is gone (same host) or that was not touched for ``stale_seconds`` (any
host) is void: a waiting chunk then computes the part itself. The values are the same whoever computes them (the
same code on the same inputs), so a part computed twice after a void claim is harmless.

Nothing here imports pyiron.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

__all__ = ["share_parts"]

#: seconds between two touches of a claim file while its part is computed
HEARTBEAT_SECONDS = 5.0
#: seconds between two looks at a part another process is computing
WAIT_SECONDS = 0.05


def share_parts(
    folder: str | os.PathLike,
    key: str,
    parts: Mapping[str, Callable[[], object]],
    start: int = 0,
    stale_seconds: float = 120.0,
) -> dict[str, object]:
    """The value of every part, each computed by one of the processes that call this with the same folder and key.

    Args:
        folder: shared folder (every chunk must see it: on a cluster, the file system pyiron projects live on).
        key: what identifies the inputs of the parts (e.g. a hash of the grid's settings); parts stored under
            another key are never read.
        parts: ``{name: function}``; a function is called at most once here, without arguments, and its value must
            pickle.
        start: position in ``parts`` where this process starts claiming (e.g. the chunk's index), so that processes
            started together begin with different parts.
        stale_seconds: a claim not touched for this long is void (its process is taken to be gone).

    Returns:
        ``{name: value}`` for every part.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(parts)
    if not names:
        return {}
    first = int(start) % len(names)
    values: dict[str, object] = {}
    for name in names[first:] + names[:first]:  # claim what nobody claimed, beginning at ``start``
        result, claim = _paths(folder, key, name)
        if result.exists():
            values[name] = _read(result)
        elif _claim(claim):
            values[name] = _compute(parts[name], result, claim)
    for name in names:  # wait for the parts others claimed; compute those whose claim is void
        while name not in values:
            result, claim = _paths(folder, key, name)
            if result.exists():
                values[name] = _read(result)
            elif _void(claim, stale_seconds) and _reclaim(claim, stale_seconds):
                values[name] = _compute(parts[name], result, claim)
            else:
                time.sleep(WAIT_SECONDS)
    return {name: values[name] for name in names}


def _paths(folder: Path, key: str, name: str) -> tuple[Path, Path]:
    return folder / f"{key}_{name}.pkl", folder / f"{key}_{name}.claim"


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}


def _claim(claim: Path) -> bool:
    """Create ``claim`` if nobody has; whether this process did."""
    try:
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(_owner(), handle)
    return True


def _void(claim: Path, stale_seconds: float) -> bool:
    """Whether ``claim`` no longer stands for a live process computing its part (or was never made)."""
    try:
        owner = json.loads(claim.read_text())
        touched = claim.stat().st_mtime
    except (FileNotFoundError, json.JSONDecodeError, ValueError):
        return True  # removed (its process failed) or being written this instant: looked at again below
    if time.time() - touched > stale_seconds:
        return True
    if owner.get("host") == socket.gethostname():
        try:
            os.kill(int(owner["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, KeyError, ValueError, TypeError):
            return False
    return False


def _reclaim(claim: Path, stale_seconds: float) -> bool:
    """Take over a void claim (only one waiting process does: the one that replaces it first)."""
    if _claim(claim):
        return True
    mine = claim.with_name(f"{claim.name}.{socket.gethostname()}.{os.getpid()}")
    try:
        os.rename(claim, mine)  # atomic: of several processes taking over, exactly one moves the void claim
    except FileNotFoundError:
        return _claim(claim)
    if not _void(mine, stale_seconds):  # someone made a fresh claim in between: give it back
        with contextlib.suppress(OSError):
            os.rename(mine, claim)
        return False
    mine.unlink(missing_ok=True)
    return _claim(claim)


def _compute(function: Callable[[], object], result: Path, claim: Path) -> object:
    """Compute a claimed part while touching its claim, write it atomically; on failure give the claim up."""
    try:
        with _heartbeat(claim):
            value = function()
        tmp = result.with_name(f"{result.name}.{socket.gethostname()}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, result)
    except BaseException:
        claim.unlink(missing_ok=True)
        raise
    return value


def _read(result: Path) -> object:
    with open(result, "rb") as handle:
        return pickle.load(handle)


@contextlib.contextmanager
def _heartbeat(claim: Path) -> Iterator[None]:
    """Touch ``claim`` every :data:`HEARTBEAT_SECONDS` while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(claim)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
