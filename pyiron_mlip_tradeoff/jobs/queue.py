"""Chunks on a queue: the part of a master job that submits child "chunk" jobs through pysqa and waits for them.

Shared by :class:`~pyiron_mlip_tradeoff.jobs.ladder.PrecisionLadder` (``LadderChunk`` children: DFT calculations) and
:class:`~pyiron_mlip_tradeoff.jobs.grid.TradeoffGrid` (``GridChunk`` children: grid points). A master that mixes in
:class:`ChunkedMaster` never takes a queue slot itself; it runs in the calling process and

* submits every chunk that still has work (the same child job again, if one exists and still fits the plan, so its
  working directory, SLURM logs and already stored results are kept);
* polls: every ``input.poll_interval`` seconds, and at once when a chunk writes that it ended (the events file
  is looked at every 0.1 s), it asks the queue (pysqa) which of its user's jobs are still listed, *then* reads the
  database and the stored results; a chunk that has left the queue has written all it ever will;
* resubmits a chunk that left the queue with work missing (``scancel``, a lost node, a time limit, a crash), at most
  ``input.max_resubmissions`` times per ``job.run()``, and logs every event in ``chunk_events.jsonl``;
* with ``input.wait_for_chunks = False`` returns after submitting (status ``suspended``); the chunk that ends last
  moves the master from ``suspended`` to ``collect`` in one conditional database update and finishes it.

The work itself, what counts as done and how a chunk job is filled in are the master's (hooks of
:class:`ChunkedMaster`); nothing here knows about DFT or fits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..dft.base import InputError

if TYPE_CHECKING:
    from pyiron_base import GenericJob, Project
    from pyiron_base.database.generic import IsDatabase

__all__ = [
    "EVENTS_FILE",
    "ChunkedMaster",
    "QueueChunk",
    "chunk_ended",
    "chunk_job_name",
    "claim_status",
    "exit_at_once_on_sigterm",
    "finish_master_if_complete",
    "left_queue",
    "queue_ids_alive",
    "validate_chunk_settings",
]

#: the master's log of chunk events (one JSON object per line) in its working directory
EVENTS_FILE = "chunk_events.jsonl"
#: seconds between two looks at the events file while the master waits (a chunk that ends writes there)
EVENTS_CHECK_SECONDS = 0.1
#: seconds between two looks at the queue while a chunk that wrote its ``ended`` record is still listed there
LEAVING_CHECK_SECONDS = 0.2


def chunk_job_name(master_name: str, index: int) -> str:
    """Name of the chunk job number ``index`` of the master job ``master_name``."""
    return f"{master_name}_chunk{int(index):05d}"


@dataclass
class QueueChunk:
    """The master's view of one chunk while it waits.

    Attributes:
        index: position of the chunk in the master's plan (its job is :func:`chunk_job_name` of it).
        items: the master's description of the chunk's work (ladder units, grid draws, ...).
        queue_id: the queue (SLURM) id of its current submission, ``None`` before the first.
        submissions: how often this ``job.run()`` submitted it. history: the queue id of every submission.
        submitted_at: Unix time of its latest submission by this ``job.run()`` (0: submitted by an earlier one).
    """

    index: int
    items: list
    queue_id: int | None = None
    submissions: int = 0
    history: list = field(default_factory=list)
    submitted_at: float = 0.0


def validate_chunk_settings(job: GenericJob, master: str, unit: str) -> None:
    """Check ``chunk_size``, ``poll_interval``, ``max_resubmissions`` and ``wait_for_chunks`` of ``job.input``.

    Args:
        job: the master job (its ``input`` and ``server.queue`` are read).
        master: what the master is, for messages (``"ladder"``, ``"grid"``).
        unit: what ``chunk_size`` counts, for messages (``"calculations"``, ...).

    Raises:
        InputError: a setting of the wrong type or range, or ``chunk_size`` without ``job.server.queue``.
    """
    chunk_size = job.input.get("chunk_size")
    poll = job.input.get("poll_interval", 30.0)
    resubmissions = job.input.get("max_resubmissions", 3)
    wait = job.input.get("wait_for_chunks", True)
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1
    ):
        raise InputError(f"chunk_size must be a positive integer ({unit} per queue job) or None, got {chunk_size!r}")
    if isinstance(poll, bool) or not isinstance(poll, (int, float, np.number)) or not (0 < poll < np.inf):
        raise InputError(f"poll_interval must be a positive number of seconds, got {poll!r}")
    if isinstance(resubmissions, bool) or not isinstance(resubmissions, (int, np.integer)) or resubmissions < 0:
        raise InputError(f"max_resubmissions must be a non-negative integer, got {resubmissions!r}")
    if not isinstance(wait, (bool, np.bool_)):
        raise InputError(f"wait_for_chunks must be True or False, got {wait!r}")
    if chunk_size is not None and job.server.queue is None:
        raise InputError(
            f"chunk_size splits the {master} into queue jobs: set job.server.queue (and job.server.cores, the "
            f"cores of each chunk) as well, or leave chunk_size None to run the {master} in this process"
        )


def left_queue(entry: dict | None, queue_id: int | None, alive: set[int] | None) -> bool:
    """Whether a chunk job is no longer queued or running (finished, killed, or never submitted).

    ``alive`` is the set of queue ids the queue lists, read *before* the chunk's results are looked at: a chunk that
    has left the queue has stored everything it ever will. When the queue could not be asked (``alive is None``)
    the database status decides, and a chunk that says queued or running counts as alive.
    """
    if alive is not None:
        return queue_id is None or queue_id not in alive
    return entry is None or entry["status"] in ("finished", "aborted", "initialized", "created")


def queue_ids_alive() -> set[int] | None:
    """Queue ids of this user's jobs that the queue still lists (pending, running, completing); ``None`` if the
    queue system could not be asked."""
    from pyiron_base import state

    adapter = state.queue_adapter
    if adapter is None:
        return None
    try:
        table = adapter.get_status_of_my_jobs()
    except Exception:  # squeue failed or timed out: unknown this time, not "nothing runs"
        return None
    if table is None:
        return None
    return {int(i) for i in table["jobid"]}


def claim_status(db: IsDatabase, job_id: int, expected: str, new: str) -> bool:
    """Set a job's status to ``new`` only if it is ``expected`` (one atomic UPDATE); whether this call did it."""
    table, conn = getattr(db, "simulation_table", None), getattr(db, "conn", None)
    if table is None or conn is None:  # another database front end: check, then set
        if db.get_item_by_id(job_id)["status"] != expected:
            return False
        db.set_job_status(job_id=job_id, status=new)
        return True
    result = conn.execute(
        table.update().where(table.c["id"] == int(job_id), table.c["status"] == expected).values(status=new)
    )
    conn.commit()
    if not getattr(db, "_keep_connection", True):
        conn.close()
    return result.rowcount == 1


