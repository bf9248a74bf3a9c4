"""pyiron job ``MDSpeed``: how fast a fitted qSNAP model runs in LAMMPS, and whether its MD stays sane.

>>> job = pr.create.job.MDSpeed("speed_2j6")
>>> job.input.fit_job = "fit_2j6"              # a finished QSnapFit job (name or id) ...
>>> # ... or potential files:  job.input.snapcoeff = "m.snapcoeff"; job.input.snapparam = "m.snapparam"
>>> # ... or coefficients:     job.input.coefficients = beta; job.input.twojmax = 6
>>> job.input.n_atoms = 2000                    # hcp Be supercell by default, or the user's structure:
>>> # job.input.structure = bulk("Be", "bcc", a=2.55, cubic=True)   # repeated to ~n_atoms (None: as given)
>>> job.input.cores = 2
>>> job.run()
>>> job.output.atom_steps_per_second, job.output.stable, job.output.energy_drift

The measurement is one pyiron_atomistics ``Lammps`` child job (``<name>_lammps``) with a custom potential
(``pair_style snap``; the ``.snapcoeff``/``.snapparam`` go through the potential's ``Filename`` list), run through
pyiron's normal executable handling (the package's resources; MPI through ``job.server.cores``). Its input is
:func:`pyiron_mlip_tradeoff.lammps.md_protocol_lines`: NVT at ``temperature``, then NVE for the energy drift,
then a timed NVE run whose LAMMPS performance line gives the speed. A model that blows up is reported with
``output.stable = False`` (and a NaN speed if LAMMPS could not finish); any other LAMMPS failure raises
:class:`~pyiron_mlip_tradeoff.lammps.LammpsError` with LAMMPS' own message. All input is checked in
:meth:`MDSpeed.validate_ready_to_run`, before anything is saved or run.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from ..lammps import (
    LammpsError,
    LammpsLog,
    MDSettings,
    SnapPotentialInfo,
    assess_stability,
    check_coefficients,
    check_md_settings,
    check_snap_potential,
    hcp_supercell,
    is_instability_error,
    md_protocol_lines,
    pair_style_lines,
    parse_log,
    read_dump_frames,
    read_snapcoeff_elements,
    supercell,
    write_snap_potential,
)
from ..reference import check_reference
from .base import StructureInputJob, mark_finished, to_builtin

__all__ = ["MDSpeed", "md_speed_table"]

_POTENTIAL_DIR = "potential"


def _output_value(job, name: str):
    """``job.output.<name>`` or ``None`` when the job's output has no such entry."""
    output = getattr(job, "output", None)
    if output is None:
        return None
    try:
        value = output.get(name) if hasattr(output, "get") else getattr(output, name, None)
    except (AttributeError, KeyError, ValueError):
        value = None
    return to_builtin(value)


def _snapcoeff_elements(path: str | os.PathLike) -> list[str]:
    """Element symbols of a ``.snapcoeff`` file, in file order (= LAMMPS atom types 1, 2, …)."""
    return [block.name for block in read_snapcoeff_elements(path)]


def _check_potential(coeff: str | os.PathLike, param: str | os.PathLike, elements: Sequence[str]) -> SnapPotentialInfo:
    """:func:`~pyiron_mlip_tradeoff.lammps.check_snap_potential` for the potential's element list."""
    return check_snap_potential(coeff, param, elements=list(elements))


def _pair_lines(info: SnapPotentialInfo, elements: Sequence[str], reference: dict | None = None) -> list[str]:
    """``pair_style``/``pair_coeff`` lines mapping LAMMPS atom types 1, 2, … to ``elements`` in order; with the
    fit's reference potential the model runs as fitted (``pair_style hybrid/overlay <reference> snap``)."""
    return pair_style_lines(info.coeff_path, info.param_path, elements=list(elements), reference=reference)


