"""pyiron job ``DescriptorPool``: qSNAP descriptors of a large pool into a chunked, resumable cache.

Without a queue the job computes the chunks of :func:`~pyiron_mlip_tradeoff.descriptor_cache.compute_chunked_descriptors`
in its own process, ``input.n_workers`` chunks side by side. With ``input.queue`` (a queue pysqa knows) it never takes
a queue slot itself: it writes the cache's manifest and sends its missing chunks as ``DescriptorChunk`` jobs
(``input.chunks_per_job`` cache chunks each) through the machinery of
:class:`~pyiron_mlip_tradeoff.jobs.queue.ChunkedMaster` — resubmission of chunks that die, ``wait_for_chunks``,
the event log. Either way finished chunks are never computed again, so ``job.run()`` on an interrupted pool
continues it.
"""

from __future__ import annotations

import json
import os
import time

from ..descriptor_cache import ChunkedDescriptorCache, check_chunk_size, prepare_chunked_cache
from ..descriptor_cache import compute_chunked_descriptors as _compute
from ..dft.base import InputError
from .base import StructureInputJob, mark_finished, to_builtin
from .queue import ChunkedMaster, QueueChunk, validate_chunk_settings

__all__ = ["DescriptorPool", "check_queue_known"]

_RESUMABLE = ("running", "aborted", "submitted", "collect", "suspended", "refresh", "busy")


def check_queue_known(queue: str) -> None:
    """``InputError`` unless pysqa (pyiron's queue adapter) is configured and knows the queue ``queue``."""
    from pyiron_base import state

    adapter = state.queue_adapter
    if adapter is None:
        raise InputError(
            f"queue {queue!r}: no queue system is configured for pyiron (no queue.yaml under "
            "$PYIRONRESOURCEPATHS/queues); see pyiron_mlip_tradeoff.cluster.write_slurm_queue_config"
        )
    known = list(adapter.queue_list)
    if queue not in known:
        raise InputError(f"queue {queue!r} is not known to pysqa; known queues: {known}")


