"""pyiron job ``LadderChunk``: a slice of a ``PrecisionLadder``'s calculations, run as a queue job of its own.

A ``PrecisionLadder`` with ``job.server.queue`` and ``job.input.chunk_size`` set creates these children itself (see
:class:`pyiron_mlip_tradeoff.jobs.ladder.PrecisionLadder`); nobody needs to create one by hand. A chunk computes its
(structure, level) calculations with ``input.cores`` single-threaded GPAW workers side by side and writes each
result into the ladder's unit store (under the calculation's fingerprint) the moment it finishes, exactly as a ladder run in one process does. It skips
calculations already stored there, so a chunk that is submitted again after being killed (``scancel``, a lost node,
a time limit) computes only the calculations it had not finished.

When the last chunk of a ladder whose master returned after submitting (``wait_for_chunks = False``, master status
``suspended``) finishes, it assembles the ladder's output and marks the ladder finished.
"""

from __future__ import annotations

import json
import time

import numpy as np

from ..dft.base import InputError
from ..ladder import compute_units, load_unit, make_unit, pending_units, validate_ladder_input
from ..precision import PrecisionLevel
from .base import StructureInputJob, mark_finished, to_builtin
from .queue import chunk_ended

__all__ = ["LadderChunk"]


class LadderChunk(StructureInputJob):
    """Some of a ladder's (structure, level) calculations, written into the ladder's unit store.

    Input (``job.input``, written by the ladder):
        structures: the structures the chunk needs, one per entry of ``configs``.
        configs: index in the ladder of each of those structures.
        units: (n_units × 2) integers, the ladder index of the structure and the level number of each calculation.
        fingerprints: the ladder's fingerprint of each calculation; the chunk recomputes and compares them, so a
            chunk can never store a result under another calculation's name.
        levels: JSON list of the :class:`PrecisionLevel` settings of the level numbers used.
        engine: ``"gpaw"``. engine_options: JSON of the GPAW options (exact, so fingerprints match).
        unit_store: the ladder's store folder (absolute; compute nodes must see it, as they see pyiron projects).
        cores: calculations run side by side, one core each (the ladder's ``job.server.cores``).
        timeout: seconds before one calculation is abandoned (``None``: no limit). retry_failed: recompute
            calculations stored as failed.
        ladder_id, chunk_index: the ladder job (master) and the position of this chunk in its plan.
        events_file: the ladder's log of chunk events; the chunk appends an ``ended`` record when it finishes.

    Output (``job.output``) of the latest run:
        computed: names of the calculations computed (``c<config>_L<level>``); skipped: those already stored when it
        started; n_failed: calculations of the chunk stored as failed; seconds: wall seconds of the run.
    """

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.structures = []
        self.input.configs = []
        self.input.units = np.zeros((0, 2), dtype=np.int64)
        self.input.fingerprints = []
        self.input.levels = "[]"
        self.input.engine = "gpaw"
        self.input.engine_options = "{}"
        self.input.unit_store = None
        self.input.cores = 1
        self.input.timeout = None
        self.input.retry_failed = False
        self.input.ladder_id = None
        self.input.chunk_index = 0
        self.input.events_file = None

    def validate_ready_to_run(self) -> None:
        """Check the chunk's calculations against its structures before it is saved or submitted."""
        if not self.input.unit_store:
            raise InputError("a ladder chunk needs the ladder's unit_store folder")
        self._units()

    def _units(self) -> tuple[list, dict]:
        """The chunk's units (paths in the ladder's store, the ladder's fingerprints) and structure per config."""
        configs = [int(c) for c in to_builtin(self.input.configs)]
        structures = list(self.input.structures)
        if len(configs) != len(structures):
            raise InputError(f"{len(configs)} structure indices for {len(structures)} structures")
        options = json.loads(self.input.engine_options)
        levels = {int(d["level"]): PrecisionLevel.from_dict(d) for d in json.loads(self.input.levels)}
        structures, _, options = validate_ladder_input(
            structures, list(levels.values()), self.input.engine, options, int(self.input.cores)
        )
        atoms = dict(zip(configs, structures, strict=True))
        pairs = np.asarray(self.input.units, dtype=np.int64).reshape(-1, 2)
        fingerprints = [str(f) for f in to_builtin(self.input.fingerprints)]
        if len(fingerprints) != len(pairs):
            raise InputError(f"{len(fingerprints)} fingerprints for {len(pairs)} calculations")
        units = []
        for (config, number), fingerprint in zip(pairs.tolist(), fingerprints, strict=True):
            if config not in atoms or number not in levels:
                raise InputError(f"calculation (structure {config}, level {number}) has no structure or level here")
            unit = make_unit(config, atoms[config], levels[number], self.input.unit_store, self.input.engine, options)
            if unit.fingerprint != fingerprint:
                raise InputError(
                    f"calculation (structure {config}, level {number}): the chunk's structure or settings differ "
                    "from the ladder's (fingerprints disagree); nothing is stored"
                )
            units.append(unit)
        return units, atoms

    def run_static(self) -> None:
        start = time.perf_counter()
        self.status.running = True
        units, atoms = self._units()
        todo = pending_units(units, bool(self.input.retry_failed))
        names = {u.name for u in todo}
        compute_units(
            todo, atoms, engine=self.input.engine, cores=int(self.input.cores),
            engine_options=json.loads(self.input.engine_options), timeout=self.input.timeout,
        )
        out = self.output
        out.computed = [u.name for u in todo]
        out.skipped = [u.name for u in units if u.name not in names]
        out.n_failed = int(sum(1 for u in units if (r := load_unit(u)) is not None and r.failed))
        out.seconds = time.perf_counter() - start
        mark_finished(self)
        master_id = None if self.input.ladder_id is None else int(self.input.ladder_id)
        chunk_ended(self, self.input.events_file, master_id, computed=list(out.computed), skipped=list(out.skipped))

    def unit_names(self) -> list[str]:
        """Names of the chunk's calculations (``c<config>_L<level>``), in ladder order."""
        pairs = np.asarray(self.input.units, dtype=np.int64).reshape(-1, 2)
        return [f"c{c:05d}_L{lv}" for c, lv in pairs.tolist()]