class MDSpeed(StructureInputJob):
    """MD speed (atom-timesteps per second) and stability of one qSNAP model in LAMMPS.

    Input (``job.input``), one potential source:
        fit_job: a finished ``QSnapFit`` job (name, id or the job itself): its ``output.snapcoeff`` and
            ``output.snapparam`` files, or else its ``output.coefficients`` with its ``input.twojmax`` and
            ``input.descriptor_settings``.
        snapcoeff, snapparam: paths of potential files.
        reference_potential: with ``snapcoeff``/``snapparam``, the reference pair the model was fitted with
            (``{"pair_style": …, "pair_coeff": […]}``, FitSNAP ``[REFERENCE]``); a ``fit_job``'s own reference is
            taken from it. The MD then runs ``pair_style hybrid/overlay <reference> snap``, the model as fitted.
        coefficients, twojmax, descriptor_settings: β (eV, constant first), 2Jmax and FitSNAP settings.

    Input, the run:
        structure: the user's crystal (ASE or pyiron ``Atoms``, periodic), or ``None`` (default) for the hcp cell
            below. Its species must be among the potential's elements; atom types follow the potential's element
            list (the order of its ``pair_coeff`` line), and pyiron writes each element's mass (ASE's values).
        n_atoms: cell size (~2000): the supercell of ``structure`` (or of the orthorhombic hcp cell) with the
            closest count; ``None`` runs ``structure`` as given.
        element: chemical symbol of the default hcp cell and of a one-element potential (``"Be"``; taken from
            ``structure`` when that is given); a, c: hcp lattice constants (Å) of the default cell.
        steps: steps of the timed NVE run. nvt_steps / nve_steps: steps of the NVT run at ``temperature``
            and of the NVE run used for the drift (0 skips them).
        temperature: K (300). timestep: fs (1.0). n_print: thermo/dump interval in steps. seed: velocities.
        cores: MPI processes of LAMMPS (``job.server.cores`` of the child).
        min_distance_limit: Å, closer pairs make the model unstable (1.0).
        max_drift: meV/atom/ps, larger |NVE drift| makes the model unstable (10).

    Output (``job.output``):
        atom_steps_per_second (all cores together), atom_steps_per_second_per_core, loop_seconds (s, timed run),
        lammps_procs (MPI processes LAMMPS reported), stable,
        stability_message, energy_drift (meV/atom/ps), min_distance (Å), atoms_lost, max_temperature (K),
        nve_time (ps) and nve_total_energy (eV) of the NVE run, twojmax, n_coefficients, n_atoms (actual),
        cores, steps, lammps_job (child name), potential_files.
    """

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        defaults = MDSettings()
        self.input.fit_job = None
        self.input.snapcoeff = None
        self.input.snapparam = None
        self.input.coefficients = None
        self.input.reference_potential = None
        self.input.twojmax = None
        self.input.descriptor_settings = {}
        self.input.structure = None
        self.input.element = "Be"
        self.input.a = 2.29
        self.input.c = 3.58
        self.input.n_atoms = defaults.n_atoms
        self.input.steps = defaults.steps
        self.input.nvt_steps = defaults.nvt_steps
        self.input.nve_steps = defaults.nve_steps
        self.input.temperature = defaults.temperature
        self.input.timestep = defaults.timestep
        self.input.n_print = defaults.n_print
        self.input.seed = defaults.seed
        self.input.cores = 1
        self.input.min_distance_limit = 1.0
        self.input.max_drift = 10.0

    # -- input -----------------------------------------------------------------------------------------------
    def _structure_input(self):
        """The user's structure as ASE ``Atoms``, or ``None`` for the default hcp cell."""
        structure = self.input.get("structure") if hasattr(self.input, "get") else self.input.structure
        if structure is None:
            return None
        if not isinstance(structure, Atoms) and hasattr(structure, "to_ase"):
            structure = structure.to_ase()
        if not isinstance(structure, Atoms):
            raise ValueError(f"input.structure must be an ASE or pyiron Atoms, got {type(structure).__name__}")
        return structure

    def _elements(self) -> list[str]:
        """Elements of the run: the user's structure's (in order of appearance), else ``input.element``."""
        structure = self._structure_input()
        if structure is None:
            return [str(self.input.element)]
        return list(dict.fromkeys(structure.get_chemical_symbols()))

    def _cell(self) -> Atoms:
        """The MD cell: the user's structure (or a supercell of it near ``n_atoms``), or the hcp supercell."""
        structure = self._structure_input()
        if structure is None:
            return hcp_supercell(self.input.n_atoms, self.input.element, self.input.a, self.input.c)
        return supercell(structure, self.input.n_atoms)

    def _settings(self) -> MDSettings:
        n_atoms = self.input.n_atoms
        if n_atoms is None:
            structure = self._structure_input()
            if structure is None:
                raise ValueError("n_atoms = None (run the structure as given) needs input.structure")
            n_atoms = len(structure)
        return check_md_settings(
            n_atoms=n_atoms, steps=self.input.steps, nvt_steps=self.input.nvt_steps,
            nve_steps=self.input.nve_steps, temperature=self.input.temperature, timestep=self.input.timestep,
            n_print=self.input.n_print, seed=self.input.seed,
        )

    def _cores(self) -> int:
        cores = self.input.cores
        if isinstance(cores, bool) or not isinstance(cores, (int, np.integer)) or cores < 1:
            raise ValueError(f"cores must be an integer ≥ 1, got {cores!r}")
        return int(cores)

    def _fit_job(self):
        spec = self.input.fit_job
        job = spec if hasattr(spec, "job_name") else self.project.load(spec)
        if job is None:
            raise ValueError(f"fit_job {spec!r} not found in project {self.project.path}")
        if not job.status.finished:
            raise ValueError(f"fit_job {job.job_name} has status {job.status}; it must be finished")
        return job

    def _potential_source(self) -> dict:
        """Where the potential comes from, checked: ``{"files": (coeff, param)}`` or ``{"coefficients": …}``."""
        given = [
            name for name, present in (
                ("fit_job", self.input.fit_job is not None),
                ("snapcoeff/snapparam", self.input.snapcoeff is not None or self.input.snapparam is not None),
                ("coefficients", self.input.coefficients is not None),
            ) if present
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one potential source: input.fit_job, input.snapcoeff + input.snapparam, or "
                f"input.coefficients + input.twojmax (got {given or 'none'})"
            )
        if given[0] == "fit_job":
            job = self._fit_job()
            coeff, param = _output_value(job, "snapcoeff"), _output_value(job, "snapparam")
            reference = to_builtin(job.input.get("reference_potential")) if hasattr(job.input, "get") else None
            if coeff and param and Path(coeff).is_file() and Path(param).is_file():
                return {"files": (str(coeff), str(param)), "fit_job": job.job_name, "reference": reference}
            beta = _output_value(job, "coefficients")
            twojmax = to_builtin(job.input.get("twojmax")) if hasattr(job.input, "get") else None
            if beta is None or twojmax is None:
                if coeff and param:  # named files that are gone, and nothing to rebuild them from
                    check_snap_potential(coeff, param, element=self._elements()[0])
                raise ValueError(
                    f"fit_job {job.job_name} has neither output.snapcoeff/snapparam files nor output.coefficients "
                    "with input.twojmax"
                )
            settings = to_builtin(job.input.get("descriptor_settings")) or {}
            return {"coefficients": np.asarray(beta, dtype=float), "twojmax": int(twojmax),
                    "settings": dict(settings), "fit_job": job.job_name}
        if given[0] == "snapcoeff/snapparam":
            if self.input.snapcoeff is None or self.input.snapparam is None:
                raise ValueError("input.snapcoeff and input.snapparam must be given together")
            return {"files": (str(self.input.snapcoeff), str(self.input.snapparam)),
                    "reference": to_builtin(self.input.reference_potential)}
        if self.input.twojmax is None:
            raise ValueError("input.coefficients needs input.twojmax")
        return {"coefficients": np.asarray(self.input.coefficients, dtype=float), "twojmax": self.input.twojmax,
                "settings": dict(to_builtin(self.input.descriptor_settings) or {})}

    def _potential_elements(self, source: dict) -> list[str]:
        """The potential's elements (LAMMPS atom types 1, 2, … in this order), checked against the structure."""
        run = self._elements()
        if "files" in source:
            coeff = Path(source["files"][0])
            if not coeff.is_file():
                raise FileNotFoundError(f"SNAP coefficient file {coeff.absolute()} does not exist")
            elements = _snapcoeff_elements(coeff)
            if len(elements) == 1 and len(run) == 1:
                return run  # check_snap_potential says if the file is for another element
        else:
            if len(run) != 1:
                raise ValueError(
                    f"coefficients describe a one-element model, but the structure has {run}; give the potential's "
                    "files (input.snapcoeff, input.snapparam) for a model of several elements"
                )
            elements = run
        unknown = [s for s in run if s not in elements]
        if unknown:
            raise ValueError(f"the MD structure has {unknown}, which the potential (elements {elements}) does not know")
        return elements

    def _check_source(self, source: dict) -> SnapPotentialInfo | None:
        elements = self._potential_elements(source)
        if source.get("reference"):
            try:
                check_reference(source["reference"], elements)
            except (TypeError, ValueError) as err:
                raise ValueError(f"reference_potential: {err}") from None
        if "files" in source:
            return _check_potential(*source["files"], elements)
        settings = {k: v for k, v in source["settings"].items() if k != "twojmax"}
        check_coefficients(source["coefficients"], source["twojmax"], settings)
        return None

    def validate_ready_to_run(self) -> None:
        """Check all input before anything is saved or run (``ValueError``/``FileNotFoundError``)."""
        if hasattr(self.input.fit_job, "job_name"):  # store a job given as an object by its id
            self.input.fit_job = int(self.input.fit_job.job_id)
        structure = self._structure_input()
        if structure is not None:
            self.input.structure = structure  # stored as ASE Atoms
        self._settings()
        self._cores()
        self._cell()
        for name in ("min_distance_limit", "max_drift"):
            value = self.input[name]
            if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        self._check_source(self._potential_source())

    # -- running -----------------------------------------------------------------------------------------------
    def _potential_files(self, source: dict) -> tuple[SnapPotentialInfo, list[str]]:
        elements = self._potential_elements(source)
        if "files" in source:
            return _check_potential(*source["files"], elements), elements
        prefix = Path(self.working_directory) / _POTENTIAL_DIR / f"{self.job_name}"
        settings = {k: v for k, v in source["settings"].items() if k != "twojmax"}
        coeff, param = write_snap_potential(
            prefix, source["coefficients"], int(source["twojmax"]), settings, element=elements[0],
            comment=f"MDSpeed job {self.job_name}",
        )
        return _check_potential(coeff, param, elements), elements

    def _lammps_job(self, info: SnapPotentialInfo, elements: list[str], structure, settings: MDSettings,
                    cores: int, reference: dict | None = None):
        from pyiron_atomistics.atomistics.structure.atoms import ase_to_pyiron

        job = self.project.create_job("Lammps", f"{self.job_name}_lammps", delete_existing_job=True)
        job.structure = ase_to_pyiron(structure)
        # pyiron numbers the atom types in the order of "Species" and writes each element's mass
        job.potential = pd.DataFrame(
            {
                "Name": [f"{''.join(elements)}_qSNAP_2J{info.twojmax}_{self.job_name}"],
                "Filename": [[str(info.coeff_path), str(info.param_path)]],
                "Model": ["Custom"],
                "Species": [list(elements)],
                "Config": [_pair_lines(info, elements, reference)],
            }
        )
        job.input.control.load_string("".join(md_protocol_lines(settings)))
        job.server.cores = cores
        job.master_id = self.job_id
        return job

    def run_static(self) -> None:
        settings, cores = self._settings(), self._cores()
        self.status.running = True
        Path(self.working_directory).mkdir(parents=True, exist_ok=True)
        source = self._potential_source()
        info, elements = self._potential_files(source)
        structure = self._cell()
        job = self._lammps_job(info, elements, structure, settings, cores, source.get("reference"))
        try:
            with warnings.catch_warnings():  # pyiron's parser has no unit for our extra thermo columns
                warnings.filterwarnings("ignore", message=".*unit conversion type of quantity (Atoms|LogStep)")
                job.run()
            failure = None
        except Exception as err:  # noqa: BLE001 - LAMMPS' own message is read from its files below
            failure = err
        log, frames = self._read_lammps_files(job, elements, crashed=failure is not None)
        if failure is not None and not is_instability_error(log.error):
            message = log.error or _error_text(job) or str(failure)
            raise LammpsError(message, context=f"LAMMPS job {job.job_name} failed") from failure
        report = assess_stability(
            log, settings, len(structure), frames, min_distance_limit=float(self.input.min_distance_limit),
            max_drift=float(self.input.max_drift),
        )
        runs = dict(zip(settings.phases, log.runs, strict=False))
        timed = runs.get("speed")
        speed = timed.atom_steps_per_second if timed is not None and timed.completed else float("nan")

        out = self.output
        out.atom_steps_per_second = float(speed)
        out.atom_steps_per_second_per_core = float(speed) / cores
        out.loop_seconds = float(timed.loop_seconds) if timed is not None and timed.completed else float("nan")
        out.lammps_procs = int(timed.procs) if timed is not None and timed.completed else 0
        out.stable = bool(report.stable)
        out.stability_message = "; ".join(report.reasons)
        out.energy_drift = float(report.energy_drift)
        out.min_distance = float(report.min_distance)
        out.atoms_lost = int(report.atoms_lost)
        out.max_temperature = float(report.max_temperature)
        nve = runs.get("nve")
        if nve is not None and nve.thermo:
            out.nve_time = nve.column("Step") * settings.timestep / 1000.0
            out.nve_total_energy = nve.column("TotEng")
        out.twojmax = int(info.twojmax)
        out.n_coefficients = int(info.n_coefficients)
        out.n_atoms = len(structure)
        out.elements = list(elements)
        out.cores = cores
        out.steps = settings.steps
        out.lammps_job = job.job_name
        out.potential_files = [str(info.coeff_path), str(info.param_path)]
        mark_finished(self)

    def _read_lammps_files(self, job, elements: list[str], crashed: bool) -> tuple[LammpsLog, list]:
        """LAMMPS' log and dumped frames of the child job (unpacking its archive when pyiron packed it)."""
        packed = job.is_compressed()
        if packed:
            job.decompress()
        try:
            workdir = Path(job.working_directory)
            log_file = workdir / "log.lammps"
            log = parse_log(log_file.read_text(errors="replace")) if log_file.exists() else LammpsLog([], [])
            if crashed and log.error is None:
                extra = parse_log(_error_text(job) or "")
                log.errors.extend(extra.errors)
            frames = read_dump_frames(workdir / "dump.out", elements)
        finally:
            if packed:
                job.compress()
        return log, frames


