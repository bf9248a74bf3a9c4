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
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np

from ..dataset import LadderDataset
from ..dft.base import CalculationResult, InputError
from ..ladder import LadderResults, LadderUnit, run_ladder, validate_ladder_input
from ..precision import PrecisionLevel
from .base import StructureInputJob, to_builtin

__all__ = ["PrecisionLadder"]

_OWNER_FILE = "ladder_owner.json"


class PrecisionLadder(StructureInputJob):
    """Run structures through a DFT engine at several precision levels, recording energy, forces, stress and cost.

    Input (``job.input``):
        structures: list of ASE/pyiron structures (periodic cells, atoms ≥ 0.5 Å apart).
        levels: level numbers of the reference ladder (1–6) or :class:`PrecisionLevel` objects.
        engine: ``"gpaw"`` (embedded default, runs anywhere) or ``"vasp"`` (pyiron_atomistics ``Vasp`` child jobs).
        cores: calculations run side by side, one core each (GPAW); cores per VASP job (VASP). Default ``None``:
            pyiron's ``job.server.cores``.
        engine_options: engine keywords (GPAW: ``maxiter``, ``convergence``, ``xc``, ``symmetry``, ``txt``).
        retry_failed: recompute calculations that failed in an earlier run of this job.
        timeout: seconds after which one GPAW calculation is abandoned and marked failed (``None``: no limit).
        unit_store: folder where each calculation's result is kept (default: the job's working directory). A
            store shared between jobs, or kept under version control, lets a new job pick up every calculation
            that any earlier job finished with the same structure, level and engine settings.

    Output (``job.output``), levels × configurations in input order:
        energy (eV, free energy), energy_zero_width (eV), forces (n_levels × total_atoms × 3, eV/Å), stress
        (n_levels × n_configs × 6, eV/Å³, Voigt, ASE sign), n_atoms, seconds (wall), core_seconds, kmesh,
        scf_iterations, failed (bool mask), messages (error text per calculation), levels (settings of each level).
    """

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

    # -- input -----------------------------------------------------------------------------------------------
    def _levels_input(self) -> list:
        levels = self.input.levels
        if isinstance(levels, (int, np.integer, PrecisionLevel)):
            levels = [levels]
        return [lv.to_dict() if isinstance(lv, PrecisionLevel) else lv for lv in levels]

    def validate_ready_to_run(self) -> None:
        """Check all input before anything is saved or computed (raises :class:`InputError`)."""
        validate_ladder_input(
            self.input.structures, self._levels_input(), self.input.engine, self._engine_options(), self._cores()
        )
        timeout = self.input.timeout
        if timeout is not None and (not np.isfinite(timeout) or timeout <= 0):
            raise InputError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        if self.input.engine == "vasp":
            _require_vasp_executable(self.project)
        self.input.levels = self._levels_input()

    def _cores(self):
        """``input.cores``, or pyiron's ``job.server.cores`` when it is not set."""
        return self.server.cores if self.input.cores is None else self.input.cores

    def _engine_options(self) -> dict:
        return dict(to_builtin(self.input.engine_options) or {})

    # -- running and resuming ------------------------------------------------------------------------------------
    def run(self, delete_existing_job=False, repair=False, debug=False, run_mode=None, run_again=False):
        """Run the ladder; on a ladder whose earlier process died, resume it (see the module docstring)."""
        status = self.status.string
        if not (delete_existing_job or run_again) and status in ("running", "aborted", "submitted", "collect"):
            if self.server.run_mode.modal or run_mode == "modal":
                self._check_not_owned_by_live_process()
                self.status.created = True
        return super().run(
            delete_existing_job=delete_existing_job, repair=repair, debug=debug, run_mode=run_mode,
            run_again=run_again,
        )

    def _check_not_owned_by_live_process(self) -> None:
        owner_file = Path(self.working_directory) / _OWNER_FILE
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
            f"ladder {self.job_name} is being computed by process {owner['pid']} on this machine; "
            "wait for it or stop it before resuming"
        )

    def run_static(self):
        structures, levels, options = validate_ladder_input(
            self.input.structures, self._levels_input(), self.input.engine, self._engine_options(), self._cores()
        )
        self.status.running = True
        workdir = Path(self.working_directory)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / _OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        runner = self._run_vasp_unit if self.input.engine == "vasp" else None
        store = Path(self.input.unit_store) if self.input.unit_store else workdir
        results = run_ladder(
            structures, levels, store, engine=self.input.engine, cores=self._cores(),
            engine_options=options, retry_failed=bool(self.input.retry_failed), runner=runner,
            timeout=self.input.timeout, progress=True,
        )
        self._store_output(results)
        (workdir / _OWNER_FILE).unlink(missing_ok=True)
        self.status.finished = True
        self.to_hdf()

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

    def _run_vasp_unit(self, unit: LadderUnit, atoms) -> CalculationResult:
        from ..dft.vasp import configure_vasp_job, result_from_vasp_job

        name = f"{self.job_name}_vasp_c{unit.config:05d}_L{unit.level.level}"
        job = self.project.create_job("Vasp", name)
        if job.status.finished:
            return result_from_vasp_job(job, atoms, unit.level)
        configure_vasp_job(job, atoms, unit.level)
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

