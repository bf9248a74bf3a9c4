"""pyiron job ``GridChunk``: some draws of a ``TradeoffGrid``, computed as a queue job of its own.

A ``TradeoffGrid`` with ``job.server.queue`` and ``job.input.chunk_size`` set creates these children itself (see
:class:`pyiron_mlip_tradeoff.jobs.grid.TradeoffGrid`); nobody needs to create one by hand. A chunk loads its grid,
reads the descriptors from the grid's cache, computes the points of its draws — one draw is a (2Jmax, sampling,
repetition) whose nested training subsets share one pass of statistics — and stores each point as a ``QSnapFit``
child of the grid, exactly as an in-process grid run does. Points whose child is already in the database are
skipped, so a chunk submitted again after being killed (``scancel``, a lost node, a time limit) computes only the
points it had not stored. While it computes, SIGTERM ends it at once (no status update; the queue and the master
know it died), because pyiron's SIGTERM handler could deadlock inside one of the chunk's many database calls.

When the last chunk of a grid whose master returned after submitting (``wait_for_chunks = False``, master status
``suspended``) ends, it assembles the grid's table and marks the grid finished.
"""

from __future__ import annotations

import json
import os
import time

from ..dft.base import InputError
from .base import mark_finished
from .fit import FastStorageJob
from .queue import chunk_ended, exit_at_once_on_sigterm

__all__ = ["GridChunk"]


class GridChunk(FastStorageJob):
    """Some draws of a grid, stored as the grid's ``QSnapFit`` children.

    Input (``job.input``, written by the grid):
        grid_id: the ``TradeoffGrid`` job (master) whose input defines the points.
        chunk_index: position of this chunk among the grid's chunks.
        draws: JSON list of ``[twojmax, sampling, repetition]``, the draws this chunk computes.
        dataset: the grid's ``input.dataset`` with a file path made absolute (the chunk runs in its own folder).
        cache_dir: the grid's descriptor cache folder (absolute; compute nodes must see it).
        events_file: the grid's log of chunk events; the chunk appends an ``ended`` record when it finishes.

    Output (``job.output``) of the latest run:
        computed: job names of the points computed; skipped: those already stored when it started;
        seconds: wall seconds of the run; store_seconds: of those, seconds spent writing child jobs.
        timeline: Unix times of its steps (``process_start`` … ``finished``, see ``TradeoffGrid``'s output);
        stage_seconds: ``run_grid``'s timings of the chunk (``sets``, ``leverage``: computed here; ``shared_parts``:
        computing, waiting for and reading the once-per-grid parts; ``points``: the whole loop).
    """

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.grid_id = None
        self.input.chunk_index = 0
        self.input.draws = "[]"
        self.input.dataset = None
        self.input.cache_dir = None
        self.input.events_file = None

    def _draws(self) -> list[tuple[int, str, int]]:
        try:
            draws = json.loads(self.input.draws)
            return [(int(tj), str(sampling), int(rep)) for tj, sampling, rep in draws]
        except (TypeError, ValueError) as err:
            raise InputError(f"draws must be a JSON list of [twojmax, sampling, repetition], got "
                             f"{self.input.draws!r}") from err

    def validate_ready_to_run(self) -> None:
        """Check that the chunk names its grid and at least one well-formed draw before it is saved."""
        if self.input.grid_id is None:
            raise InputError("a grid chunk needs the id of its TradeoffGrid (input.grid_id)")
        if not self._draws():
            raise InputError("a grid chunk needs at least one draw")

    def run_static(self) -> None:
        start = time.perf_counter()
        timeline = {"process_start": _process_start(), "run_static": time.time()}
        self.status.running = True
        grid = self.project.load(int(self.input.grid_id))
        timeline["grid_loaded"] = time.time()
        with exit_at_once_on_sigterm():  # see there: pyiron's own SIGTERM handler can deadlock in a database call
            done = grid.compute_chunk(self._draws(), dataset=self.input.dataset, cache_dir=self.input.cache_dir,
                                      chunk_index=int(self.input.chunk_index))
        timeline.update(done.get("timeline", {}))
        out = self.output
        out.computed = list(done["computed"])
        out.skipped = list(done["skipped"])
        out.store_seconds = float(done["store_seconds"])
        out.stage_seconds = dict(done.get("stage_seconds", {}))
        out.seconds = time.perf_counter() - start
        timeline["stored"] = time.time()
        out.timeline = timeline
        mark_finished(self)
        timeline["finished"] = time.time()
        chunk_ended(self, self.input.events_file, int(self.input.grid_id), computed=out.computed,
                    skipped=out.skipped, timeline=timeline, stage_seconds=out.stage_seconds)


def _process_start() -> float:
    """Unix time this process started (its Python interpreter, before any import), to 10 ms on Linux (the process
    age from ``/proc``; psutil's ``create_time`` adds the boot time, which the kernel gives to the second)."""
    try:
        with open("/proc/self/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime in clock ticks
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        import psutil

        return float(psutil.Process().create_time())
