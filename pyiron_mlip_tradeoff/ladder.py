"""The precision ladder: the same structures computed at several DFT precision levels, one file per calculation.

Each (structure, level) pair is a *unit*. Its result is written to ``<workdir>/units/<fingerprint>.json`` the
moment it finishes (atomically); the fingerprint (:func:`~pyiron_mlip_tradeoff.dft.base.structure_fingerprint`)
hashes the structure, the level's settings and the engine with its options. A *unit store* is therefore keyed by
what is computed, not by where a structure sits in some input list: any ladder pointed at a store reuses every
calculation any other ladder finished there, and two ladders with different structure lists never overwrite each
other. Running a ladder again skips every unit whose file exists, so an interrupted ladder (even one killed with
``kill -9``) resumes where it stopped and recomputes nothing that finished.

Stores written by earlier versions (``units/c<config>_L<level>.json``, keyed by position) are adopted on first
use: a file whose stored fingerprint is the old fingerprint of this ladder's unit is moved to its new name.
A unit that failed (SCF not converged, engine error, crashed worker) is stored as failed with its message and
is not retried unless asked (``retry_failed=True``).

Nothing in this module imports pyiron; :class:`pyiron_mlip_tradeoff.jobs.ladder.PrecisionLadder` wraps it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from .dataset import LadderDataset
from .dft.base import (
    CalculationResult,
    InputError,
    check_structures,
    legacy_fingerprint,
    structure_fingerprint,
)
from .dft.worker import SINGLE_THREAD_ENV, task_dict, write_json_atomic
from .precision import PrecisionLevel, resolve_levels

__all__ = [
    "ENGINES", "LadderResults", "LadderUnit", "collect_ladder", "compute_units", "load_unit", "pending_units",
    "plan_units", "make_unit", "run_ladder", "store_result", "split_into_chunks", "unit_path", "validate_ladder_input",
]

ENGINES = ("gpaw", "vasp")

#: a runner computes one unit in the calling process (used for engines driven through pyiron, e.g. VASP)
Runner = Callable[["LadderUnit", Atoms], CalculationResult]


@dataclass(frozen=True)
class LadderUnit:
    """One (structure, level) calculation of a ladder: ``config`` is the structure's index in the ladder, ``path``
    the calculation's file in the store (named by its ``fingerprint``)."""

    config: int
    level: PrecisionLevel
    path: Path
    fingerprint: str

    @property
    def name(self) -> str:
        """``c<config>_L<level>``: the calculation's place in this ladder (for messages and logs)."""
        return f"c{int(self.config):05d}_L{int(self.level.level)}"


def validate_ladder_input(
    structures: Sequence[Atoms],
    levels: Iterable[int | PrecisionLevel],
    engine: str = "gpaw",
    engine_options: dict | None = None,
    cores: int = 1,
) -> tuple[list[Atoms], list[PrecisionLevel], dict]:
    """Check everything about a ladder before any DFT starts; returns (structures, levels, engine options).

    Raises:
        InputError: empty structure list, atoms closer than 0.5 Å, a non-periodic or cell-less structure, an unknown
            level number, a non-positive cutoff or k-spacing, an unknown engine or engine option (named) or a bad
            option value, a non-positive core count, or (GPAW) an element without an installed PAW setup.
    """
    if engine not in ENGINES:
        raise InputError(f"unknown DFT engine {engine!r}; choose one of {list(ENGINES)}")
    if isinstance(cores, bool) or not isinstance(cores, (int, np.integer)) or cores < 1:
        raise InputError(f"cores must be a positive integer, got {cores!r}")
    structures = list(structures) if structures is not None else []
    check_structures(structures)
    try:
        resolved = resolve_levels(levels)
    except (ValueError, TypeError) as err:
        raise InputError(str(err)) from err
    options = dict(engine_options or {})
    symbols = {s for atoms in structures for s in atoms.get_chemical_symbols()}
    if engine == "gpaw":
        from .dft.gpaw import check_engine_options, missing_setups

        options = check_engine_options(options)
        missing = missing_setups(symbols, xc=options.get("xc", "PBE"), setups=options.get("setups"))
        if missing:
            raise InputError(
                f"no GPAW PAW setup installed for {missing} (looked in gpaw-data and GPAW_SETUP_PATH); "
                "install one or remove those structures"
            )
    else:
        from .dft.vasp import check_engine_options as check_vasp_options

        options = check_vasp_options(options, symbols)
    return structures, resolved, options


