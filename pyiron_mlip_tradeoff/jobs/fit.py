"""pyiron job ``QSnapFit``: one weighted qSNAP fit of a precision-ladder dataset, with errors, cost and LAMMPS files.

>>> fit = pr.create.job.QSnapFit("fit_L3")
>>> fit.input.dataset = "ladder.h5"          # a LadderDataset file, "bundled", or the name/id of a PrecisionLadder job
>>> fit.input.training_level = 3
>>> fit.input.train_indices = [0, 2, 5, 7]   # or: fit.input.selection_job = "select"; selection_size; selection_repetition
>>> fit.input.energy_weight = 150.0          # w_E; fit.input.force_weight = 1.0 (w_F)
>>> fit.input.twojmax = 6
>>> fit.run()
>>> fit.output.errors                         # DataFrame: set × reference level, meV/atom and meV/Å
>>> fit.output.test_energy_rmse               # vs the reference level (default: the most precise), meV/atom
>>> lammps_job.potential = fit.get_potential()

A FitSNAP set-up (any elements, reference potential, stresses, group weights) in one go:

>>> setup = read_fitsnap("InP-example.in")
>>> fit.input.dataset = setup.dataset                # an in-memory LadderDataset is stored with the job
>>> fit.input.update(setup.job_input)                # elements, twojmax, descriptor_settings, reference, weights
>>> fit.input.train_indices = setup.train_indices    # test_indices empty: train on all, training errors only
>>> fit.input.test_indices = setup.test_indices
>>> fit.run()
>>> fit.output.errors                                # also per group, and group == "*ALL"; stress_rmse in GPa

In ``pr.create_table()`` the results are at ``job.content["output/<name>"]`` (e.g. ``test_energy_rmse``,
``dft_seconds``) and the input at ``job.content["input/data"]["<name>"]`` (e.g. ``training_level``, ``twojmax``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pyiron_base import GenericJob, PythonTemplateJob

from ..dataset import LadderDataset, restore_dataset, store_dataset
from ..fitting import (
    DEFAULT_SPLIT,
    FitResult,
    _check_stress_weight,
    check_fractions,
    check_group_weights,
    check_indices,
    check_model_elements,
    check_reference_energies,
    check_weight,
    dataset_split,
    fit_qsnap,
)
from ..lammps import pair_style_lines, write_potential_include, write_snap_potential
from ..reference import check_reference
from ..reference_level import resolve_reference_level
from .base import DATASET_GROUP, STORED_DATASET, mark_finished, to_builtin
from .database import ensure_database_reachable

if TYPE_CHECKING:
    from pyiron_base import Project, ProjectHDFio

__all__ = ["QSnapFit", "FastStorageJob", "load_dataset", "STORED_DATASET", "FITSNAP_SOLVER_RCOND"]

_FRAME_MARK = "__dataframe__"
#: ``input.dataset`` of a job whose in-memory dataset is stored in its own HDF5 file (group ``input_dataset``)
_DATASET_GROUP = DATASET_GROUP
#: the SVD cut-off of FitSNAP's ``solver = SVD`` (scipy ``lstsq(a, b, 1e-13)``)
FITSNAP_SOLVER_RCOND = {"SVD": 1e-13}


def _encode(value):
    """Output values in a form h5io writes in one go (DataFrames as a group of column arrays)."""
    if isinstance(value, pd.DataFrame):
        columns = {}
        for name in value.columns:
            col = value[name].to_numpy()
            columns[str(name)] = col.astype("S") if col.dtype == object else col
        return {_FRAME_MARK: list(map(str, value.columns)), **columns}
    return value


def _decode(value):
    if isinstance(value, Mapping) and _FRAME_MARK in value:
        order = list(value[_FRAME_MARK])
        data = {}
        for name in order:
            col = np.asarray(value[name])
            data[name] = np.char.decode(col, "utf-8") if col.dtype.kind == "S" else col
            if col.dtype.kind == "S":
                data[name] = data[name].astype(object)
        return pd.DataFrame(data, columns=order)
    return value


class FastStorageJob(PythonTemplateJob):
    """A ``PythonTemplateJob`` that writes its HDF5 file in two file sessions instead of one per stored value.

    ``input`` goes with pyiron's generic job data (``input/data``), ``output`` into ``output/<name>``; a DataFrame
    in ``output`` is stored as its columns and loads back as a DataFrame. An in-memory ``LadderDataset`` in
    ``input.dataset`` is stored once in the job's file (group ``input_dataset``) and loads back as the object. Storing a job costs a few ms instead of
    tens, which matters when a grid stores thousands of them. An unreachable network database raises
    :class:`~pyiron_mlip_tradeoff.jobs.database.DatabaseUnreachableError` before pyiron touches it.
    """

    def __init__(self, project, job_name):
        ensure_database_reachable()
        super().__init__(project, job_name)

    def to_hdf(self, hdf: ProjectHDFio | None = None, group_name: str | None = None) -> None:
        # an in-memory LadderDataset given as input.dataset is written once into the job's own file
        dataset = self.input.get("dataset") if hasattr(self, "input") else None
        if not isinstance(dataset, LadderDataset):
            self._write_hdf(hdf, group_name)
            return
        self.input.dataset = STORED_DATASET
        try:
            self._write_hdf(hdf, group_name)
        finally:
            self.input.dataset = dataset
        if getattr(self, "_stored_dataset", None) is not dataset:
            store_dataset(self._hdf5, dataset, _DATASET_GROUP)
            self._stored_dataset = dataset

    def _write_hdf(self, hdf: ProjectHDFio | None = None, group_name: str | None = None) -> None:
        # what GenericJob.to_hdf writes (status, server, input/data) plus the output, in one uncompressed session
        self._set_hdf(hdf=hdf, group_name=group_name)
        data = self.to_dict()
        data.update({f"output/{key}": _encode(value) for key, value in self.output.items()})
        if self.job_id is not None:
            data["job_id"] = int(self.job_id)
        self._hdf5.write_dict(data_dict=data, compression=0)

    def from_hdf(self, hdf: ProjectHDFio | None = None, group_name: str | None = None) -> None:
        GenericJob.from_hdf(self, hdf=hdf, group_name=group_name)  # also restores self.input from input/data
        if "output" in self._hdf5.list_groups():
            with self._hdf5.open("output") as h:
                stored = h.read_dict_from_hdf(recursive=True)
            for key, value in stored.items():
                self.output[key] = _decode(value)
        if hasattr(self, "input") and self.input.get("dataset") == STORED_DATASET:
            self.input.dataset = restore_dataset(self._hdf5, _DATASET_GROUP)
            self._stored_dataset = self.input.dataset


def load_dataset(
    spec: LadderDataset | str | Path | int | None, project: Project | None = None
) -> LadderDataset:
    """The dataset named by a job's ``input.dataset``.

    Args:
        spec: a path to a ``LadderDataset`` HDF5 file, ``"bundled"`` (the package's bundled dataset), or the name
            or id of a finished ``PrecisionLadder`` job in ``project``.
        project: the pyiron project to look jobs up in.

    Raises:
        ValueError/FileNotFoundError: when nothing matching is found, with what was tried.
    """
    spec = to_builtin(spec)
    if isinstance(spec, str) and spec == STORED_DATASET:
        raise ValueError("input.dataset was stored with a job that could not restore it; set input.dataset again")
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        raise ValueError('input.dataset is missing: give a LadderDataset file, "bundled" or a PrecisionLadder job name')
    if isinstance(spec, LadderDataset):
        return spec
    if isinstance(spec, str) and spec == "bundled":
        from .. import dataset as dataset_module

        loader = getattr(dataset_module, "load_bundled", None)
        if loader is None:
            raise ValueError('input.dataset = "bundled", but this version of pyiron_mlip_tradeoff has no bundled '
                             "dataset yet; give a LadderDataset file or a PrecisionLadder job instead")
        return loader()
    if isinstance(spec, (str, Path)) and Path(str(spec)).is_file():
        return LadderDataset.load(spec)
    if isinstance(spec, (str, int, np.integer)) and not isinstance(spec, bool) and project is not None:
        job_id = project.get_job_id(spec) if isinstance(spec, str) else int(spec)
        if job_id is not None and project.db.get_item_by_id(int(job_id)) is not None:
            job = project.load(int(job_id))
            if not hasattr(job, "to_dataset"):
                raise ValueError(f"input.dataset: job {spec!r} is a {type(job).__name__}, not a PrecisionLadder")
            return job.to_dataset()
    raise FileNotFoundError(
        f"input.dataset {spec!r} is neither a LadderDataset file, nor \"bundled\", nor a PrecisionLadder job of "
        "this project"
    )


def potential_frame(name: str, snapcoeff: str, snapparam: str, element: str = "Be", *,
                    elements: list[str] | None = None, reference: Mapping | None = None) -> pd.DataFrame:
    """A pyiron_atomistics-style potential (one row: Name, Filename, Model, Species, Config) for ``pair_style snap``,
    or ``pair_style hybrid/overlay <reference> snap`` with a reference pair (atom types in ``elements`` order)."""
    names = list(elements) if elements is not None else [element]
    return pd.DataFrame({
        "Name": [name],
        "Filename": [[str(snapcoeff), str(snapparam)]],
        "Model": ["Custom"],
        "Species": [names],
        "Config": [pair_style_lines(snapcoeff, snapparam, elements=names, reference=reference)],
    })


class QSnapFit(FastStorageJob):
    """A weighted qSNAP fit to one precision level of a ``LadderDataset`` (Eq. 1 of the study, per-atom energies).

    Input (``job.input``):
        dataset: a ``LadderDataset`` object (stored with the job), a LadderDataset file path, ``"bundled"``, or the
            name/id of a ``PrecisionLadder`` job.
        training_level: level label to fit (default: the reference level).
        reference_level: level the errors are quoted against (default: the most precise level by its settings —
            densest k-mesh, then highest cutoff; an ambiguous ladder is refused).
        train_indices: training configuration indices — or leave None and give ``selection_job`` (a
            ``LeverageSelection`` job over the same dataset), ``selection_size`` and ``selection_repetition``.
        validation_indices, test_indices: validation and test configurations. Default: those of the selection job
            (which drew from the training pool of its split), else the validation and test sets of the seeded
            split (``split_fractions``, default 50/25/25, seed ``split_seed``) over the configurations whose DFT
            succeeded at every level, minus any training configuration. An explicit validation set must not
            overlap the training set.
        energy_weight, force_weight: w_E and w_F (default 150 and 1).
        twojmax: qSNAP 2Jmax (4, 6, 8, 10). descriptor_settings: ``compute snap`` overrides (``radelem``/``wj``
            one value or one per element). element: symbol of a one-element model; elements: the model's elements
            in order (LAMMPS types 1, 2, …; must include every element of the data; overrides ``element``).
        stress_weight: w_V on stress residuals in eV/Å³ (default 0: no stress rows, no stress errors).
        reference_potential: ``{"pair_style": …, "pair_coeff": […]}`` (FitSNAP ``[REFERENCE]``), subtracted from
            the labels and part of the exported potential (``pair_style hybrid/overlay <reference> snap``).
        reference_energies: ``{element: eV/atom}`` subtracted from total energies (= −FitSNAP ``[ESHIFT]``).
        group_weights: ``{group: {"energy": g_E, "force": g_F, "stress": g_V}}`` multipliers of (w_E, w_F, w_V)
            per group of ``dataset.groups`` (FitSNAP ``[GROUPS]``).
        test_indices = [] (explicitly empty): train on the given configurations only and report training errors.
        solver: None, or ``"SVD"`` (FitSNAP's: SVD cut-off 1e-13 unless ``rcond`` is given).
        rcond, ridge: solver options (see ``regression.fit``). cache_dir: descriptor cache (None: in memory).
        Grid points carry their grid coordinates too: ``subset_size``, ``sampling``, ``repetition``,
        ``weight_ratio``, ``grid_job``.

    Output (``job.output``):
        coefficients (eV per descriptor unit), errors (DataFrame: ``set``, ``group`` — ``"*ALL"`` for all
        configurations of the set, else a group of the data —, ``reference_level``, ``energy_rmse``,
        ``energy_rmse_shifted``, ``energy_shift`` in meV/atom, ``force_rmse`` in meV/Å, ``stress_rmse`` in GPa;
        unweighted), dft_seconds (training
        level's DFT CPU seconds over the training set; wall seconds where no CPU time is recorded), n_train,
        rank, n_columns, reference_level,
        validation_energy_rmse, validation_energy_rmse_shifted, validation_force_rmse (vs the reference level; NaN
        without a validation set), the same for test_* and train_*, train_indices, validation_indices,
        test_indices, snapcoeff and snapparam (paths of the LAMMPS files in the working directory), potential_include
        (a LAMMPS include with the pair style, the reference pair and the snap files).
    """

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.dataset = None
        self.input.training_level = None
        self.input.train_indices = None
        self.input.test_indices = None
        self.input.validation_indices = None
        self.input.split_seed = 0
        self.input.split_fractions = list(DEFAULT_SPLIT)
        self.input.reference_level = None
        self.input.energy_weight = 150.0
        self.input.force_weight = 1.0
        self.input.twojmax = 6
        self.input.descriptor_settings = {}
        self.input.element = "Be"
        self.input.elements = None
        self.input.stress_weight = 0.0
        self.input.reference_potential = None
        self.input.reference_energies = {}
        self.input.group_weights = {}
        self.input.solver = None
        self.input.selection_job = None
        self.input.selection_size = None
        self.input.selection_repetition = 0
        self.input.rcond = None
        self.input.ridge = None
        self.input.cache_dir = None

    # -- input -----------------------------------------------------------------------------------------------
    def _model(self, dataset: LadderDataset) -> dict:
        """Elements, stress weight, reference and group weights, checked against the data (keys named)."""
        elements = to_builtin(self.input.get("elements"))
        names = check_model_elements(dataset, None if elements else self.input.get("element", "Be"),
                                     elements or None, "input.elements")
        wv = _check_stress_weight(self.input.get("stress_weight", 0.0) or 0.0)
        if wv > 0 and dataset.stress is None:
            raise ValueError("input.stress_weight > 0, but the dataset has no stresses")
        energies = check_reference_energies(to_builtin(self.input.get("reference_energies")), names,
                                            "input.reference_energies")
        reference = to_builtin(self.input.get("reference_potential"))
        if reference is not None:
            try:
                check_reference(reference, names)
            except (TypeError, ValueError) as err:
                raise ValueError(f"input.reference_potential: {err}") from None
        group_weights = check_group_weights(to_builtin(self.input.get("group_weights")), dataset.group_names,
                                            "input.group_weights")
        solver = self.input.get("solver")
        if solver is not None and solver not in FITSNAP_SOLVER_RCOND:
            raise ValueError(f"input.solver {solver!r} is not supported; use None or one of "
                             f"{list(FITSNAP_SOLVER_RCOND)}")
        rcond = self.input.get("rcond")
        if rcond is None and solver is not None:
            rcond = FITSNAP_SOLVER_RCOND[solver]
        return {"elements": list(names) if elements else None, "names": names, "wv": wv, "energies": energies,
                "reference_potential": reference, "group_weights": group_weights, "rcond": rcond}

    def _resolve(self) -> dict:
        """Everything the fit needs, checked (no descriptor is computed here)."""
        from ..descriptors import resolve_settings

        dataset = load_dataset(self.input.dataset, self.project)
        reference = resolve_reference_level(dataset, to_builtin(self.input.get("reference_level")),
                                            "input.reference_level")
        level = self.input.training_level
        level = reference if level is None else level
        if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, np.integer)) \
                or int(level) not in dataset.levels:
            raise ValueError(f"input.training_level {level!r} is not a level of the dataset {list(dataset.levels)}")
        we = check_weight("input.energy_weight", self.input.energy_weight)
        wf = check_weight("input.force_weight", self.input.force_weight)
        settings = to_builtin(self.input.descriptor_settings) or {}
        if not isinstance(settings, Mapping):
            raise TypeError(f"input.descriptor_settings must be a dict, got {type(settings).__name__}")
        twojmax = self.input.twojmax
        if isinstance(twojmax, (float, np.floating)) and float(twojmax).is_integer():
            twojmax = int(twojmax)
        model = self._model(dataset)
        try:
            resolve_settings(twojmax, dict(settings), len(model["names"]))
        except (TypeError, ValueError) as err:
            raise type(err)(f"input.descriptor_settings: {err}") from None

        train = to_builtin(self.input.train_indices)
        selection = self.input.selection_job
        if train is not None and selection is not None:
            raise ValueError("give either input.train_indices or input.selection_job, not both")
        if train is None and selection is None:
            raise ValueError("input.train_indices is missing (or give input.selection_job with selection_size)")
        split = None
        if selection is not None:
            train, split = self._selection_indices(selection, dataset.n_configs)
        train = check_indices(train, dataset.n_configs, "input.train_indices")
        fractions = check_fractions(to_builtin(self.input.get("split_fractions")) or DEFAULT_SPLIT)
        validation = to_builtin(self.input.get("validation_indices"))
        test = to_builtin(self.input.test_indices)
        if test is not None and np.size(test) == 0:  # explicitly none: train on all given, training errors only
            validation = None if validation is None or np.size(validation) == 0 else validation
            if validation is not None:
                validation = check_indices(validation, dataset.n_configs, "input.validation_indices")
            return {"dataset": dataset, "level": int(level), "we": we, "wf": wf, "settings": dict(settings),
                    "twojmax": int(twojmax), "train": train, "test": None, "validation": validation,
                    "reference": reference, **model}
        if split is None and (validation is None or test is None):
            _, default_validation, default_test = dataset_split(dataset, int(self.input.split_seed or 0), fractions)
            split = (np.setdiff1d(default_validation, train), np.setdiff1d(default_test, train))
        if test is None:
            test = split[1]
            if len(test) == 0:
                raise ValueError("the default test set is entirely in the training set; give input.test_indices")
        test = check_indices(test, dataset.n_configs, "input.test_indices")
        if validation is None:
            validation = np.setdiff1d(split[0], test)
            validation = validation if validation.size else None
        if validation is not None:
            validation = check_indices(validation, dataset.n_configs, "input.validation_indices")
            common = np.intersect1d(validation, train)
            if common.size:
                raise ValueError(f"input.validation_indices shares {common.size} configuration(s) with the training "
                                 f"set (first: {int(common[0])}); the validation set must be held out")
        return {"dataset": dataset, "level": int(level), "we": we, "wf": wf, "settings": dict(settings),
                "twojmax": int(twojmax), "train": train, "test": test, "validation": validation,
                "reference": reference, **model}

    def _selection_indices(self, name, n_configs: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The selected training configurations (dataset indices) and the selection's (validation, test) sets
        (None for a selection over a plain structure list)."""
        if self.project.get_job_id(name) is None:
            raise ValueError(f"input.selection_job: no job {name!r} in this project")
        job = self.project.load(name)
        if not hasattr(job, "get_selection"):
            raise ValueError(f"input.selection_job {name!r} is a {type(job).__name__}, not a LeverageSelection job")
        if not job.status.finished:
            raise ValueError(f"input.selection_job {name!r} has status {job.status}; run it first")
        if int(job.output.n_configs) != n_configs:
            raise ValueError(f"input.selection_job {name!r} selected from {job.output.n_configs} configurations, "
                             f"but the dataset has {n_configs}: it must be over the same structures")
        size = self.input.selection_size
        if size is None:
            raise ValueError("input.selection_size is missing (needed with input.selection_job)")
        chosen = job.get_selection(int(size), int(self.input.selection_repetition or 0))
        validation, test = job.output.get("validation_indices"), job.output.get("test_indices")
        if validation is None or test is None or len(test) == 0:
            return chosen, None
        return chosen, (np.asarray(validation, dtype=np.int64), np.asarray(test, dtype=np.int64))

    def validate_ready_to_run(self) -> None:
        """Check all input (dataset, level, indices, weights, 2Jmax) before the job is saved or computed."""
        self._resolve()

    # -- run -------------------------------------------------------------------------------------------------
    def run_static(self) -> None:
        self.status.running = True
        r = self._resolve()
        start = time.perf_counter()
        result = fit_qsnap(
            r["dataset"], r["train"], r["level"], r["we"], r["wf"], r["twojmax"], r["settings"],
            test_indices=r["test"], rcond=r["rcond"], ridge=self.input.ridge, cache_dir=self.input.cache_dir,
            element=r["names"][0], validation_indices=r["validation"], reference_level=r["reference"],
            elements=r["elements"], stress_weight=r["wv"], reference_potential=r["reference_potential"],
            reference_energies=r["energies"], group_weights=r["group_weights"],
        )
        self.set_result(result, n_columns=int(result.coefficients.size))
        self.output.fit_seconds = time.perf_counter() - start
        mark_finished(self)

    def set_result(self, result: FitResult, n_columns: int) -> None:
        """Put a :class:`~pyiron_mlip_tradeoff.fitting.FitResult` into ``output`` and write the LAMMPS files."""
        out = self.output
        out.coefficients = np.asarray(result.coefficients, dtype=float)
        out.errors = result.errors
        out.dft_seconds = float(result.dft_seconds)
        out.n_train = int(result.n_train)
        out.rank = int(result.rank)
        out.n_columns = int(n_columns)
        out.reference_level = int(result.reference_level)
        for key, value in result.summary().items():
            out[key] = value
        out.train_indices = np.asarray(result.train_indices, dtype=np.int64)
        out.test_indices = np.asarray([] if result.test_indices is None else result.test_indices, dtype=np.int64)
        out.validation_indices = np.asarray([] if result.validation_indices is None else result.validation_indices,
                                            dtype=np.int64)
        settings = to_builtin(self.input.descriptor_settings) or {}
        coeff, param, include = write_potential_files(
            Path(self.working_directory) / self.job_name, result, dict(settings),
            comment=f"level {result.training_level}, w_E={result.energy_weight:g}, w_F={result.force_weight:g}"
                    + (f", w_V={result.stress_weight:g}" if result.stress_weight else ""),
        )
        out.snapcoeff = str(coeff)
        out.snapparam = str(param)
        out.potential_include = str(include)

    # -- results ---------------------------------------------------------------------------------------------
    def get_errors(self) -> pd.DataFrame:
        """The error table (set × reference level; meV/atom, meV/Å)."""
        errors = self.output.get("errors")
        if errors is None:
            raise ValueError(f"job {self.job_name!r} has no output yet (status: {self.status})")
        return errors

    def get_potential(self) -> pd.DataFrame:
        """The fitted model as a pyiron_atomistics potential (``lammps_job.potential = fit.get_potential()``)."""
        coeff, param = self.output.get("snapcoeff"), self.output.get("snapparam")
        if coeff is None or not Path(coeff).is_file() or not Path(param).is_file():
            raise ValueError(f"job {self.job_name!r} has no potential files (status: {self.status})")
        elements = to_builtin(self.input.get("elements")) or [self.input.element]
        return potential_frame(f"qSNAP_{self.job_name}", coeff, param, elements=list(elements),
                               reference=to_builtin(self.input.get("reference_potential")))


def write_potential_files(prefix: Path, result: FitResult, settings: Mapping | None = None,
                          comment: str = "") -> tuple[Path, Path, Path]:
    """``<prefix>.snapcoeff``, ``.snapparam`` and ``.lammps`` (include: reference pair + snap) of a fit.

    The per-element reference energies go into the model: β_0 of each element with ``bzeroflag 1``, added to
    the element's constant column with ``bzeroflag 0``, so LAMMPS gives total energies on the DFT scale.
    """
    names = list(result.elements)
    settings = dict(settings if settings is not None else result.settings)
    beta = np.asarray(result.coefficients, dtype=float).copy()
    energies = dict(result.reference_energies or {})
    element_energies = None
    if energies:
        if {**result.settings, **settings}.get("bzeroflag"):
            element_energies = {el: energies.get(el, 0.0) for el in names}
        else:
            width = beta.size // len(names)
            for k, el in enumerate(names):
                beta[k * width] += energies.get(el, 0.0)
    coeff, param = write_snap_potential(prefix, beta, int(result.twojmax), settings, elements=names,
                                        element_energies=element_energies, comment=comment)
    include = write_potential_include(prefix.with_name(prefix.name + ".lammps"), coeff, param, elements=names,
                                      reference=result.reference_potential)
    return coeff, param, include