def finish_master_if_complete(project: Project, master_id: int, master: ChunkedMaster | None = None) -> bool:
    """Finish a chunked master that waits for nobody (status ``suspended``) once all its work is stored.

    Called by every chunk as it ends, and by the master right after submitting (``master``: that job object, else
    it is loaded). The status moves from ``suspended`` to ``collect`` in one conditional database update, so
    exactly one process assembles the output.

    Returns:
        Whether this call finished the master.
    """
    entry = project.db.get_item_by_id(int(master_id))
    if not entry or entry["status"] != "suspended":
        return False
    if master is None:
        master = project.load(int(master_id))
    if not master._chunks_complete():
        return False
    if not claim_status(project.db, int(master_id), "suspended", "collect"):
        return False
    master._finish_chunked()
    return True


def chunk_ended(
    chunk_job: GenericJob, events_file: str | None, master_id: int | None, **details: object
) -> None:
    """What a chunk job does as it ends: append an ``ended`` record (with ``details``) to the master's event log
    and finish the master if this was the last chunk of a master that waits for nobody."""
    if events_file:
        record = {"time": time.time(), "event": "ended", "chunk": int(chunk_job.input.chunk_index),
                  "queue_id": chunk_job.server.queue_id, **details}
        with open(events_file, "a") as handle:  # one short appended line: safe beside other writers
            handle.write(json.dumps(record) + "\n")
    if master_id is not None:
        finish_master_if_complete(chunk_job.project, int(master_id))


