"""pyiron job ``DescriptorChunk``: some chunks of a chunked descriptor cache, computed as a job (or queue job) of its own.

A ``DescriptorPool`` with ``input.queue`` set creates these children itself (see
:class:`pyiron_mlip_tradeoff.jobs.descriptor_pool.DescriptorPool`); a chunk can also be run by hand against a cache
prepared with :func:`~pyiron_mlip_tradeoff.descriptor_cache.prepare_chunked_cache`. Before anything is saved the
chunk checks its structures against the cache's manifest (count and content hash of every chunk), so it can never
write rows under another chunk's name. Chunks already complete in the cache are skipped, so a chunk job submitted
again after being killed computes only what it had not finished. While it computes, SIGTERM ends it at once (see
:func:`~pyiron_mlip_tradeoff.jobs.queue.exit_at_once_on_sigterm`).
"""

from __future__ import annotations

import time

from ..descriptor_cache import ChunkedDescriptorCache
from ..dft.base import InputError
from .base import StructureInputJob, mark_finished, to_builtin
from .queue import chunk_ended, exit_at_once_on_sigterm

__all__ = ["DescriptorChunk"]


class DescriptorChunk(StructureInputJob):
    """Chunks of a chunked descriptor cache, computed into its folder.

    Input (``job.input``):
        cache: the cache folder (absolute; compute nodes must see it, as they see pyiron projects).
        chunks: indices of the cache chunks this job computes.
        structures: the structures of those chunks, in order (chunk after chunk).
        pool_id, chunk_index: the ``DescriptorPool`` master (``None`` when run by hand) and this job's position
            in its plan. events_file: the master's log of chunk events (an ``ended`` record is appended).

    Output (``job.output``) of the latest run:
        computed / skipped: names (``chunk_<k>``) of the cache chunks computed / already complete when it started;
        seconds: wall seconds of the run.
    """

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.cache = None
        self.input.chunks = []
        self.input.structures = []
        self.input.pool_id = None
        self.input.chunk_index = 0
        self.input.events_file = None

    def _plan(self) -> tuple[ChunkedDescriptorCache, list[tuple[int, list]]]:
        """The cache and (chunk index, its structures) pairs, checked against the cache's manifest."""
        if not self.input.cache:
            raise InputError("a descriptor chunk needs the cache folder (input.cache)")
        try:
            cache = ChunkedDescriptorCache(self.input.cache)
        except (FileNotFoundError, ValueError) as err:
            raise InputError(str(err)) from None
        chunks = [int(k) for k in to_builtin(self.input.chunks)]
        if not chunks:
            raise InputError("a descriptor chunk needs at least one chunk index (input.chunks)")
        structures = list(self.input.structures)
        plan, start = [], 0
        for k in chunks:
            if not 0 <= k < cache.n_chunks:
                raise InputError(f"chunk index {k} is out of range: {cache.path} has {cache.n_chunks} chunks")
            a, b = cache.bounds[k]
            part = structures[start : start + b - a]
            start += b - a
            try:
                plan.append((k, cache.check_chunk_structures(k, part)))
            except (ValueError, TypeError) as err:
                raise InputError(str(err)) from None
        if start != len(structures):
            raise InputError(f"{len(structures)} structures given, chunks {chunks} of {cache.path} hold {start}")
        return cache, plan

    def validate_ready_to_run(self) -> None:
        """Check the chunks and their structures against the cache's manifest before the job is saved."""
        self._plan()

    def run_static(self) -> None:
        start = time.perf_counter()
        self.status.running = True
        cache, plan = self._plan()
        computed, skipped = [], []
        with exit_at_once_on_sigterm():
            for k, structures in plan:
                (computed if cache.compute_chunk(k, structures) else skipped).append(f"chunk_{k:05d}")
        out = self.output
        out.computed = computed
        out.skipped = skipped
        out.seconds = time.perf_counter() - start
        mark_finished(self)
        master_id = None if self.input.pool_id is None else int(self.input.pool_id)
        chunk_ended(self, self.input.events_file, master_id, computed=computed, skipped=skipped)
