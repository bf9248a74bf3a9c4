"""pyiron job ``MDSpeed``: how fast a fitted qSNAP model runs in LAMMPS, and whether its MD stays sane.

>>> job = pr.create.job.MDSpeed("speed_2j6")
>>> job.input.fit_job = "fit_2j6"              # a finished QSnapFit job (name or id) ...
>>> # ... or potential files:  job.input.snapcoeff = "m.snapcoeff"; job.input.snapparam = "m.snapparam"
>>> # ... or coefficients:     job.input.coefficients = beta; job.input.twojmax = 6
>>> job.input.n_atoms = 2000
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

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pyiron_base import PythonTemplateJob

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
    write_snap_potential,
)
from .base import mark_finished, to_builtin

__all__ = ["MDSpeed"]

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


class MDSpeed(PythonTemplateJob):
    """MD speed (atom-timesteps per second) and stability of one qSNAP model in LAMMPS.

    Input (``job.input``), one potential source:
        fit_job: a finished ``QSnapFit`` job (name, id or the job itself): its ``output.snapcoeff`` and
            ``output.snapparam`` files, or else its ``output.coefficients`` with its ``input.twojmax`` and
            ``input.descriptor_settings``.
        snapcoeff, snapparam: paths of potential files.
        coefficients, twojmax, descriptor_settings: β (eV, constant first), 2Jmax and FitSNAP settings.

    Input, the run:
        element: chemical symbol (``"Be"``); a, c: hcp lattice constants (Å) of the cell.
        n_atoms: cell size (~2000; an orthorhombic hcp supercell with the closest count).
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
        self.input.twojmax = None
        self.input.descriptor_settings = {}
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
    def _settings(self) -> MDSettings:
        return check_md_settings(
            n_atoms=self.input.n_atoms, steps=self.input.steps, nvt_steps=self.input.nvt_steps,
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
            if coeff and param and Path(coeff).is_file() and Path(param).is_file():
                return {"files": (str(coeff), str(param)), "fit_job": job.job_name}
            beta = _output_value(job, "coefficients")
            twojmax = to_builtin(job.input.get("twojmax")) if hasattr(job.input, "get") else None
            if beta is None or twojmax is None:
                if coeff and param:  # named files that are gone, and nothing to rebuild them from
                    check_snap_potential(coeff, param, element=self.input.element)
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
            return {"files": (str(self.input.snapcoeff), str(self.input.snapparam))}
        if self.input.twojmax is None:
            raise ValueError("input.coefficients needs input.twojmax")
        return {"coefficients": np.asarray(self.input.coefficients, dtype=float), "twojmax": self.input.twojmax,
                "settings": dict(to_builtin(self.input.descriptor_settings) or {})}

    def _check_source(self, source: dict) -> SnapPotentialInfo | None:
        if "files" in source:
            return check_snap_potential(*source["files"], element=self.input.element)
        settings = {k: v for k, v in source["settings"].items() if k != "twojmax"}
        check_coefficients(source["coefficients"], source["twojmax"], settings)
        return None

    def validate_ready_to_run(self) -> None:
        """Check all input before anything is saved or run (``ValueError``/``FileNotFoundError``)."""
        if hasattr(self.input.fit_job, "job_name"):  # store a job given as an object by its id
            self.input.fit_job = int(self.input.fit_job.job_id)
        self._settings()
        self._cores()
        hcp_supercell(self.input.n_atoms, self.input.element, self.input.a, self.input.c)
        for name in ("min_distance_limit", "max_drift"):
            value = self.input[name]
            if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        self._check_source(self._potential_source())

    # -- running -----------------------------------------------------------------------------------------------
    def _potential_files(self, source: dict) -> SnapPotentialInfo:
        if "files" in source:
            return check_snap_potential(*source["files"], element=self.input.element)
        prefix = Path(self.working_directory) / _POTENTIAL_DIR / f"{self.job_name}"
        settings = {k: v for k, v in source["settings"].items() if k != "twojmax"}
        coeff, param = write_snap_potential(
            prefix, source["coefficients"], int(source["twojmax"]), settings, element=self.input.element,
            comment=f"MDSpeed job {self.job_name}",
        )
        return check_snap_potential(coeff, param, element=self.input.element)

    def _lammps_job(self, info: SnapPotentialInfo, structure, settings: MDSettings, cores: int):
        from pyiron_atomistics.atomistics.structure.atoms import ase_to_pyiron

        job = self.project.create_job("Lammps", f"{self.job_name}_lammps", delete_existing_job=True)
        job.structure = ase_to_pyiron(structure)
        job.potential = pd.DataFrame(
            {
                "Name": [f"{self.input.element}_qSNAP_2J{info.twojmax}_{self.job_name}"],
                "Filename": [[str(info.coeff_path), str(info.param_path)]],
                "Model": ["Custom"],
                "Species": [[self.input.element]],
                "Config": [pair_style_lines(info.coeff_path, info.param_path, self.input.element)],
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
        info = self._potential_files(self._potential_source())
        structure = hcp_supercell(settings.n_atoms, self.input.element, self.input.a, self.input.c)
        job = self._lammps_job(info, structure, settings, cores)
        try:
            with warnings.catch_warnings():  # pyiron's parser has no unit for our extra thermo columns
                warnings.filterwarnings("ignore", message=".*unit conversion type of quantity (Atoms|LogStep)")
                job.run()
            failure = None
        except Exception as err:  # noqa: BLE001 - LAMMPS' own message is read from its files below
            failure = err
        log, frames = self._read_lammps_files(job, crashed=failure is not None)
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
        out.cores = cores
        out.steps = settings.steps
        out.lammps_job = job.job_name
        out.potential_files = [str(info.coeff_path), str(info.param_path)]
        mark_finished(self)

    def _read_lammps_files(self, job, crashed: bool) -> tuple[LammpsLog, list]:
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
            frames = read_dump_frames(workdir / "dump.out", self.input.element)
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