def unit_path(workdir: str | os.PathLike, fingerprint: str) -> Path:
    """Where the calculation with ``fingerprint`` is stored in the unit store ``workdir``."""
    return Path(workdir) / "units" / f"{fingerprint}.json"


def _legacy_path(workdir: str | os.PathLike, config: int, level: int) -> Path:
    return Path(workdir) / "units" / f"c{int(config):05d}_L{int(level)}.json"


def make_unit(
    config: int, atoms: Atoms, level: PrecisionLevel, workdir: str | os.PathLike, engine: str,
    engine_options: dict | None = None,
) -> LadderUnit:
    """The unit of structure ``atoms`` (index ``config`` in its ladder) at ``level`` in the store ``workdir``."""
    fingerprint = structure_fingerprint(atoms, level, engine, engine_options)
    return LadderUnit(config=int(config), level=level, path=unit_path(workdir, fingerprint), fingerprint=fingerprint)


def plan_units(
    structures: Sequence[Atoms], levels: Sequence[PrecisionLevel], workdir: str | os.PathLike, engine: str,
    engine_options: dict | None = None,
) -> list[LadderUnit]:
    """All units of a ladder, level by level (cheap levels first when given in ladder order).

    Calculations that a store in the old layout holds for these units are adopted (see the module docstring).
    """
    units = [
        make_unit(c, atoms, level, workdir, engine, engine_options)
        for level in levels
        for c, atoms in enumerate(structures)
    ]
    if any((Path(workdir) / "units").glob("c*_L*.json")):
        for unit in units:
            adopt_legacy_unit(unit, structures[unit.config], workdir, engine, engine_options)
    return units


def adopt_legacy_unit(
    unit: LadderUnit, atoms: Atoms, workdir: str | os.PathLike, engine: str, engine_options: dict | None = None
) -> bool:
    """Move the old-layout file of ``unit`` (``c<config>_L<level>.json``) to its fingerprint name if it holds this
    very calculation (its stored fingerprint is the unit's old fingerprint); returns whether it did."""
    old = _legacy_path(workdir, unit.config, unit.level.level)
    if unit.path.exists() or not old.exists():
        return False
    try:
        data = json.loads(old.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    if data.get("fingerprint") != legacy_fingerprint(atoms, unit.level, engine, engine_options):
        return False
    data["fingerprint"] = unit.fingerprint
    write_json_atomic(unit.path, data)
    try:
        old.unlink()
    except FileNotFoundError:  # another process adopted it at the same time
        pass
    return True


def pending_units(units: Iterable[LadderUnit], retry_failed: bool = False) -> list[LadderUnit]:
    """The units without a stored result (and, with ``retry_failed``, those stored as failed), in the given order;
    a calculation asked for twice (the same structure and settings) is listed once."""
    todo, seen = [], set()
    for unit in units:
        if unit.fingerprint in seen:
            continue
        seen.add(unit.fingerprint)
        stored = load_unit(unit)
        if stored is None or (retry_failed and stored.failed):
            todo.append(unit)
    return todo


def split_into_chunks(units: Sequence[LadderUnit], chunk_size: int) -> list[list[LadderUnit]]:
    """Consecutive slices of ``units`` with at most ``chunk_size`` units each (the last one may be shorter).

    Chunks are cut from the *whole* plan of a ladder, so chunk ``k`` always holds the same calculations however many
    of them have finished: a resubmitted chunk recomputes only its own missing ones.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer (calculations per chunk), got {chunk_size!r}")
    size = int(chunk_size)
    return [list(units[i : i + size]) for i in range(0, len(units), size)]


def load_unit(unit: LadderUnit) -> CalculationResult | None:
    """The stored result of ``unit``, or ``None`` if it has not finished (or was computed for other input)."""
    try:
        data = json.loads(unit.path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if data.get("fingerprint") != unit.fingerprint:
        return None
    return CalculationResult.from_dict(data)


def store_result(unit: LadderUnit, result: CalculationResult, n_atoms: int) -> None:
    """Write ``result`` (checked: a result without energy, forces or timing is stored as failed) to the unit's file."""
    data = result.checked(n_atoms).to_dict()
    data["fingerprint"] = unit.fingerprint
    unit.path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(unit.path, data)


def run_unit_in_worker(
    unit: LadderUnit, atoms: Atoms, engine: str, options: dict, timeout: float | None = None
) -> CalculationResult:
    """Compute one unit in a fresh single-threaded Python process and return its result.

    A worker that crashes, is killed or exceeds ``timeout`` seconds yields a failed result with the reason.
    """
    unit.path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(SINGLE_THREAD_ENV)
    with tempfile.TemporaryDirectory(dir=unit.path.parent, prefix=f".{unit.name}.") as tmp:
        task_path, result_path = Path(tmp) / "task.json", Path(tmp) / "result.json"
        task_path.write_text(json.dumps(task_dict(atoms, unit.level, engine, options, unit.fingerprint)))
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pyiron_mlip_tradeoff.dft.worker", str(task_path), str(result_path)],
                env=env, capture_output=True, text=True, timeout=timeout, cwd=tmp,
            )
            message = f"worker exited with code {proc.returncode}: {proc.stderr.strip()[-2000:]}"
        except subprocess.TimeoutExpired:
            message = f"calculation exceeded the time limit of {timeout} s"
        if result_path.exists():
            return CalculationResult.from_dict(json.loads(result_path.read_text()))
    return CalculationResult.failure(
        len(atoms), unit.level.kpoint_mesh(atoms.get_cell()[:]), message,
        wall_seconds=time.perf_counter() - start, engine=engine,
    )