class DescriptorPool(ChunkedMaster, StructureInputJob):
    """Descriptors of ``input.structures`` in a chunked cache (see the module docstring).

    Input (``job.input``):
        structures: the pool (ASE or pyiron structures). twojmax: 2Jmax (even, 0..10). elements: symbols in model
        order. settings: JSON of further ``[BISPECTRUM]`` settings. virial: also the 6 virial rows per configuration.
        chunk_size: configurations per cache chunk. cache_dir: parent folder of the caches (default: the job's
        working directory's ``descriptors``; compute nodes must see it). n_workers: chunks side by side without
        a queue.
        queue: ``None`` (this process) or a pysqa queue name; then chunks_per_job cache chunks per queue job,
        ``job.server.cores`` ignored (one core each), poll_interval (s), max_resubmissions, wait_for_chunks.

    Output (``job.output``):
        cache: the cache folder (open it with :class:`~pyiron_mlip_tradeoff.descriptor_cache.ChunkedDescriptorCache`);
        n_configs, n_chunks, n_computed (chunks computed by this run); seconds (wall, submission to finished).
    """

    _master_noun = "descriptor pool"
    _work_noun = "descriptor chunks"

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        inp = self.input
        inp.structures = []
        inp.twojmax = 6
        inp.elements = ["Be"]
        inp.settings = "{}"
        inp.virial = False
        inp.chunk_size = 50
        inp.cache_dir = None
        inp.n_workers = 1
        inp.queue = None
        inp.chunks_per_job = 1
        inp.poll_interval = 30.0
        inp.max_resubmissions = 3
        inp.wait_for_chunks = True

    # -- input ---------------------------------------------------------------------------------------------------
    def _cache_dir(self) -> str:
        return os.path.abspath(self.input.cache_dir or os.path.join(self.working_directory, "descriptors"))

    def _core_kwargs(self) -> dict:
        try:
            settings = json.loads(self.input.settings or "{}")
        except (TypeError, json.JSONDecodeError) as err:
            raise InputError(f"settings must be a JSON object of [BISPECTRUM] settings, got {self.input.settings!r}"
                             ) from err
        return {"twojmax": self.input.twojmax, "elements": list(to_builtin(self.input.elements)),
                "virial": bool(self.input.virial), "chunk_size": self.input.chunk_size, **settings}

    def _prepare(self, write: bool) -> ChunkedDescriptorCache | str:
        try:
            return prepare_chunked_cache(self._cache_dir(), list(self.input.structures), write=write,
                                         **self._core_kwargs())
        except (ValueError, TypeError, OSError) as err:
            raise InputError(str(err)) from None

    def validate_ready_to_run(self) -> None:
        """Check structures, settings, chunk sizes, the cache folder and the queue before anything is saved."""
        queue = self.input.get("queue")
        if queue is not None:
            check_queue_known(str(queue))
            cpj = self.input.chunks_per_job
            try:
                check_chunk_size(cpj)
            except ValueError:
                raise InputError(f"chunks_per_job must be a positive integer, got {cpj!r}") from None
            # poll_interval, max_resubmissions, wait_for_chunks as for the ladder and the grid
            if self.server.queue != str(queue):
                self.server.queue = str(queue)
            validate_chunk_settings(self, "descriptor pool", "configurations")
        else:
            workers = self.input.n_workers
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise InputError(f"n_workers must be a positive integer, got {workers!r}")
        self._prepare(write=False)

    # -- running -------------------------------------------------------------------------------------------------
    def run(self, delete_existing_job: bool = False, repair: bool = False, debug: bool = False,
            run_mode: str | None = None, run_again: bool = False) -> None:
        """Run the pool; on an interrupted pool, continue it (finished chunks are not recomputed)."""
        if not (delete_existing_job or run_again) and self.status.string in _RESUMABLE:
            if self.input.get("queue") is not None:
                self._check_not_owned_by_live_process()
            self.status.created = True
        queue = self.input.get("queue")
        if queue is not None and self.server.queue != str(queue):
            check_queue_known(str(queue))
            self.server.queue = str(queue)
        return super().run(delete_existing_job=delete_existing_job, repair=repair, debug=debug, run_mode=run_mode,
                           run_again=run_again)

    def run_static(self) -> None:
        start = time.perf_counter()
        self.status.running = True
        computed = []
        try:
            cache = _compute(self._cache_dir(), list(self.input.structures), n_workers=int(self.input.n_workers),
                             on_chunk=lambda k, s: computed.append(k), **self._core_kwargs())
        except (ValueError, TypeError, OSError) as err:
            raise InputError(str(err)) from None
        self._store_output(cache, len(computed), time.perf_counter() - start)
        mark_finished(self)

    def _store_output(self, cache: ChunkedDescriptorCache, n_computed: int, seconds: float) -> None:
        out = self.output
        out.cache = str(cache.path)
        out.n_configs = cache.n_configs
        out.n_chunks = cache.n_chunks
        out.n_computed = int(n_computed)
        out.seconds = float(seconds)

    def run_if_scheduler(self) -> int | None:
        """With ``input.queue``: run here, and send only the missing chunks to the queue."""
        if self.input.get("queue") is None:
            return super().run_if_scheduler()
        started = time.time()
        self._cache = cache = self._prepare(write=True)
        self._begin_chunked_run()
        per_job = int(self.input.chunks_per_job)
        ids = list(range(cache.n_chunks))
        chunks = [QueueChunk(j // per_job, ids[j : j + per_job]) for j in range(0, len(ids), per_job)]
        todo = [chunk for chunk in chunks if self._chunk_todo(chunk)]
        self.output.run_started = started
        self.output.n_computed = int(sum(len(self._chunk_todo(c)) for c in todo))
        self.to_hdf()
        self._run_chunks(todo)
        return None

    # -- hooks of ChunkedMaster -----------------------------------------------------------------------------------
    def _pool_cache(self) -> ChunkedDescriptorCache:
        cache = getattr(self, "_cache", None)
        if cache is None:
            cache = self._cache = ChunkedDescriptorCache(self._prepare(write=False))
        return cache

    def _chunk_todo(self, chunk: QueueChunk) -> list[str]:
        cache = self._pool_cache()
        return [f"chunk_{k:05d}" for k in chunk.items if cache.chunk_store(k) is None]

    def _chunk_missing(self, chunk: QueueChunk) -> list[str]:
        return self._chunk_todo(chunk)

    def _chunk_matches(self, child, chunk: QueueChunk) -> bool:
        return ([int(k) for k in to_builtin(child.input.chunks)] == list(chunk.items)
                and child.input.cache == str(self._pool_cache().path))

    def _new_chunk_job(self, chunk: QueueChunk, name: str):
        from .descriptor_chunk import DescriptorChunk

        cache = self._pool_cache()
        structures = list(self.input.structures)
        child = self.project.create_job(DescriptorChunk, name)
        inp = child.input
        inp.cache = str(cache.path)
        inp.chunks = list(chunk.items)
        inp.structures = [atoms for k in chunk.items for atoms in structures[slice(*cache.bounds[k])]]
        inp.pool_id = int(self.job_id)
        inp.chunk_index = int(chunk.index)
        inp.events_file = str(self._events_path)
        return child

    def _chunks_complete(self) -> bool:
        return self._pool_cache().complete

    def _finish_chunked(self) -> None:
        cache = self._pool_cache()
        if not cache.complete:
            raise RuntimeError(f"{cache.path}: chunks {cache.missing_chunks()[:10]} have no stored rows")
        started = self.output.get("run_started")
        seconds = time.time() - float(started) if started is not None else float("nan")
        self._store_output(cache, int(self.output.get("n_computed") or 0), seconds)
        self.output.chunk_events = json.dumps(self.chunk_events())
        mark_finished(self)