@contextlib.contextmanager
def exit_at_once_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM (``scancel``, a queue's time limit) ends the process at once (exit status 143).

    pyiron's job wrapper answers SIGTERM by writing the job status to the database from the signal handler. A
    chunk that spends its time in database calls is likely to be inside one when the signal comes; the handler's
    write then waits for the connection the interrupted call holds, forever, and the open transaction blocks the
    job table for every other client. Ending at once lets the database server roll back the interrupted
    transaction; whatever the chunk registered before stays, and the rest is computed again when it is resubmitted.
    Outside the main thread (where no handler can be set) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        os._exit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ChunkedMaster:
    """Mixin for a pyiron job that runs its work as chunk child jobs on a queue (see the module docstring).

    The job class provides the hooks :meth:`_chunk_todo`, :meth:`_chunk_missing`, :meth:`_chunk_matches`,
    :meth:`_new_chunk_job`, :meth:`_chunks_complete` and :meth:`_finish_chunked` (and may override
    :meth:`_chunks_merged` and :meth:`_before_chunk_scan`); its input has ``poll_interval`` (s) and ``max_resubmissions``.
    """

    #: what the master is and what its chunks compute, for messages
    _master_noun = "job"
    _work_noun = "results"
    #: file in the working directory naming the process that waits for the chunks
    _owner_file = "chunk_owner.json"

    # -- hooks ---------------------------------------------------------------------------------------------------
    def _chunk_todo(self, chunk: QueueChunk) -> list[str]:
        """Names of the work of ``chunk`` that a submission would compute (empty: nothing to submit)."""
        raise NotImplementedError

    def _chunk_missing(self, chunk: QueueChunk) -> list[str]:
        """Names of the work of ``chunk`` without a stored result (a chunk that left the queue with any died)."""
        raise NotImplementedError

    def _chunk_matches(self, child, chunk: QueueChunk) -> bool:
        """Whether an existing chunk job ``child`` was cut for exactly the work of ``chunk``."""
        raise NotImplementedError

    def _new_chunk_job(self, chunk: QueueChunk, name: str):
        """A new chunk job ``name`` with its input filled in (not yet saved)."""
        raise NotImplementedError

    def _chunks_complete(self) -> bool:
        """Whether every result of the master is stored."""
        raise NotImplementedError

    def _finish_chunked(self) -> None:
        """Assemble the output from the stored results and mark the master finished."""
        raise NotImplementedError

    def _chunks_merged(self) -> None:
        """Called while waiting, after some chunks finished (e.g. to publish partial output)."""

    def _before_chunk_scan(self) -> None:
        """Called after the queue was asked and before the chunks are looked at (e.g. to read the database once)."""

    # -- owner: which process waits for the chunks ---------------------------------------------------------------
    def _claim_owner(self) -> None:
        path = Path(self.working_directory) / self._owner_file
        path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))

    def _release_owner(self) -> None:
        (Path(self.working_directory) / self._owner_file).unlink(missing_ok=True)

    def _check_not_owned_by_live_process(self) -> None:
        """Refuse to resume while another live process on this machine is waiting for (or computing) this job."""
        owner_file = Path(self.working_directory) / self._owner_file
        try:
            owner = json.loads(owner_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return
        if owner.get("host") != socket.gethostname() or owner.get("pid") == os.getpid():
            return
        try:
            os.kill(int(owner["pid"]), 0)
        except (ProcessLookupError, PermissionError, ValueError, KeyError):
            return
        raise RuntimeError(
            f"{self._master_noun} {self.job_name} is being computed by process {owner['pid']} on this machine; "
            "wait for it or stop it before resuming"
        )

    # -- database and queue --------------------------------------------------------------------------------------
    def _chunk_entries(self) -> dict[str, dict]:
        """Database entries of this master's child jobs by name."""
        if self.job_id is None:
            return {}
        return {item["job"]: item for item in self.project.db.get_items_dict({"masterid": int(self.job_id)})}

    def _queue_id(self, entry: dict | None) -> int | None:
        if entry is None:
            return None
        queue_id = self.project.load(int(entry["id"])).server.queue_id
        return None if queue_id is None else int(queue_id)

    # -- events ------------------------------------------------------------------------------------------------
    @property
    def _events_path(self) -> Path:
        return Path(self.working_directory) / EVENTS_FILE

    def chunk_events(self) -> list[dict]:
        """What happened to the chunks of a chunked run, in order: one dict per event with ``time`` (Unix s),
        ``event``, ``chunk`` (index) and ``queue_id``. Events: ``submitted`` (with ``n_todo``: work to compute),
        ``waiting`` (a chunk still queued from an earlier run), ``died`` (left the queue with work ``missing``;
        ``status`` is its database status), ``finished`` (seen complete by the waiting master) and ``ended``
        (written by the chunk job itself, with what it ``computed`` and ``skipped``)."""
        path = self._events_path
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _log_event(self, event: str, chunk: QueueChunk, **details) -> None:
        record = {"time": time.time(), "event": event, "chunk": chunk.index, "queue_id": chunk.queue_id, **details}
        with open(self._events_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    # -- submitting and waiting ----------------------------------------------------------------------------------
    def _stamp(self, name: str) -> None:
        """Note the Unix time of a step of this run in ``self._master_timeline`` (if the master keeps one)."""
        timeline = getattr(self, "_master_timeline", None)
        if timeline is not None:
            timeline[name] = time.time()

    def _begin_chunked_run(self) -> None:
        """Before the chunks are cut: the working directory exists and, if this process will wait for the chunks,
        the master is ``running`` and owned by this process."""
        Path(self.working_directory).mkdir(parents=True, exist_ok=True)
        if bool(self.input.wait_for_chunks):
            self.status.running = True
            self._claim_owner()

    def _run_chunks(self, chunks: Iterable[QueueChunk]) -> None:
        """Submit ``chunks``; then either return with the master ``suspended`` (``wait_for_chunks`` False; the
        last chunk to end finishes it) or wait for them and finish the master here."""
        active = self._start_chunks(chunks)
        self._stamp("submitted")
        if not bool(self.input.wait_for_chunks):
            self.status.suspended = True
            self.to_hdf()
            # every chunk may have ended before the status said "suspended"; then nobody else finishes the master
            finish_master_if_complete(self.project, int(self.job_id), master=self)
            return
        self._wait_for_chunks(active)
        self._stamp("chunks_done")
        self._finish_chunked()
        self._release_owner()

    def _start_chunks(self, chunks: Iterable[QueueChunk]) -> dict[int, QueueChunk]:
        """Submit every chunk with work to do, or wait for it if an earlier run's submission is still queued.

        Returns:
            The chunks to wait for, by index.
        """
        alive = queue_ids_alive()
        self._before_chunk_scan()
        entries = self._chunk_entries()
        active: dict[int, QueueChunk] = {}
        for chunk in chunks:
            if not self._chunk_todo(chunk):
                continue
            entry = entries.get(chunk_job_name(self.job_name, chunk.index))
            queue_id = self._queue_id(entry)
            if entry is not None and not left_queue(entry, queue_id, alive):
                chunk.queue_id = queue_id  # still queued or running from an earlier run(): wait for it
                chunk.submitted_at = time.time()  # an "ended" record from before is not this submission's
                self._log_event("waiting", chunk)
            else:
                if entry is not None:
                    self._log_event("died", chunk, queue_id=queue_id, status=entry["status"],
                                    missing=self._chunk_missing(chunk))
                self._submit_chunk(chunk, entry)
            active[chunk.index] = chunk
        return active

    def _wait_for_chunks(self, active: dict[int, QueueChunk]) -> None:
        """Poll until every chunk has left the queue with its work stored; resubmit chunks that died."""
        max_resubmissions = int(self.input.max_resubmissions)
        poll = float(self.input.poll_interval)
        leaving = False
        self._events_seen = self._events_size()
        while active:
            # a chunk that ends says so in the events file: look at the queue then, not only every poll interval;
            # one that said so but is still listed (its process exiting) is looked at again shortly
            self._sleep_until_events(min(poll, LEAVING_CHECK_SECONDS) if leaving else poll)
            seen = self._events_size()
            alive = queue_ids_alive()  # the queue first: a chunk that left it has written all it will write
            self._before_chunk_scan()
            entries = self._chunk_entries()
            merged = False
            ended = self._ended_chunks(active)
            for index, chunk in list(active.items()):
                entry = entries.get(chunk_job_name(self.job_name, index))
                if not left_queue(entry, chunk.queue_id, alive):
                    # still listed; one that wrote its "ended" record has stored all it will (it is exiting)
                    if index in ended and not self._chunk_missing(chunk):
                        self._log_event("finished", chunk)
                        del active[index]
                        merged = True
                    continue
                missing = self._chunk_missing(chunk)
                if not missing:
                    self._log_event("finished", chunk)
                    del active[index]
                    merged = True
                    continue
                status = entry["status"] if entry else "missing"
                if chunk.submissions > max_resubmissions:
                    raise RuntimeError(
                        f"chunk {chunk_job_name(self.job_name, index)} left the queue {chunk.submissions} times "
                        f"without finishing its {self._work_noun} (last status {status!r}, {len(missing)} missing, "
                        f"queue ids {chunk.history}); see the SLURM logs in its working directory. Call job.run() "
                        f"again to continue the {self._master_noun}."
                    )
                self._log_event("died", chunk, status=status, missing=missing)
                self._submit_chunk(chunk, entry)
            if merged:
                self._chunks_merged()
            leaving = bool(self._ended_chunks(active))
            self._events_seen = seen

    def _events_size(self) -> int:
        try:
            return self._events_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _sleep_until_events(self, seconds: float) -> None:
        """Sleep ``seconds``, or less: until the events file has grown since the queue was last asked."""
        deadline = time.monotonic() + seconds
        seen = getattr(self, "_events_seen", None)
        while (left := deadline - time.monotonic()) > 0:
            if seen is not None and self._events_size() != seen:
                return
            time.sleep(min(EVENTS_CHECK_SECONDS, left))

    def _ended_chunks(self, active: dict[int, QueueChunk]) -> set[int]:
        """Indices of the ``active`` chunks that wrote an ``ended`` record after their latest submission."""
        return {e["chunk"] for e in self.chunk_events()
                if e.get("event") == "ended" and e.get("chunk") in active
                and float(e.get("time", 0.0)) >= active[e["chunk"]].submitted_at}

    def _submit_chunk(self, chunk: QueueChunk, entry: dict | None) -> None:
        """Submit ``chunk`` to the queue: the existing child job again if it still fits, else a new one."""
        submitted_at = time.time()
        name = chunk_job_name(self.job_name, chunk.index)
        n_todo = len(self._chunk_todo(chunk))
        child = None
        if entry is not None:
            child = self.project.load(int(entry["id"]))
            if child.status.finished or not self._chunk_matches(child, chunk):
                self.project.remove_job(int(entry["id"]))  # finished earlier, or cut for other input
                child = None
        if child is not None:
            child.run(repair=True)  # same job and working directory, a new queue job; stored results are skipped
        else:
            child = self._new_chunk_job(chunk, name)
            child.master_id = self.job_id
            child.server.queue = self.server.queue
            child.server.cores = int(self.server.cores or 1)
            if self.server.run_time is not None:
                child.server.run_time = self.server.run_time
            if self.server.memory_limit is not None:
                child.server.memory_limit = self.server.memory_limit
            child.run()
        chunk.queue_id = None if child.server.queue_id is None else int(child.server.queue_id)
        chunk.submitted_at = submitted_at
        chunk.submissions += 1
        chunk.history.append(chunk.queue_id)
        self._log_event("submitted", chunk, n_todo=n_todo)