def run_ladder(
    structures: Sequence[Atoms],
    levels: Iterable[int | PrecisionLevel],
    workdir: str | os.PathLike,
    engine: str = "gpaw",
    cores: int = 1,
    engine_options: dict | None = None,
    retry_failed: bool = False,
    runner: Runner | None = None,
    timeout: float | None = None,
    progress: bool = False,
    on_result: Callable[[LadderUnit, CalculationResult], None] | None = None,
) -> LadderResults:
    """Compute every (structure, level) unit not yet stored in ``workdir`` and return the whole ladder.

    Args:
        structures: ASE/pyiron structures (periodic, no atoms closer than 0.5 Å).
        levels: level numbers of the reference ladder or :class:`PrecisionLevel` objects.
        workdir: folder where each unit's result is stored as it finishes.
        engine: ``"gpaw"`` (run in worker processes) or ``"vasp"`` (needs ``runner``).
        cores: number of calculations run side by side, each single-threaded (GPAW).
        engine_options: engine keywords (GPAW: see :mod:`pyiron_mlip_tradeoff.dft.gpaw`; VASP: ``incar``,
            ``potcar``, see :mod:`pyiron_mlip_tradeoff.dft.vasp`).
        retry_failed: recompute units stored as failed.
        runner: computes a unit in this process instead of in a worker (how the VASP engine is driven).
        timeout: seconds after which a worker calculation is abandoned as failed (GPAW).
        progress: show a tqdm progress bar.
        on_result: called after each newly finished unit (e.g. to log it).

    Returns:
        :class:`LadderResults` of all units (``.to_dataset()`` gives the :class:`LadderDataset`; failed units are
        NaN and marked in ``failed``).
    """
    structures, resolved, options = validate_ladder_input(structures, levels, engine, engine_options, cores)
    if engine != "gpaw" and runner is None:
        raise InputError(f"engine {engine!r} needs a runner (use the PrecisionLadder job for VASP)")
    units = plan_units(structures, resolved, workdir, engine, options)
    todo = pending_units(units, retry_failed)
    compute_units(
        todo, dict(enumerate(structures)), engine=engine, cores=cores, engine_options=options, runner=runner,
        timeout=timeout, progress=progress, on_result=on_result,
    )
    results = collect_ladder(structures, resolved, workdir, engine, options)
    if results.pending:
        raise RuntimeError(f"{len(results.pending)} ladder unit(s) have no result after the run: {results.pending[:5]}")
    return results


def compute_units(
    units: Sequence[LadderUnit],
    structures: Mapping[int, Atoms],
    engine: str = "gpaw",
    cores: int = 1,
    engine_options: dict | None = None,
    runner: Runner | None = None,
    timeout: float | None = None,
    progress: bool = False,
    on_result: Callable[[LadderUnit, CalculationResult], None] | None = None,
) -> None:
    """Compute ``units`` and store each result in its unit file the moment it finishes (nothing is skipped here).

    Args:
        units: the calculations to run (see :func:`pending_units` for those not yet stored).
        structures: structure of each configuration index that occurs in ``units``.
        engine, engine_options, runner, timeout, progress, on_result: as for :func:`run_ladder`.
        cores: calculations run side by side, each a single-threaded worker process (GPAW).
    """
    options = dict(engine_options or {})
    bar = None
    if progress and units:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(units), desc="precision ladder", unit="calc")

    def finish(unit: LadderUnit, result: CalculationResult) -> None:
        n_atoms = len(structures[unit.config])
        store_result(unit, result, n_atoms)
        result = load_unit(unit) or result
        if on_result is not None:
            on_result(unit, result)
        if bar is not None:
            bar.update(1)

    try:
        if runner is not None:
            for unit in units:
                finish(unit, runner(unit, structures[unit.config]))
        elif cores == 1:
            for unit in units:
                finish(unit, run_unit_in_worker(unit, structures[unit.config], engine, options, timeout))
        else:
            with ThreadPoolExecutor(max_workers=int(cores)) as pool:
                futures = {
                    pool.submit(run_unit_in_worker, unit, structures[unit.config], engine, options, timeout): unit
                    for unit in units
                }
                for future in as_completed(futures):
                    finish(futures[future], future.result())
    finally:
        if bar is not None:
            bar.close()