def _error_text(job) -> str | None:
    """What the LAMMPS process wrote to pyiron's error files (stdout/stderr of a failed run), if anything."""
    for name in ("error.out", "error.msg"):
        path = Path(job.working_directory) / name
        if path.exists():
            text = path.read_text(errors="replace").strip()
            if text:
                return text
    return None


def md_speed_table(
    project,
    structure: Atoms | None = None,
    twojmax: Sequence[int] = (4, 6, 8, 10),
    n_atoms: int | None = 2000,
    steps: int = 100,
    cores: int = 1,
    descriptor_settings: dict | None = None,
    name: str = "md_speed",
) -> pd.DataFrame:
    """MD speed of qSNAP models of each 2Jmax on the user's crystal: one ``MDSpeed`` probe job per 2Jmax.

    The cost of ``pair_style snap`` per step depends on the model's size (2Jmax, linear or quadratic) and on the
    neighbours within the cut-off, not on the coefficient values, so each probe is a one-element model of the right
    size with tiny coefficients (it cannot blow up) and runs only the timed NVE run. The probe runs on the geometry
    of ``structure`` (a supercell near ``n_atoms``; ``None`` runs it as given) with every atom as its first element:
    a model of several elements without ``chemflag`` has the same cost per neighbour. Finished probe jobs
    (``<name>_j<2Jmax>``) are reused.

    Args:
        project: pyiron project the probe jobs are created in.
        structure: the user's crystal (ASE or pyiron ``Atoms``); ``None``: the default hcp Be cell.
        twojmax: the 2Jmax values to measure.
        n_atoms: atoms of the MD cell (about).
        steps: timed MD steps.
        cores: MPI ranks of each LAMMPS run.
        descriptor_settings: FitSNAP descriptor settings of the models (default: the study's qSNAP settings).
        name: prefix of the probe jobs' names.

    Returns:
        DataFrame indexed by ``twojmax`` with ``n_coefficients``, ``n_atoms``, ``atom_steps_per_second`` (all
        cores) and ``seconds_per_atom_step``.
    """
    from ..descriptors import n_columns, resolve_settings

    settings = dict(descriptor_settings or {})
    probe = None
    if structure is not None:
        if not isinstance(structure, Atoms) and hasattr(structure, "to_ase"):
            structure = structure.to_ase()
        probe = supercell(structure, None).copy()
        probe.set_chemical_symbols([probe.get_chemical_symbols()[0]] * len(probe))
    rows = []
    for tj in sorted({int(t) for t in twojmax}):
        resolved = resolve_settings(tj, settings)
        p = n_columns(tj, int(resolved["quadraticflag"]), int(resolved["bzeroflag"]))
        job = project.create.job.MDSpeed(f"{name}_j{tj}")
        if not job.status.finished:
            job.input.coefficients = np.full(p, 1e-10)
            job.input.twojmax = tj
            job.input.descriptor_settings = settings
            if probe is not None:
                job.input.structure = probe
                job.input.element = probe.get_chemical_symbols()[0]
            job.input.n_atoms = n_atoms
            job.input.steps = steps
            job.input.nvt_steps = 0
            job.input.nve_steps = 0
            job.input.cores = cores
            job.run()
        speed = float(job.output.atom_steps_per_second)
        rows.append({"twojmax": tj, "n_coefficients": p, "n_atoms": int(job.output.n_atoms),
                     "atom_steps_per_second": speed, "seconds_per_atom_step": 1.0 / speed})
    return pd.DataFrame(rows).set_index("twojmax")
