"""pyiron job ``PrecisionLadder``: the same structures computed at a ladder of DFT precision levels.

>>> job = pr.create.job.PrecisionLadder("be_ladder")
>>> job.input.structures = [bulk("Be", "hcp", a=2.29, c=3.58)]
>>> job.input.levels = [1, 2, 3]          # reference ladder level numbers, or PrecisionLevel objects
>>> job.run()
>>> job.output.energy                      # (n_levels, n_configs), eV
>>> dataset = job.to_dataset()             # LadderDataset for every later step

Every (structure, level) calculation is stored in the job's working directory the moment it finishes. If the
Python process dies (``kill -9``, a crashed node, Ctrl-C), calling ``job.run()`` again on the reloaded job resumes
the ladder and computes only the calculations that had not finished; ``job.run(delete_existing_job=True)`` starts
from scratch.

On a cluster, ``job.server.queue`` with ``job.input.chunk_size`` splits the ladder into ``LadderChunk`` queue jobs
(see :class:`PrecisionLadder`):

>>> job.server.queue = "slurm_queue"
>>> job.server.cores = 4                   # per chunk: 4 calculations side by side
>>> job.input.chunk_size = 50              # calculations per chunk
>>> job.run()                              # submits the chunks, waits, resubmits killed ones, merges
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..dataset import LadderDataset
from ..dft.base import CalculationResult, InputError
from ..ladder import (
    LadderResults,
    LadderUnit,
    collect_ladder,
    load_unit,
    pending_units,
    plan_units,
    run_ladder,
    split_into_chunks,
    validate_ladder_input,
)
from ..precision import PrecisionLevel
from .base import StructureInputJob, mark_finished, to_builtin
from .queue import (
    ChunkedMaster,
    QueueChunk,
    chunk_job_name,
    validate_chunk_settings,
)

__all__ = ["PrecisionLadder", "chunk_job_name"]

_OWNER_FILE = "ladder_owner.json"
#: statuses from which ``job.run()`` continues a ladder instead of starting or refusing
_RESUMABLE = ("running", "aborted", "submitted", "collect", "suspended", "refresh", "busy")


class PrecisionLadder(ChunkedMaster, StructureInputJob):
    """Run structures through a DFT engine at several precision levels, recording energy, forces, stress and cost.

    Input (``job.input``):
        structures: list of ASE/pyiron structures (periodic cells, atoms ≥ 0.5 Å apart).
        levels: level numbers of the reference ladder (1–6) or :class:`PrecisionLevel` objects.
        engine: ``"gpaw"`` (embedded default, runs anywhere) or ``"vasp"`` (pyiron_atomistics ``Vasp`` child jobs).
        cores: calculations run side by side, one core each (GPAW); cores per VASP job (VASP). Default ``None``:
            pyiron's ``job.server.cores``.
        engine_options: engine keywords, checked before anything runs (GPAW: ``xc``, ``convergence``, ``maxiter``,
            ``symmetry``, ``txt``, ``spinpol``, ``mixer``, ``nbands``, ``setups``, see
            :mod:`pyiron_mlip_tradeoff.dft.gpaw`; VASP: ``incar``, ``potcar``, see :mod:`pyiron_mlip_tradeoff.dft.vasp`).
            Spin polarisation starts from the structures' initial magnetic moments.
        retry_failed: recompute calculations that failed in an earlier run of this job.
        timeout: seconds after which one GPAW calculation is abandoned and marked failed (``None``: no limit).
        unit_store: folder where each calculation's result is kept (default: the job's working directory). A
            store shared between jobs, or kept under version control, lets a new job pick up every calculation
            that any earlier job finished with the same structure, level and engine settings.
        chunk_size: calculations per queue job (``None``, the default: no chunks). Needs ``job.server.queue``.
        poll_interval: seconds between two looks at the queue and the database while waiting for chunks (default 30).
        max_resubmissions: how often one chunk is resubmitted after it died, per ``job.run()`` (default 3).
        wait_for_chunks: ``True`` (default): ``job.run()`` returns when the ladder is finished; ``False``: it returns
            once the chunks are submitted.

    Output (``job.output``), levels × configurations in input order:
        energy (eV, free energy), energy_zero_width (eV), forces (n_levels × total_atoms × 3, eV/Å), stress
        (n_levels × n_configs × 6, eV/Å³, Voigt, ASE sign), n_atoms, seconds (wall), core_seconds, kmesh,
        scf_iterations, failed (bool mask), messages (error text per calculation), levels (settings of each level),
        n_pending (calculations without a result yet: 0 once finished; while chunks run, the output holds what they
        have stored so far), chunk_events (chunked runs: JSON list of submissions, resubmissions and finished chunks).

    VASP on a queue: with ``job.server.queue`` set, every VASP calculation is a ``Vasp`` queue job of its own
    (``<name>_chunk<k>``, ``job.server.cores`` cores each, ``server.run_time``, ``server.memory_limit``); the
    ladder runs in the calling process, submits them, waits as for chunks below (a job that left the queue
    without a result is resubmitted) and stores each finished job's result (from its OUTCAR) in the unit store.
    With ``wait_for_chunks = False`` it returns after submitting; ``job.run()`` later collects what finished.

    GPAW on a queue without chunks: with ``job.server.queue`` set and ``chunk_size`` left ``None``, pyiron submits
    the whole ladder as one queue job with ``job.server.cores`` cores (calculations side by side), as for any pyiron job.

    Chunks on a queue (GPAW): with ``job.server.queue`` and ``chunk_size`` set, the ladder's calculations (in plan
    order: level by level, structures in input order) are cut into consecutive chunks of ``chunk_size``. Each chunk
    with calculations still to do becomes a ``LadderChunk`` child job (``<name>_chunk00000``, …) that pyiron
    submits through pysqa with ``job.server.cores`` cores (and ``server.run_time``, ``server.memory_limit``); it
    runs ``job.server.cores`` single-threaded calculations side by side (``input.cores``, if set, must not exceed
    that) and writes each result into the ladder's unit store as it finishes. The ladder job itself never takes a
    queue slot: ``job.run()`` runs it in the calling process, like pyiron's modal jobs:

    * ``wait_for_chunks = True``: it submits the chunks, then every ``poll_interval`` seconds asks the queue (pysqa)
      which chunks are still queued or running, merges what finished chunks stored into ``job.output`` (with
      ``n_pending``), and resubmits a chunk that left the queue with calculations missing (``scancel``, node
      failure, time limit, a crash) — the same child job, so it computes only its missing calculations. After
      ``max_resubmissions`` it stops with an error naming the chunk and its working directory (the SLURM log is
      there). When every calculation is stored, the output is assembled and the ladder is finished.
    * ``wait_for_chunks = False``: it submits the chunks and returns with status ``suspended``; the chunk that
      finishes last assembles the output and marks the ladder finished (``pr.wait_for_job(job)`` works). If a chunk
      died, the ladder stays ``suspended``: call ``job.run()`` on it again.

    Resuming: ``job.run()`` on a chunked ladder that is not finished (Ctrl-C, a closed notebook, a dead chunk)
    looks at its chunks again: chunks still in the queue are waited for, chunks with all calculations stored are
    done, and only chunks with missing calculations are submitted again, each computing only what is missing.
    The master's working directory (``job.working_directory``) or ``unit_store`` must be on a file system the
    compute nodes share, as pyiron projects on a cluster always are.
    """

    _master_noun = "ladder"
    _work_noun = "calculations"
    _owner_file = _OWNER_FILE

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.structures = []
        self.input.levels = [1, 2, 3, 4, 5, 6]
        self.input.engine = "gpaw"
        self.input.cores = None
        self.input.engine_options = {}
        self.input.retry_failed = False
        self.input.timeout = None
        self.input.unit_store = None
        self.input.chunk_size = None
        self.input.poll_interval = 30.0
        self.input.max_resubmissions = 3
        self.input.wait_for_chunks = True

    # -- input -----------------------------------------------------------------------------------------------
    def _levels_input(self) -> list:
        levels = self.input.levels
        if isinstance(levels, (int, np.integer, PrecisionLevel)):
            levels = [levels]
        return [lv.to_dict() if isinstance(lv, PrecisionLevel) else lv for lv in levels]

    def _validated_input(self) -> tuple[list, list[PrecisionLevel], dict]:
        """Structures, resolved levels and engine options of the input, checked (raises :class:`InputError`)."""
        return validate_ladder_input(
            self.input.structures, self._levels_input(), self.input.engine, self._engine_options(), self._cores()
        )

    def validate_ready_to_run(self) -> None:
        """Check all input before anything is saved or computed (raises :class:`InputError`)."""
        self._validated_input()
        timeout = self.input.timeout
        if timeout is not None and (not np.isfinite(timeout) or timeout <= 0):
            raise InputError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        self._validate_chunk_input()
        if self.input.engine == "vasp":
            _require_vasp_executable(self.project)
        self.input.levels = self._levels_input()

    def _validate_chunk_input(self) -> None:
        validate_chunk_settings(self, "ladder", "calculations")
        if self.input.get("chunk_size") is None:
            return
        if self.input.engine != "gpaw":
            raise InputError(
                f"chunk_size applies to the GPAW engine; with engine {self.input.engine!r} every calculation is "
                "already a queue job of its own"
            )
        server_cores = int(self.server.cores or 1)
        if self.input.cores is not None and self.input.cores > server_cores:
            raise InputError(
                f"input.cores = {self.input.cores} calculations side by side do not fit the {server_cores} "
                "core(s) of each chunk (job.server.cores)"
            )

    def _chunked(self) -> bool:
        """Whether ``job.run()`` splits this ladder into queue jobs: ``LadderChunk`` jobs (GPAW with
        ``chunk_size``) or one ``Vasp`` job per calculation (VASP)."""
        if self.server.queue is None:
            return False
        return self.input.engine == "vasp" or self.input.get("chunk_size") is not None

    def _cores(self):
        """``input.cores``, or pyiron's ``job.server.cores`` when it is not set."""
        return self.server.cores if self.input.cores is None else self.input.cores

    def _engine_options(self) -> dict:
        return dict(to_builtin(self.input.engine_options) or {})

    # -- running and resuming ------------------------------------------------------------------------------------
    def run(
        self,
        delete_existing_job: bool = False,
        repair: bool = False,
        debug: bool = False,
        run_mode: str | None = None,
        run_again: bool = False,
    ) -> None:
        """Run the ladder; on a ladder whose earlier process died, resume it (see the module docstring)."""
        status = self.status.string
        if not (delete_existing_job or run_again) and status in _RESUMABLE:
            if self._chunked():
                self._check_not_owned_by_live_process()
                self.status.created = True
            elif status in ("running", "aborted", "submitted", "collect") and (
                self.server.run_mode.modal or run_mode == "modal"
            ):
                self._check_not_owned_by_live_process()
                self.status.created = True
        return super().run(
            delete_existing_job=delete_existing_job, repair=repair, debug=debug, run_mode=run_mode,
            run_again=run_again,
        )

    def run_static(self) -> None:
        structures, levels, options = self._validated_input()
        self.status.running = True
        Path(self.working_directory).mkdir(parents=True, exist_ok=True)
        self._claim_owner()
        runner = self._run_vasp_unit if self.input.engine == "vasp" else None
        results = run_ladder(
            structures, levels, self._store_dir(), engine=self.input.engine, cores=self._cores(),
            engine_options=options, retry_failed=bool(self.input.retry_failed), runner=runner,
            timeout=self.input.timeout, progress=True,
        )
        self._store_output(results)
        self._release_owner()
        mark_finished(self)

    def _store_output(self, results: LadderResults) -> None:
        out = self.output
        out.energy = results.energy
        out.energy_zero_width = results.energy_zero_width
        out.forces = results.forces
        out.stress = results.stress
        out.n_atoms = np.array([len(s) for s in results.structures], dtype=np.int64)
        out.seconds = results.seconds
        out.core_seconds = results.core_seconds
        out.kmesh = results.kmesh
        out.scf_iterations = results.scf_iterations
        out.failed = results.failed
        out.n_failed = int(results.failed.sum())
        out.messages = [list(row) for row in results.messages]
        out.levels = [lv.to_dict() for lv in results.levels]
        out.level_numbers = np.array([lv.level for lv in results.levels], dtype=np.int64)
        out.metadata = json.dumps(results.metadata)
        out.total_seconds = float(np.nansum(results.seconds))
        out.n_pending = len(results.pending)

    # -- chunks on a queue -------------------------------------------------------------------------------------
    def run_if_scheduler(self) -> int | None:
        """With ``chunk_size`` set, run the chunked ladder here and send only its chunks to the queue."""
        if not self._chunked():
            return super().run_if_scheduler()
        return self._run_chunked()

    def _store_dir(self) -> Path:
        return Path(self.input.unit_store).resolve() if self.input.unit_store else Path(self.working_directory)

    def _plan(self) -> tuple[list, list[PrecisionLevel], dict, list[LadderUnit]]:
        """Structures, levels, engine options and all units of the ladder (planned once per job object)."""
        plan = getattr(self, "_plan_cache", None)
        if plan is None:
            structures, levels, options = self._validated_input()
            units = plan_units(structures, levels, self._store_dir(), self.input.engine, options)
            plan = self._plan_cache = (structures, levels, options, units)
        return plan

    def _queue_chunks(self) -> list[QueueChunk]:
        """The ladder's queue jobs: ``chunk_size`` calculations each (GPAW), or one per calculation (VASP)."""
        _, _, _, units = self._plan()
        size = 1 if self.input.engine == "vasp" else int(self.input.chunk_size)
        return [QueueChunk(index, chunk_units) for index, chunk_units in enumerate(split_into_chunks(units, size))]

    def _run_chunked(self) -> None:
        self._plan_cache = None  # plan from the input as it is now
        self._store_dir().mkdir(parents=True, exist_ok=True)
        self._begin_chunked_run()
        chunks = self._queue_chunks()
        self._vasp_chunks = {chunk.index: chunk for chunk in chunks}
        self._run_chunks(chunks)

    # hooks of ChunkedMaster
    def _chunk_todo(self, chunk: QueueChunk) -> list[str]:
        return [u.name for u in pending_units(chunk.items, bool(self.input.retry_failed))]

    def _chunk_missing(self, chunk: QueueChunk) -> list[str]:
        return [u.name for u in chunk.items if load_unit(u) is None]

    def _chunk_matches(self, child, chunk: QueueChunk) -> bool:
        if self.input.engine == "vasp":
            from ..dft.base import structure_fingerprint

            (unit,) = chunk.items
            _, _, options, _ = self._plan()
            try:
                atoms = child.structure.to_ase() if hasattr(child.structure, "to_ase") else child.structure
            except AttributeError:
                return False
            return structure_fingerprint(atoms, unit.level, "vasp", options) == unit.fingerprint
        return [str(f) for f in to_builtin(child.input.fingerprints)] == [u.fingerprint for u in chunk.items]

    def _before_chunk_scan(self) -> None:
        """VASP on a queue: store the result of every VASP job that ended since the last look (a finished job's
        OUTCAR, or the reason it failed), so that its calculation counts as done."""
        if self.input.engine != "vasp":
            return
        from ..dft.vasp import result_from_vasp_job
        from ..ladder import store_result

        chunks = getattr(self, "_vasp_chunks", None) or {c.index: c for c in self._queue_chunks()}
        structures, _, _, _ = self._plan()
        for name, entry in self._chunk_entries().items():
            if entry["status"] not in ("finished", "aborted"):
                continue
            try:
                index = int(name.rsplit("_chunk", 1)[1])
            except (IndexError, ValueError):
                continue
            chunk = chunks.get(index)
            if chunk is None or not self._chunk_todo(chunk):
                continue
            (unit,) = chunk.items
            child = self.project.load(int(entry["id"]))
            if not self._chunk_matches(child, chunk):
                continue
            store_result(unit, result_from_vasp_job(child, structures[unit.config], unit.level),
                         len(structures[unit.config]))

    def _chunks_merged(self) -> None:
        structures, levels, options, _ = self._plan()
        results = collect_ladder(structures, levels, self._store_dir(), self.input.engine, options)
        self._store_output(results)
        self.to_hdf()

    def _chunks_complete(self) -> bool:
        _, _, _, units = self._plan()
        return all(load_unit(u) is not None for u in units)

    def _finish_chunked(self) -> None:
        """Assemble the output from the unit store and mark the ladder finished (all calculations stored)."""
        structures, levels, options, _ = self._plan()
        results = collect_ladder(structures, levels, self._store_dir(), self.input.engine, options)
        if results.pending:
            raise RuntimeError(f"{len(results.pending)} calculation(s) have no result: {results.pending[:5]}")
        self._store_output(results)
        self.output.chunk_events = json.dumps(self.chunk_events())
        mark_finished(self)

    def _new_chunk_job(self, chunk: QueueChunk, name: str):
        if self.input.engine == "vasp":
            from ..dft.vasp import configure_vasp_job

            structures, _, options, _ = self._plan()
            (unit,) = chunk.items
            return configure_vasp_job(self.project.create_job("Vasp", name), structures[unit.config], unit.level,
                                      options)
        from .chunk import LadderChunk

        structures, levels, options, _ = self._plan()
        child = self.project.create_job(LadderChunk, name)
        configs = sorted({u.config for u in chunk.items})
        numbers = sorted({u.level.level for u in chunk.items})
        inp = child.input
        inp.structures = [structures[c] for c in configs]
        inp.configs = configs
        inp.units = np.array([[u.config, u.level.level] for u in chunk.items], dtype=np.int64)
        inp.fingerprints = [u.fingerprint for u in chunk.items]
        inp.levels = json.dumps([lv.to_dict() for lv in levels if lv.level in numbers])
        inp.engine = self.input.engine
        inp.engine_options = json.dumps(options)
        inp.unit_store = str(self._store_dir())
        inp.cores = int(self._cores())
        inp.timeout = self.input.timeout
        inp.retry_failed = bool(self.input.retry_failed)
        inp.ladder_id = int(self.job_id)
        inp.chunk_index = chunk.index
        inp.events_file = str(self._events_path)
        return child

    def _run_vasp_unit(self, unit: LadderUnit, atoms) -> CalculationResult:
        from ..dft.vasp import configure_vasp_job, result_from_vasp_job

        name = f"{self.job_name}_vasp_c{unit.config:05d}_L{unit.level.level}"
        job = self.project.create_job("Vasp", name)
        if job.status.finished:
            return result_from_vasp_job(job, atoms, unit.level)
        configure_vasp_job(job, atoms, unit.level, self._engine_options())
        job.master_id = self.job_id
        job.server.cores = self._cores()
        try:
            job.run()
        except Exception as err:  # a VASP crash marks this calculation failed, not the ladder
            mesh = unit.level.kpoint_mesh(np.asarray(atoms.get_cell()))
            return CalculationResult.failure(len(atoms), mesh, f"VASP job {name}: {err}", engine="vasp")
        return result_from_vasp_job(job, atoms, unit.level)

    # -- results -----------------------------------------------------------------------------------------------
    def to_dataset(self) -> LadderDataset:
        """The ladder's results as a :class:`LadderDataset` (failed calculations NaN and marked failed)."""
        if not self.status.finished:
            raise RuntimeError(f"ladder {self.job_name} has status {self.status}; run it first")
        out = self.output
        levels = [PrecisionLevel.from_dict(d) for d in out.levels]
        metadata = json.loads(out.metadata)
        metadata["job_name"] = self.job_name
        return LadderDataset(
            list(self.input.structures), np.asarray(out.energy), np.asarray(out.forces), levels=levels,
            seconds=np.asarray(out.seconds), stress=np.asarray(out.stress), kmesh=np.asarray(out.kmesh),
            failed=np.asarray(out.failed, dtype=bool), metadata=metadata,
            core_seconds=np.asarray(out.core_seconds),
        )


def _require_vasp_executable(project) -> None:
    from pyiron_base import Executable

    if not Executable(codename="vasp").executable_lst:
        raise InputError(
            "engine 'vasp' needs VASP set up in pyiron's resources (vasp/bin/run_vasp_<version>.sh and the "
            "potentials); none was found in " + ", ".join(map(str, _resource_paths()))
        )


def _resource_paths() -> list:
    from pyiron_base import state

    return list(state.settings.resource_paths)