@dataclass
class LadderResults:
    """Arrays of a (possibly partial) ladder, levels × configurations; see :mod:`pyiron_mlip_tradeoff.dataset`.

    Besides the dataset arrays it keeps the engine-side bookkeeping: CPU seconds, SCF iterations, the zero-width
    energy, one message per unit (``""`` for success, the error for a failure, ``"not computed"`` if pending).
    """

    structures: list[Atoms]
    levels: list[PrecisionLevel]
    energy: np.ndarray
    energy_zero_width: np.ndarray
    forces: np.ndarray
    stress: np.ndarray
    seconds: np.ndarray
    core_seconds: np.ndarray
    kmesh: np.ndarray
    scf_iterations: np.ndarray
    failed: np.ndarray
    messages: list[list[str]]
    pending: list[str]
    metadata: dict

    def to_dataset(self) -> LadderDataset:
        """The :class:`LadderDataset` (failed and pending units NaN and marked failed)."""
        return LadderDataset(
            self.structures, self.energy, self.forces, levels=self.levels, seconds=self.seconds,
            stress=self.stress, kmesh=self.kmesh, failed=self.failed, metadata=self.metadata,
            core_seconds=self.core_seconds,
        )


def collect_ladder(
    structures: Sequence[Atoms], levels: Sequence[PrecisionLevel], workdir: str | os.PathLike, engine: str,
    engine_options: dict | None = None,
) -> LadderResults:
    """Assemble the stored units of a ladder into :class:`LadderResults` (unfinished units listed in ``pending``)."""
    n_levels, n_configs = len(levels), len(structures)
    n_atoms = np.array([len(a) for a in structures])
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    energy = np.full((n_levels, n_configs), np.nan)
    energy_zero_width = np.full((n_levels, n_configs), np.nan)
    forces = np.full((n_levels, int(offsets[-1]), 3), np.nan)
    stress = np.full((n_levels, n_configs, 6), np.nan)
    seconds = np.full((n_levels, n_configs), np.nan)
    core_seconds = np.full((n_levels, n_configs), np.nan)
    kmesh = np.zeros((n_levels, n_configs, 3), dtype=np.int64)
    iterations = np.full((n_levels, n_configs), -1, dtype=np.int64)
    failed = np.ones((n_levels, n_configs), dtype=bool)
    messages = [["not computed"] * n_configs for _ in range(n_levels)]
    versions = set()
    pending = []
    row_of = {lv.level: i for i, lv in enumerate(levels)}
    for unit in plan_units(structures, levels, workdir, engine, engine_options):
        result = load_unit(unit)
        li, c = row_of[unit.level.level], unit.config
        kmesh[li, c] = unit.level.kpoint_mesh(structures[c].get_cell()[:])
        if result is None:
            pending.append(unit.name)
            continue
        messages[li][c] = result.error or ""
        failed[li, c] = result.failed
        seconds[li, c] = result.wall_seconds
        core_seconds[li, c] = result.core_seconds
        iterations[li, c] = result.scf_iterations
        if result.engine_version:
            versions.add(f"{result.engine} {result.engine_version}")
        if not result.failed:
            energy[li, c] = result.energy
            energy_zero_width[li, c] = result.energy_zero_width
            forces[li, offsets[c] : offsets[c + 1]] = result.forces
            stress[li, c] = result.stress
    metadata = {
        "engine": engine,
        "engine_versions": sorted(versions),
        "engine_options": engine_options or {},
        "energy": "free (force-consistent) energy, eV",
    }
    return LadderResults(
        structures=list(structures), levels=list(levels), energy=energy, energy_zero_width=energy_zero_width,
        forces=forces, stress=stress, seconds=seconds, core_seconds=core_seconds, kmesh=kmesh,
        scf_iterations=iterations, failed=failed, messages=messages, pending=pending, metadata=metadata,
    )
