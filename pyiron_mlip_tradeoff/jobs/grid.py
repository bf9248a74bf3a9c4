"""pyiron job ``TradeoffGrid``: the study's full-factorial exploration, every point a ``QSnapFit`` job.

>>> grid = pr.create.job.TradeoffGrid("grid")
>>> grid.input.dataset = "ladder.h5"                 # LadderDataset file, "bundled", or a PrecisionLadder job name
>>> grid.input.levels = [1, 3, 6]
>>> grid.input.subset_sizes = [10, 50, 100]
>>> grid.input.twojmax = [4, 6]
>>> grid.input.sampling = ["energy", "block", "random"]
>>> grid.input.repetitions = 5
>>> grid.run()                                       # Ctrl-C and grid.run() again continues where it stopped
>>> grid.get_table()                                 # one row per point
>>> best = grid.recommend(max_energy_rmse=5, max_force_rmse=150, max_twojmax=6)   # median over draws, validation
>>> best.message, best.test_errors, best.fit_job

All points are computed from sufficient statistics by :func:`pyiron_mlip_tradeoff.fitting.run_grid` (no dense
refit; one streamed pass per draw). How they are kept is ``grid.input.point_storage``:

* ``"jobs"`` (default): each point a finished ``QSnapFit`` child job (``master_id`` = the grid's id) with its input,
  output and LAMMPS files, so ``pr.job_table()`` lists them and ``pr.create_table()`` can collect them;
* ``"table"``: the grid's own table (``grid.get_table()``) and one small file per draw
  (:mod:`~pyiron_mlip_tradeoff.jobs.grid_points`: rows, coefficients, subset order); ``grid.get_fit(row)`` makes a
  point's ``QSnapFit`` job, with its LAMMPS files, when it is asked for.

Chosen by measurement (``benchmarks/study_scale.py``, both ways on the same points; figures in the README): a
``QSnapFit`` job costs tens of ms and tens of kB per point (an HDF5 file, a folder with three LAMMPS files, a
database row), the table well under a ms and a few kB (2Jmax 6) — the table is how a study-sized grid (21,600
points) meets ≤ 5 ms and ≤ 20 kB per point. The
default stays ``"jobs"`` so that small grids keep every point in the job table, as the tour and notebooks use it.

On a cluster, ``grid.server.queue`` with ``grid.input.chunk_size`` splits the grid into ``GridChunk`` queue jobs
of whole draws (see :class:`TradeoffGrid`):

>>> grid.server.queue = "slurm_queue"
>>> grid.input.chunk_size = 4                        # (2Jmax, sampling, repetition) draws per queue job
>>> grid.run()                                       # descriptors here, chunks on the queue; waits, resubmits, merges

MD cost: until measured MD speeds exist, :meth:`TradeoffGrid.pareto` and :meth:`TradeoffGrid.recommend` represent
the cost of running a model by 2Jmax and its qSNAP column count (``md_cost_proxy``), which orders models but is not
a speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import LadderDataset
from ..fitting import (
    DEFAULT_SPLIT,
    DEFAULT_WEIGHT_RATIOS,
    SAMPLING_METHODS,
    TABLE_COLUMNS,
    GridPoint,
    GridSpec,
    PointKey,
    dataset_descriptors,
    plan_grid,
    run_grid,
)
from ..leverage import DEFAULT_LEVERAGE_ENERGY_WEIGHT
from ..pareto import (
    SUMMARIES,
    Recommendation,
    add_md_cost_proxy,
    pareto_rows,
    recommend,
    summarize_repetitions,
)
from .base import STORED_DATASET, mark_finished, to_builtin
from .fit import FastStorageJob, QSnapFit, load_dataset
from .grid_points import read_draw, stored_draws, subset_order, write_draw
from .queue import ChunkedMaster, QueueChunk, validate_chunk_settings

__all__ = ["TradeoffGrid", "grid_draws", "md_probe_name", "point_job_name", "POINT_STORAGE"]

#: how a grid keeps its points: "jobs" (a finished QSnapFit child job per point) or "table" (the grid's own table and
#: one file per draw; ``grid.get_fit(row)`` makes the point's QSnapFit job on demand)
POINT_STORAGE = ("jobs", "table")

_RESUMABLE = ("running", "aborted", "submitted", "collect")
#: statuses from which ``job.run()`` continues a chunked grid (it may also be waiting for its chunks: suspended)
_RESUMABLE_CHUNKED = (*_RESUMABLE, "suspended", "refresh", "busy")
_DB_BATCH = 50  # children per database transaction
#: grid coordinates stored in each child's input (besides the QSnapFit input)
_CHILD_INPUT_COLUMNS = ("training_level", "subset_size", "sampling", "repetition", "weight_ratio", "energy_weight",
                        "force_weight", "twojmax")
_CHILD_OUTPUT_COLUMNS = ("n_train", "n_columns", "rank", "dft_seconds", "reference_level", "validation_energy_rmse",
                         "validation_energy_rmse_shifted", "validation_force_rmse", "test_energy_rmse",
                         "test_energy_rmse_shifted", "test_force_rmse", "train_energy_rmse",
                         "train_energy_rmse_shifted", "train_force_rmse")
#: columns added with stresses (children stored before have none: NaN, and w_V = 0)
_CHILD_STRESS_COLUMNS = ("validation_stress_rmse", "test_stress_rmse", "train_stress_rmse")


def _number_tag(value: float) -> str:
    text = f"{float(value):g}"
    return text.replace(".", "p").replace("-", "m").replace("+", "")


def point_job_name(grid_name: str, key: tuple) -> str:
    """Name of the ``QSnapFit`` job of a grid point key (level, size, sampling, repetition, w_E, w_F, 2Jmax)."""
    level, size, sampling, rep, we, wf, tj = key
    return f"{grid_name}_L{level}_n{size}_{sampling}_r{rep}_we{_number_tag(we)}_wf{_number_tag(wf)}_j{tj}"


def md_probe_name(grid_name: str, twojmax: int, n_columns: int, n_atoms: int, steps: int, cores: int) -> str:
    """Name of the ``MDSpeed`` probe of a grid: keyed by model size (2Jmax, columns), cell size, steps and cores."""
    return f"{grid_name}_md_speed_j{int(twojmax)}_p{int(n_columns)}_n{int(n_atoms)}_s{int(steps)}_c{int(cores)}"


def grid_draws(spec: GridSpec) -> list[tuple[int, str, int]]:
    """The draws of a grid, in :meth:`GridSpec.keys` order: one ``(twojmax, sampling, repetition)`` each.

    A draw owns a whole nested-subset sequence: one ranking of the training pool whose prefixes are all subset sizes,
    and the fits of every (size, weight ratio, training level) on them. Its statistics are accumulated in one pass,
    so a draw is the smallest piece of a grid that can be computed elsewhere without computing anything twice.
    """
    return [(tj, sampling, rep) for tj in spec.twojmax for sampling in spec.sampling
            for rep in range(spec.repetitions)]


def _grid_dataset(spec: LadderDataset | str | Path | int | None, project=None) -> LadderDataset:
    """``input.dataset`` as the grid computes with it: a dataset file is opened with ``lazy=True`` (forces and
    structures stay in the file and each pass reads the configurations it needs, so the grid's memory does not grow
    with the dataset; the values are the same); anything else (``"bundled"``, a ``PrecisionLadder`` job, an
    in-memory dataset) as :func:`~pyiron_mlip_tradeoff.jobs.fit.load_dataset` gives it."""
    value = to_builtin(spec)
    if (isinstance(value, (str, Path)) and str(value) not in ("bundled", STORED_DATASET) and str(value).strip()
            and Path(str(value)).is_file()):
        return LadderDataset.load(value, lazy=True)
    return load_dataset(spec, project)


def _draw_of(key: PointKey) -> tuple[int, str, int]:
    return int(key[6]), str(key[2]), int(key[3])


class TradeoffGrid(ChunkedMaster, FastStorageJob):
    """Full factorial of training level × subset size × weight ratio × 2Jmax × sampling × repetition.

    Input (``job.input``):
        dataset: LadderDataset file, ``"bundled"``, or a ``PrecisionLadder`` job name/id. A file is opened with
            its forces and structures left in it (``LadderDataset.load(lazy=True)``): the grid's memory does not
            grow with the number of configurations.
        levels: training levels (default: all of the dataset's).
        subset_sizes: training-set sizes (configurations, each ≤ the training pool).
        weight_ratios: w_E / w_F (default the study's 5, 10, 12.25, 50, 150, 300); force_weight: w_F (default 1).
        twojmax: list of 2Jmax. sampling: among ``"energy"``, ``"block"`` (∝ leverage) and ``"random"``.
        repetitions: draws per sampling method; seed: their seed.
        validation_indices, test_indices, split_fractions, split_seed: the sets. Recipes are chosen on the
            validation set, the test set is only reported. Default: a seeded split by configuration into a training
            pool, validation and test set (fractions 0.5/0.25/0.25; the pool is the training half of the earlier
            50/50 split); sets given explicitly are used as given and the others cut from the remaining
            configurations (``fitting.resolve_split``).
        reference_level: level the errors are quoted against (default: the most precise level by its settings —
            densest k-mesh, then highest cutoff; an ambiguous ladder is refused).
        descriptor_settings, element, elements, reference_potential, reference_energies, group_weights, rcond,
            ridge: as for ``QSnapFit``.
        stress_weight: w_V on stress residuals in eV/Å³, next to the weight ratios (the same for every point;
            default 0: no stress rows).
        leverage_energy_weight: w_E/w_F of the energy row in block leverage (default 150, the study's).
        leverage_ridge: λ / s_max² of ridge leverage (default ``None``: automatic, see ``leverage.leverage_scores``).
        leverage_sketch: ``None`` (default, exact leverage scores) or r, the columns of sketched, approximate
            scores (faster for a large pool; see ``fitting.plan_grid``).
        cache_dir: descriptor cache (default: the grid's working directory, so a rerun reuses descriptors). On a
            cluster it must be on a file system the compute nodes see, as pyiron projects are.
        chunk_size: draws per queue job (``None``, the default: no chunks); needs ``job.server.queue``. A draw is
            one (2Jmax, sampling, repetition): levels × subset sizes × weight ratios points.
        poll_interval: seconds between two looks at the queue and the database while waiting for chunks (default 30).
        max_resubmissions: how often one chunk is resubmitted after it died, per ``job.run()`` (default 3).
        wait_for_chunks: ``True`` (default): ``job.run()`` returns when the grid is finished; ``False``: it returns
            once the chunks are submitted.
        point_storage: ``"jobs"`` (default: a ``QSnapFit`` child job per point) or ``"table"`` (the grid's table and
            one file per draw in ``<working directory>/points``; :meth:`get_fit` makes a point's job on demand). See
            the module docstring for the measurement behind the choice.
        descriptor_caches: ``{twojmax: folder}`` of chunked descriptor caches (``DescriptorPool``,
            ``descriptor_cache.compute_chunked_descriptors``) to read instead of computing descriptors; each is
            checked against the dataset (configurations, atoms, elements, settings, content hash of every chunk's
            structures) before anything is saved.

    Output (``job.output``):
        table (DataFrame, one row per point; see :meth:`get_table`), n_points, n_computed (points computed in the
        last run), seconds (total), compute_seconds (descriptors, statistics, fits), store_seconds (storing child
        jobs, or the table's rows and files), ms_per_stored_job (bookkeeping ms per point), stage_seconds (in-process
        runs: seconds of the parts, see ``fitting.run_grid(timings=…)``, and with ``point_storage = "table"``
        ``points``, all of computing and keeping the points — what remains of ``seconds`` is loading and checking
        the input and writing the table). Chunked runs: chunk_events (JSON list, see :meth:`chunk_events`); seconds is the
        wall time from ``job.run()`` to the last point, compute_seconds and store_seconds are summed over the chunks'
        latest runs; master_timeline (Unix times of the steps of the run that waited: ``run``, ``planned``,
        ``descriptors_ready``, ``submitting``, ``submitted``, ``chunks_done``, ``finished``). Each chunk's
        ``ended`` event carries its own ``timeline`` (``process_start``, ``run_static``, ``grid_loaded``,
        ``dataset_loaded``, ``planned``, ``descriptors_checked``, ``points_done``, ``stored``, ``finished``) and
        ``stage_seconds`` (as ``run_grid``'s timings, plus ``shared_parts``: getting the once-per-grid parts).

    Queue without chunks: with ``job.server.queue`` set and ``chunk_size`` left ``None``, pyiron submits the whole
    grid as one queue job.

    Chunks on a queue: with ``job.server.queue`` and ``chunk_size`` set, the grid's draws (:func:`grid_draws`, in
    table order) are cut into consecutive chunks of ``chunk_size`` draws. A chunk always holds whole draws, so the
    statistics of every nested subset are still accumulated once. The once-per-grid parts of a 2Jmax (validation
    and test statistics, and for leverage sampling the pool's leverage scores) are computed once per ``job.run()``
    and shared among the chunks through files in ``<working directory>/chunk_shared`` (removed when the grid
    finishes): each part by the first chunk that claims it, chunks side by side starting on different parts
    (:mod:`~pyiron_mlip_tradeoff.chunk_sharing`). The grid job itself takes no queue slot:
    ``job.run()`` runs it in the calling process. It first computes the descriptors of every 2Jmax with points still
    to do, once, into ``cache_dir`` (skipped when cached), then submits each chunk with points still missing as a
    ``GridChunk`` child job (``<name>_chunk00000``, …) through pysqa with ``job.server.cores`` cores (a chunk uses
    one), ``server.run_time`` and ``server.memory_limit``. A chunk reads the descriptors, computes its points with
    :func:`~pyiron_mlip_tradeoff.fitting.run_grid` and stores each as a ``QSnapFit`` child *of the grid*, with the
    same name, files and database row as an in-process run (50 rows per transaction), so :meth:`get_table` and
    ``pr.create_table()`` (filtered on ``hamilton == "QSnapFit"``) give the same results; with ``point_storage =
    "table"`` it writes each of its draws as one file of the grid's points folder instead (no database row per
    point, and a chunk killed mid-run leaves only whole draws). Waiting, resubmission of
    killed chunks (only their points not yet in the database are computed again), ``wait_for_chunks = False`` and
    resuming with ``job.run()`` work as for a chunked ``PrecisionLadder``; see :mod:`pyiron_mlip_tradeoff.jobs.queue`.
    """

    _master_noun = "grid"
    _work_noun = "points"
    _owner_file = "grid_owner.json"

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.dataset = None
        self.input.levels = None
        self.input.subset_sizes = None
        self.input.weight_ratios = list(DEFAULT_WEIGHT_RATIOS)
        self.input.force_weight = 1.0
        self.input.twojmax = [6]
        self.input.sampling = list(SAMPLING_METHODS)
        self.input.repetitions = 1
        self.input.seed = 0
        self.input.test_indices = None
        self.input.validation_indices = None
        self.input.split_seed = 0
        self.input.split_fractions = list(DEFAULT_SPLIT)
        self.input.reference_level = None
        self.input.descriptor_settings = {}
        self.input.element = "Be"
        self.input.elements = None
        self.input.stress_weight = 0.0
        self.input.reference_potential = None
        self.input.reference_energies = {}
        self.input.group_weights = {}
        self.input.leverage_energy_weight = DEFAULT_LEVERAGE_ENERGY_WEIGHT
        self.input.leverage_ridge = None
        self.input.leverage_sketch = None
        self.input.rcond = None
        self.input.ridge = None
        self.input.cache_dir = None
        self.input.chunk_size = None
        self.input.poll_interval = 30.0
        self.input.max_resubmissions = 3
        self.input.wait_for_chunks = True
        self.input.point_storage = "jobs"
        self.input.descriptor_caches = None

    # -- input -----------------------------------------------------------------------------------------------
    def _plan(self, dataset: LadderDataset | None = None) -> tuple[LadderDataset, GridSpec]:
        """The dataset (loaded from ``input.dataset`` unless given) and the validated :class:`GridSpec`."""
        if dataset is None:
            dataset = _grid_dataset(self.input.dataset, self.project)
        spec = plan_grid(
            dataset,
            subset_sizes=to_builtin(self.input.subset_sizes),
            levels=to_builtin(self.input.levels),
            weight_ratios=to_builtin(self.input.weight_ratios),
            twojmax=to_builtin(self.input.twojmax),
            sampling=to_builtin(self.input.sampling),
            repetitions=self.input.repetitions,
            seed=self.input.seed,
            test_indices=to_builtin(self.input.test_indices),
            split_seed=self.input.split_seed,
            force_weight=self.input.force_weight,
            descriptor_settings=to_builtin(self.input.descriptor_settings) or {},
            leverage_energy_weight=self.input.leverage_energy_weight,
            rcond=self.input.rcond,
            ridge=self.input.ridge,
            element=self.input.element,
            validation_indices=to_builtin(self.input.get("validation_indices")),
            split_fractions=to_builtin(self.input.get("split_fractions")) or DEFAULT_SPLIT,
            reference_level=to_builtin(self.input.get("reference_level")),
            leverage_ridge=to_builtin(self.input.get("leverage_ridge")),
            leverage_sketch=to_builtin(self.input.get("leverage_sketch")),
            stress_weight=self.input.get("stress_weight", 0.0) or 0.0,
            elements=to_builtin(self.input.get("elements")) or None,
            reference_potential=to_builtin(self.input.get("reference_potential")),
            reference_energies=to_builtin(self.input.get("reference_energies")) or None,
            group_weights=to_builtin(self.input.get("group_weights")) or None,
        )
        return dataset, spec

    def to_dataset(self) -> LadderDataset:
        """The grid's dataset (what its points name when the grid was given an in-memory dataset)."""
        return load_dataset(self.input.dataset, self.project)

    def validate_ready_to_run(self) -> None:
        """Check the whole grid (dataset, levels, sizes, weights, 2Jmax, sampling, chunk settings) before anything is
        saved or computed."""
        validate_chunk_settings(self, "grid", "draws")
        self._point_storage()
        dataset, spec = self._plan()
        caches = self._descriptor_sources(dataset, spec)
        if caches:  # stored with string keys (HDF5 group names), absolute folders (chunks run elsewhere)
            self.input.descriptor_caches = {str(tj): str(cache.path.resolve()) for tj, cache in caches.items()}

    def _point_storage(self) -> str:
        """``input.point_storage``, checked."""
        value = self.input.get("point_storage", "jobs") or "jobs"
        if value not in POINT_STORAGE:
            raise ValueError(f"point_storage must be one of {POINT_STORAGE}, got {value!r}")
        return value

    def _points_dir(self) -> Path:
        """Folder of the draw files of ``point_storage = "table"``."""
        return Path(self.working_directory).resolve() / "points"

    def _descriptor_sources(self, dataset: LadderDataset, spec: GridSpec) -> dict:
        """``{twojmax: ChunkedDescriptorCache}`` of ``input.descriptor_caches``, each checked against the dataset
        and the grid's settings (configurations, atoms, elements, settings, and the content hash of every chunk's
        structures) before anything is computed."""
        from ..descriptor_cache import ChunkedDescriptorCache
        from ..descriptors import resolve_settings

        caches = to_builtin(self.input.get("descriptor_caches")) or {}
        if not isinstance(caches, Mapping):
            raise ValueError(f"descriptor_caches must be a dict {{twojmax: chunked cache folder}}, got {caches!r}")
        out = {}
        for key, folder in caches.items():
            try:
                tj = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"descriptor_caches: key {key!r} is not a 2Jmax") from None
            if tj not in spec.twojmax:
                raise ValueError(f"descriptor_caches names 2Jmax {tj}, which is not in the grid {list(spec.twojmax)}")
            cache = ChunkedDescriptorCache(folder)
            where = f"descriptor_caches[{tj}] ({folder})"
            if cache.twojmax != tj or cache.n_configs != dataset.n_configs:
                raise ValueError(f"{where} holds 2Jmax {cache.twojmax} for {cache.n_configs} configurations; the grid "
                                 f"needs 2Jmax {tj} for the dataset's {dataset.n_configs}")
            if not np.array_equal(cache.n_atoms, dataset.n_atoms):
                bad = int(np.flatnonzero(cache.n_atoms != dataset.n_atoms)[0])
                raise ValueError(f"{where}: configuration {bad} has {cache.n_atoms[bad]} atoms there, "
                                 f"{dataset.n_atoms[bad]} in the dataset")
            if tuple(cache.elements) != tuple(spec.model_elements):
                raise ValueError(f"{where} has elements {list(cache.elements)}, the grid {list(spec.model_elements)}")
            wanted = {k: v for k, v in resolve_settings(tj, spec.descriptor_settings, len(spec.model_elements)).items()
                      if k != "twojmax"}
            if to_builtin(cache.settings) != to_builtin(wanted):
                raise ValueError(f"{where} was computed with settings {cache.settings}, the grid needs {wanted}")
            if spec.stress_weight > 0 and not cache.virial:
                raise ValueError(f"{where} has no virial rows, which stress_weight > 0 needs")
            for k, (a, b) in enumerate(cache.bounds):  # the structures themselves, by the content hash per chunk
                cache.check_chunk_structures(k, dataset.structures[a:b])
            missing = cache.missing_chunks()
            if missing:
                raise ValueError(f"{where}: {len(missing)} of {cache.n_chunks} chunks are not computed yet "
                                 f"(first: {missing[0]})")
            out[tj] = cache
        return out

    def _chunked(self) -> bool:
        """Whether ``job.run()`` splits this grid into ``GridChunk`` queue jobs."""
        return self.server.queue is not None and self.input.get("chunk_size") is not None

    def _cache_dir(self) -> str:
        """The descriptor cache folder (absolute)."""
        return os.path.abspath(self.input.cache_dir or os.path.join(self.working_directory, "descriptors"))

    # -- running and resuming --------------------------------------------------------------------------------
    def run(
        self,
        delete_existing_job: bool = False,
        repair: bool = False,
        debug: bool = False,
        run_mode: str | None = None,
        run_again: bool = False,
    ) -> None:
        """Run the grid; on a grid that was interrupted, continue it (finished points are not recomputed)."""
        status = self.status.string
        if not (delete_existing_job or run_again):
            if self._chunked() and status in _RESUMABLE_CHUNKED:
                self._check_not_owned_by_live_process()
                self.status.created = True
            elif status in _RESUMABLE:
                self.status.created = True
        return super().run(delete_existing_job=delete_existing_job, repair=repair, debug=debug, run_mode=run_mode,
                           run_again=run_again)

    def _children(self) -> dict[str, dict]:
        """Database entries of this grid's child jobs by name."""
        if self.job_id is None:
            return {}
        return {item["job"]: item for item in self.project.db.get_items_dict({"masterid": int(self.job_id)})}

    def run_static(self) -> None:
        from tqdm.auto import tqdm

        self.status.running = True
        start = time.perf_counter()
        dataset, spec = self._plan()
        if self._point_storage() == "table":
            self._run_static_table(dataset, spec, start)
            return
        children = self._children()
        finished = {name for name, item in children.items() if item["status"] == "finished"}
        for name, item in children.items():  # half-written children of an interrupted run
            if name not in finished:
                self.project.remove_job(int(item["id"]))
        names = {key: point_job_name(self.job_name, key) for key in spec.keys()}
        done_keys = {key for key, name in names.items() if name in finished}

        rows: list[dict] = [self._row_from_child(names[key]) for key in done_keys]
        bar = tqdm(total=spec.n_points, desc=f"grid {self.job_name}", unit="point")
        bar.update(len(done_keys))
        try:
            new_rows, store_seconds = self._compute_and_store(dataset, spec, done_keys.__contains__, names,
                                                              self._cache_dir(), on_point=lambda: bar.update(1))
        finally:
            bar.close()
        rows += new_rows
        self._finish_run(_table_in_grid_order(rows, spec), spec, len(new_rows), store_seconds, start)

    def _finish_run(self, table, spec: GridSpec, n_computed: int, store_seconds: float, start: float) -> None:
        """Store the table and the run's figures (seconds, storage ms per point, stages) and mark the grid finished."""
        out = self.output
        out.table = table
        out.n_points = int(spec.n_points)
        out.n_computed = int(n_computed)
        out.seconds = time.perf_counter() - start
        out.store_seconds = store_seconds
        out.compute_seconds = out.seconds - store_seconds
        out.ms_per_stored_job = 1e3 * store_seconds / n_computed if n_computed else float("nan")
        out.stage_seconds = dict(getattr(self, "_stage_seconds", {}))
        mark_finished(self)

    def _run_static_table(self, dataset: LadderDataset, spec: GridSpec, start: float) -> None:
        """``run_static`` with ``point_storage = "table"``: draws already in the points folder are kept."""
        from tqdm.auto import tqdm

        todo = set(grid_draws(spec)) - set(stored_draws(self._points_dir()))
        per_draw = spec.n_points // len(grid_draws(spec))
        bar = tqdm(total=spec.n_points, desc=f"grid {self.job_name}", unit="point")
        bar.update(spec.n_points - per_draw * len(todo))
        try:
            n_computed, store_seconds = self._compute_and_store_table(dataset, spec, todo, self._cache_dir(),
                                                                      on_point=lambda: bar.update(1))
        finally:
            bar.close()
        self._finish_run(self._table_from_draws(spec), spec, n_computed, store_seconds, start)

    def _compute_and_store_table(self, dataset: LadderDataset, spec: GridSpec, draws: set, cache_dir: str,
                                 on_point=None, once_per_grid=None) -> tuple[int, float]:
        """Compute the points of ``draws`` and write each draw, once all its points are there, as one file of the
        points folder (:mod:`~pyiron_mlip_tradeoff.jobs.grid_points`); a draw cut short is not written.

        Returns:
            The number of points computed, and the seconds spent on their bookkeeping (table rows, coefficients,
            files).
        """
        store_seconds, n = 0.0, 0
        current, rows, coefficients, sets = None, [], [], {}
        folder = self._points_dir()
        descriptors = self._descriptor_sources(dataset, spec) or None
        if hasattr(self, "_chunk_timeline"):
            self._chunk_timeline["descriptors_checked"] = time.time()
        timings = self._stage_seconds = {}
        loop_start, loop_cpu = time.perf_counter(), time.process_time()
        for point in run_grid(dataset, spec, cache_dir=cache_dir, descriptors=descriptors,
                              skip=lambda key: _draw_of(key) not in draws, timings=timings,
                              once_per_grid=once_per_grid):
            t0 = time.perf_counter()
            draw = _draw_of(point.key)
            if draw != current:
                if current is not None:
                    write_draw(folder, current, rows, np.vstack(coefficients), subset_order(sets.values()))
                current, rows, coefficients, sets = draw, [], [], {}
            rows.append({**point.row(), "job_name": point_job_name(self.job_name, point.key)})
            coefficients.append(point.result.coefficients)
            if point.subset_size not in sets:
                sets[point.subset_size] = point.result.train_indices
            n += 1
            store_seconds += time.perf_counter() - t0
            if on_point is not None:
                on_point()
        t0 = time.perf_counter()
        if current is not None:
            write_draw(folder, current, rows, np.vstack(coefficients), subset_order(sets.values()))
        timings["points"] = time.perf_counter() - loop_start
        timings["points_cpu"] = time.process_time() - loop_cpu
        return n, store_seconds + time.perf_counter() - t0

    def _table_from_draws(self, spec: GridSpec) -> pd.DataFrame:
        """The table of a ``point_storage = "table"`` grid from its draw files, in :meth:`GridSpec.keys` order.

        Raises:
            RuntimeError: naming the draws whose file is missing.
        """
        files = stored_draws(self._points_dir())
        missing = [d for d in grid_draws(spec) if d not in files]
        if missing:
            raise RuntimeError(f"{len(missing)} draw(s) of grid {self.job_name!r} have no stored points: {missing[:5]}")
        frames = [pd.DataFrame(read_draw(files[d])["rows"]) for d in grid_draws(spec)]
        table = pd.concat(frames, ignore_index=True)
        columns = [c for c in (*TABLE_COLUMNS, "job_name") if c in table.columns]
        order = {key: i for i, key in enumerate(spec.keys())}
        keys = zip(table["training_level"].astype(int), table["subset_size"].astype(int), table["sampling"],
                   table["repetition"].astype(int), table["energy_weight"].astype(float),
                   table["force_weight"].astype(float), table["twojmax"].astype(int), strict=True)
        table["_order"] = [order[(int(a), int(b), str(c), int(d), float(e), float(f), int(g))]
                           for a, b, c, d, e, f, g in keys]
        return table.sort_values("_order")[columns].reset_index(drop=True)

    def _compute_and_store(self, dataset: LadderDataset, spec: GridSpec, skip, names: Mapping[PointKey, str],
                           cache_dir: str, on_point=None, once_per_grid=None) -> tuple[list[dict], float]:
        """Compute the points :func:`run_grid` does not ``skip`` and store each as a finished ``QSnapFit`` child.

        Children are registered in the database in batches of 50, each only once its files are complete; on any
        exit (also Ctrl-C or a crash) what is on disk is registered first.

        Returns:
            The table rows of the computed points, and the seconds spent storing them.
        """
        rows: list[dict] = []
        store_seconds = 0.0
        pending: list[dict] = []  # database entries of children whose HDF5 is written, inserted in batches
        descriptors = self._descriptor_sources(dataset, spec) or None
        try:
            timings = self._stage_seconds = {}
            for point in run_grid(dataset, spec, cache_dir=cache_dir, descriptors=descriptors, skip=skip,
                                  timings=timings, once_per_grid=once_per_grid):
                t0 = time.perf_counter()
                row, entry = self._store_point(point, names[point.key], spec)
                rows.append(row)
                pending.append(entry)
                if len(pending) >= _DB_BATCH:
                    _insert_entries(self.project.db, pending)
                    pending = []
                store_seconds += time.perf_counter() - t0
                if on_point is not None:
                    on_point()
        finally:
            t0 = time.perf_counter()
            _insert_entries(self.project.db, pending)
            store_seconds += time.perf_counter() - t0
        return rows, store_seconds

    # -- chunks on a queue -------------------------------------------------------------------------------------
    def run_if_scheduler(self) -> int | None:
        """With ``chunk_size`` set, run the chunked grid here and send only its chunks to the queue."""
        if not self._chunked():
            return super().run_if_scheduler()
        return self._run_chunked()

    def _dataset_for_chunks(self):
        """``input.dataset`` as the chunks must see it: a file path made absolute (chunks run elsewhere), the grid's
        name for an in-memory dataset (stored in the grid's file)."""
        if isinstance(self.input.dataset, LadderDataset):
            return self.job_name
        spec = to_builtin(self.input.dataset)
        if isinstance(spec, str) and spec != "bundled" and Path(spec).is_file():
            return str(Path(spec).resolve())
        return spec

    def _run_chunked(self) -> None:
        started = time.time()
        timeline = self._master_timeline = {"run": started}
        dataset, spec = self._plan()
        timeline["planned"] = time.time()
        self._spec_cache = spec
        self._begin_chunked_run()
        self._before_chunk_scan()
        draws = grid_draws(spec)
        size = int(self.input.chunk_size)
        chunks = [QueueChunk(i // size, draws[i:i + size]) for i in range(0, len(draws), size)]
        n_todo_of = {chunk.index: len(self._chunk_todo(chunk)) for chunk in chunks}
        todo = [chunk for chunk in chunks if n_todo_of[chunk.index]]
        n_todo = sum(n_todo_of.values())
        # descriptors once per 2Jmax, before any chunk needs them (chunks only read the cache)
        given = self._descriptor_sources(dataset, spec)
        for tj in sorted({draw[0] for chunk in todo for draw in chunk.items} - set(given)):
            dataset_descriptors(dataset, tj, spec.descriptor_settings, element=spec.element,
                                elements=spec.elements, virial=spec.stress_weight > 0, cache_dir=self._cache_dir())
        timeline["descriptors_ready"] = time.time()
        self.output.n_points = int(spec.n_points)
        self.output.n_computed = int(n_todo)
        self.output.run_started = started
        self.to_hdf()
        timeline["submitting"] = time.time()
        self._run_chunks(todo)

    def _chunk_spec(self) -> GridSpec:
        spec = getattr(self, "_spec_cache", None)
        if spec is None:
            spec = self._spec_cache = self._plan()[1]
        return spec

    def _before_chunk_scan(self) -> None:
        """Read which points are stored (once per scan of the chunks): finished point children in the database, or
        with ``point_storage = "table"`` the points of the draws whose file is written."""
        if self._point_storage() == "table":
            stored = set(stored_draws(self._points_dir()))
            self._finished_points = {point_job_name(self.job_name, k) for k in self._chunk_spec().keys()
                                     if _draw_of(k) in stored}
            return
        self._finished_points = {name for name, item in self._children().items() if item["status"] == "finished"}

    def _chunk_point_names(self, chunk: QueueChunk) -> list[str]:
        draws = {tuple(d) for d in chunk.items}
        return [point_job_name(self.job_name, k) for k in self._chunk_spec().keys() if _draw_of(k) in draws]

    # hooks of ChunkedMaster
    def _chunk_todo(self, chunk: QueueChunk) -> list[str]:
        return [name for name in self._chunk_point_names(chunk) if name not in self._finished_points]

    def _chunk_missing(self, chunk: QueueChunk) -> list[str]:
        return self._chunk_todo(chunk)

    def _chunk_matches(self, child, chunk: QueueChunk) -> bool:
        return json.loads(child.input.draws) == [list(d) for d in chunk.items]

    def _new_chunk_job(self, chunk: QueueChunk, name: str):
        from .grid_chunk import GridChunk

        child = self.project.create_job(GridChunk, name)
        inp = child.input
        inp.grid_id = int(self.job_id)
        inp.chunk_index = int(chunk.index)
        inp.draws = json.dumps([list(d) for d in chunk.items])
        inp.dataset = self._dataset_for_chunks()
        inp.cache_dir = self._cache_dir()
        inp.events_file = str(self._events_path)
        return child

    def _chunks_complete(self) -> bool:
        self._before_chunk_scan()
        spec = self._chunk_spec()
        return all(point_job_name(self.job_name, k) in self._finished_points for k in spec.keys())

    def _finish_chunked(self) -> None:
        """Assemble the table from the stored children and mark the grid finished (all points stored)."""
        spec = self._chunk_spec()
        self._before_chunk_scan()
        names = [point_job_name(self.job_name, k) for k in spec.keys()]
        missing = [n for n in names if n not in self._finished_points]
        if missing:
            raise RuntimeError(f"{len(missing)} grid point(s) have no stored result: {missing[:5]}")
        out = self.output
        if self._point_storage() == "table":
            out.table = self._table_from_draws(spec)
        else:
            out.table = _table_in_grid_order([self._row_from_child(name) for name in names], spec)
        out.n_points = int(spec.n_points)
        chunk_seconds = store_seconds = 0.0
        for item in self._children().values():
            if item["hamilton"] == "GridChunk":
                chunk = self.project.load(int(item["id"]))
                chunk_seconds += float(chunk.output.get("seconds", 0.0))
                store_seconds += float(chunk.output.get("store_seconds", 0.0))
        started = out.get("run_started")
        out.seconds = time.time() - float(started) if started is not None else float("nan")
        out.store_seconds = store_seconds
        out.compute_seconds = chunk_seconds - store_seconds
        n_computed = int(out.get("n_computed") or 0)
        out.ms_per_stored_job = 1e3 * store_seconds / n_computed if n_computed else float("nan")
        out.chunk_events = json.dumps(self.chunk_events())
        shutil.rmtree(self._shared_dir(), ignore_errors=True)  # the once-per-grid parts the chunks shared
        timeline = getattr(self, "_master_timeline", None)
        if timeline is not None:
            timeline["finished"] = time.time()
            out.master_timeline = dict(timeline)
        mark_finished(self)

    def compute_chunk(
        self,
        draws: Iterable[Sequence],
        dataset: LadderDataset | str | Path | int | None = None,
        cache_dir: str | None = None,
        chunk_index: int = 0,
    ) -> dict:
        """Compute and store the points of ``draws`` (``(twojmax, sampling, repetition)``) not yet stored.

        What a ``GridChunk`` runs; points whose ``QSnapFit`` child is in the database as finished are skipped. The
        once-per-grid parts (validation and test statistics, leverage scores) are shared with the grid's other
        chunks of the same ``job.run()`` through files (:mod:`~pyiron_mlip_tradeoff.chunk_sharing`): each is
        computed by one chunk, the first to claim it, and read by the others.

        Args:
            draws: the draws of the chunk.
            dataset: ``input.dataset`` as the chunk sees it (default: the grid's).
            cache_dir: the descriptor cache (default: the grid's).
            chunk_index: the chunk's position in the grid's plan; chunks begin claiming shared parts at different
                parts by it.

        Returns:
            ``computed`` and ``skipped`` (point job names) and ``store_seconds``.
        """
        clock = self._chunk_timeline = {"compute_chunk": time.time()}
        data = _grid_dataset(dataset if dataset is not None else self.input.dataset, self.project)
        clock["dataset_loaded"] = time.time()
        data, spec = self._plan(data)
        clock["planned"] = time.time()
        wanted = {(int(d[0]), str(d[1]), int(d[2])) for d in draws}
        unknown = wanted - set(grid_draws(spec))
        if unknown:
            raise ValueError(f"draws {sorted(unknown)} are not part of grid {self.job_name!r}")
        once = self._shared_parts(spec, int(chunk_index))
        if self._point_storage() == "table":
            done = wanted & set(stored_draws(self._points_dir()))
            _, store_seconds = self._compute_and_store_table(data, spec, wanted - done, cache_dir or self._cache_dir(),
                                                             once_per_grid=once)
            clock["points_done"] = time.time()
            names = [(point_job_name(self.job_name, k), _draw_of(k) in done) for k in spec.keys()
                     if _draw_of(k) in wanted]
            return {"computed": [n for n, d in names if not d], "skipped": [n for n, d in names if d],
                    "store_seconds": store_seconds, "timeline": clock,
                    "stage_seconds": dict(getattr(self, "_stage_seconds", {}))}
        children = self._children()
        names = {k: point_job_name(self.job_name, k) for k in spec.keys() if _draw_of(k) in wanted}
        finished = {n for n in names.values() if n in children and children[n]["status"] == "finished"}
        for name in names.values():  # a half-registered child of a killed run of this chunk: computed again
            if name in children and name not in finished:
                self.project.remove_job(int(children[name]["id"]))
        todo = {k for k, n in names.items() if n not in finished}
        rows, store_seconds = self._compute_and_store(data, spec, lambda k: k not in todo, names,
                                                      cache_dir or self._cache_dir(), once_per_grid=once)
        clock["points_done"] = time.time()
        return {"computed": [r["job_name"] for r in rows],
                "skipped": [n for n in names.values() if n in finished], "store_seconds": store_seconds,
                "timeline": clock, "stage_seconds": dict(getattr(self, "_stage_seconds", {}))}

    def _shared_dir(self) -> Path:
        """Folder where the chunks of a chunked run share their once-per-grid parts."""
        return Path(self.working_directory).resolve() / "chunk_shared"

    def _shared_parts(self, spec: GridSpec, chunk_index: int):
        """``run_grid``'s ``once_per_grid`` for a chunk: each part shared with the other chunks of this run (the
        key holds the grid's settings and the run's start, so nothing of another run or other input is read)."""
        from ..chunk_sharing import share_parts

        run = repr(self.output.get("run_started"))

        def once(twojmax: int, parts: dict) -> Mapping:
            start = time.perf_counter()
            key = hashlib.sha256(pickle.dumps((run, int(twojmax), spec), protocol=4)).hexdigest()[:20]
            values = share_parts(self._shared_dir(), key, parts, start=chunk_index)
            timings = getattr(self, "_stage_seconds", None)  # computing, waiting for and reading the parts
            if timings is not None:
                timings["shared_parts"] = timings.get("shared_parts", 0.0) + time.perf_counter() - start
            return values

        return once

    def _store_point(self, point: GridPoint, name: str, spec: GridSpec) -> tuple[dict, dict]:
        """Write one computed point as a finished ``QSnapFit`` child (HDF5 and LAMMPS files; no refit).

        Returns its table row and its database entry; the entry is inserted later in a batch, so a child is in
        the database (and counts as done) only once its files are complete."""
        child = self.project.create.job.QSnapFit(name)
        # a run killed while it wrote this point (scancel, Ctrl-C) leaves a half-written HDF5 file, possibly with
        # its write flags still set, and no database row: start the point afresh
        Path(child.project_hdf5.file_name).unlink(missing_ok=True)
        shutil.rmtree(child.working_directory, ignore_errors=True)
        r = point.result
        inp = child.input
        # an in-memory dataset stays in the grid's file: the point names the grid (TradeoffGrid.to_dataset)
        inp.dataset = self.job_name if isinstance(self.input.dataset, LadderDataset) else to_builtin(self.input.dataset)
        inp.training_level = int(r.training_level)
        inp.train_indices = np.asarray(r.train_indices, dtype=np.int64)
        inp.test_indices = np.asarray(spec.test_indices, dtype=np.int64)
        inp.validation_indices = np.asarray(spec.validation_indices, dtype=np.int64)
        inp.reference_level = int(r.reference_level)
        inp.energy_weight = float(r.energy_weight)
        inp.force_weight = float(r.force_weight)
        inp.twojmax = int(r.twojmax)
        inp.descriptor_settings = dict(spec.descriptor_settings)
        inp.element = spec.element
        inp.elements = None if spec.elements is None else list(spec.elements)
        inp.stress_weight = float(spec.stress_weight)
        inp.reference_potential = spec.reference_potential
        inp.reference_energies = dict(spec.reference_energies)
        inp.group_weights = {g: list(t) for g, t in spec.group_weights.items()}
        inp.rcond = spec.rcond
        inp.ridge = spec.ridge
        inp.subset_size = int(point.subset_size)
        inp.sampling = point.sampling
        inp.repetition = int(point.repetition)
        inp.weight_ratio = float(point.weight_ratio)
        inp.grid_job = self.job_name
        child.set_result(r, n_columns=point.n_columns)
        child.master_id = self.job_id
        child.status.finished = True
        child.to_hdf()
        return {**point.row(), "job_name": name}, child.db_entry()

    def _row_from_child(self, name: str) -> dict:
        content = self.project.inspect(name)
        inp = content["input/data"]
        row = {c: inp[c] for c in _CHILD_INPUT_COLUMNS}
        for c in _CHILD_OUTPUT_COLUMNS:
            row[c] = content[f"output/{c}"]
        for c in _CHILD_STRESS_COLUMNS:
            try:
                row[c] = float(content[f"output/{c}"])
            except (KeyError, ValueError, TypeError):
                row[c] = np.nan
        row["stress_weight"] = float(inp.get("stress_weight", 0.0) or 0.0)
        row["job_name"] = name
        return row

    # -- results ---------------------------------------------------------------------------------------------
    def get_table(self) -> pd.DataFrame:
        """One row per grid point: training_level, subset_size, sampling, repetition, weight_ratio, energy_weight,
        force_weight, twojmax, n_train, n_columns, rank, dft_seconds (DFT CPU seconds of the training set at the
        training level; wall seconds where the dataset records no CPU time), reference_level,
        validation_energy_rmse, validation_energy_rmse_shifted (meV/atom), validation_force_rmse (meV/Å) — vs the
        reference level —, the same test_* and train_* errors, and job_name (the point's ``QSnapFit`` job)."""
        table = self.output.get("table")
        if table is None:
            raise ValueError(f"grid {self.job_name!r} has no results yet (status: {self.status})")
        table = table.copy()
        speeds = self.md_speeds()
        if speeds:
            table["md_speed"] = [speeds.get(int(tj), np.nan) for tj in table["twojmax"]]
            table["md_cost"] = 1.0 / table["md_speed"]
        return table

    # -- MD cost -----------------------------------------------------------------------------------------------
    def md_speeds(self) -> dict[int, float]:
        """Measured LAMMPS speed per 2Jmax (atom-timesteps/s) of the latest :meth:`measure_md_speed`, empty until it
        ran; ``output.md_speed`` also records the cell size, steps and cores of that measurement."""
        stored = self.output.get("md_speed")
        if not stored:
            return {}
        stored = to_builtin(stored)
        return {int(k): float(v) for k, v in zip(stored["twojmax"], stored["atom_steps_per_second"], strict=True)}

    def measure_md_speed(self, n_atoms: int = 2000, steps: int = 100, cores: int = 1,
                         twojmax: Sequence[int] | None = None) -> dict[int, float]:
        """Measure the MD speed of a qSNAP model of each 2Jmax of the grid with an ``MDSpeed`` job and keep it.

        The cost of ``pair_style snap`` per step does not depend on the coefficient values, so the speed is measured
        with a probe model of the right size and tiny coefficients (which cannot blow up); whether a particular fitted
        model is *stable* is a separate question for ``MDSpeed(fit_job=...)``, so the probe runs only the timed NVE
        run (no NVT/NVE stability runs). Afterwards :meth:`get_table` carries
        ``md_speed`` (atom-timesteps/s) and ``md_cost`` (s per atom-timestep) columns, and ``recommend(min_md_speed=…)``
        and ``pareto(objectives=[..., "md_cost"])`` use the measurement instead of the column-count proxy.

        A probe is keyed by what it measured — model (2Jmax and descriptor settings), cell size, steps and cores:
        its ``MDSpeed`` child is named after all of them, so an earlier probe is reused only for the same model size,
        cell size, steps and cores, and a different request measures anew.

        Args:
            n_atoms: size of the hcp cell (about; atoms).
            steps: timed MD steps.
            cores: MPI ranks of the LAMMPS run.
            twojmax: which 2Jmax to measure (default: all of the grid's).

        Returns:
            ``{twojmax: atom-timesteps per second}`` of this measurement.
        """
        from ..descriptors import n_columns, resolve_settings

        if not self.status.finished:
            raise RuntimeError(f"grid {self.job_name!r} has status {self.status}; run it first")
        for name, value, minimum in (("n_atoms", n_atoms, 1), ("steps", steps, 1), ("cores", cores, 1)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
        settings = dict(to_builtin(self.input.descriptor_settings) or {})
        values = sorted({int(t) for t in (twojmax or self.get_table()["twojmax"].unique())})
        speeds = {}
        for tj in values:
            resolved = resolve_settings(tj, settings)
            p = n_columns(tj, int(resolved["quadraticflag"]), int(resolved["bzeroflag"]))
            name = md_probe_name(self.job_name, tj, p, n_atoms, steps, cores)
            job = self.project.create.job.MDSpeed(name)
            if not job.status.finished:
                job.input.coefficients = np.full(p, 1e-10)
                job.input.twojmax = tj
                job.input.descriptor_settings = settings
                job.input.element = self.input.element
                job.input.n_atoms = int(n_atoms)
                job.input.steps = int(steps)
                job.input.nvt_steps = 0  # a probe cannot blow up: only the timed run is needed
                job.input.nve_steps = 0
                job.input.cores = int(cores)
                job.master_id = self.job_id
                job.run()
            speeds[tj] = float(job.output.atom_steps_per_second)
        self.output.md_speed = {"twojmax": list(speeds), "atom_steps_per_second": list(speeds.values()),
                                "n_atoms": int(n_atoms), "steps": int(steps), "cores": int(cores)}
        self.to_hdf()
        return speeds

    def pareto(
        self,
        objectives: Sequence[str] = ("validation_energy_rmse", "validation_force_rmse", "dft_seconds"),
        summarize: str | None = "median",
    ) -> pd.DataFrame:
        """Non-dominated recipes (all objectives minimised), sorted by the first objective.

        Objectives are table columns, plus ``md_cost_proxy`` (qSNAP column count of the point's 2Jmax — a stand-in
        for MD cost; larger is slower) and, after :meth:`measure_md_speed`, ``md_cost`` (measured seconds per
        atom-timestep). ``summarize`` (``"median"``, the default, ``"mean"`` or ``"max"``) first aggregates the
        repetitions of each recipe (the spread of every error stays as ``<column>_spread``); ``None`` ranks single
        draws. Recipes are compared on validation errors by default; the test columns are in the rows for reporting.
        """
        if summarize is not None and summarize not in SUMMARIES:
            raise ValueError(f"summarize must be one of {SUMMARIES} or None, got {summarize!r}")
        table = self.get_table()
        if summarize is not None:
            table = summarize_repetitions(table, how=summarize)
        if "md_cost_proxy" in objectives:
            table = add_md_cost_proxy(table)
        return pareto_rows(table, list(objectives))

    def recommend(
        self,
        max_energy_rmse: float | None = None,
        max_force_rmse: float | None = None,
        min_md_speed: float | None = None,
        max_twojmax: int | None = None,
        cost: str = "dft_seconds",
        summarize: str | None = "median",
        **kwargs: str,
    ) -> Recommendation:
        """The cheapest recipe (by ``cost``, default the training set's DFT CPU seconds) meeting the targets.

        Delegates to :func:`pyiron_mlip_tradeoff.pareto.recommend`: the draws of each recipe are summarised
        (``summarize``: median by default, ``"max"`` for a recipe that meets the targets for every draw, ``None``
        to rank single draws), the recipe is chosen on its *validation* errors (meV/atom, meV/Å vs the reference
        level), and the returned :class:`~pyiron_mlip_tradeoff.pareto.Recommendation` reports its validation and
        test errors (median and spread), how many draws meet the targets on each set, and ``fit_job``, the
        ``QSnapFit`` job of a representative draw (load it with ``grid.project.load(best.fit_job)``).
        ``min_md_speed`` (atom-timesteps/s) needs the measured speeds of :meth:`measure_md_speed` (a KeyError says
        so otherwise); ``max_twojmax`` limits the model size without a measurement.
        """
        return recommend(self.get_table(), max_energy_rmse=max_energy_rmse, max_force_rmse=max_force_rmse,
                         min_md_speed=min_md_speed, max_twojmax=max_twojmax, cost=cost, summarize=summarize,
                         **kwargs)

    def _table_row(self, row: int | str | Mapping) -> Mapping:
        if isinstance(row, (int, np.integer)) and not isinstance(row, bool):
            return self.get_table().iloc[int(row)]
        if isinstance(row, str):
            table = self.get_table()
            match = table[table["job_name"] == row]
            if match.empty:
                raise ValueError(f"grid {self.job_name!r} has no point named {row!r}")
            return match.iloc[0]
        return row

    def get_fit(self, row: int | str | Mapping) -> QSnapFit:
        """The ``QSnapFit`` job of a point: ``row`` is its position in :meth:`get_table`, the row itself, or its
        ``job_name`` (e.g. ``grid.recommend(...).fit_job``).

        With ``point_storage = "jobs"`` the job exists already. With ``"table"`` it is made on the first call: the
        standalone fit of the point's training set (``fitting.fit_qsnap``, descriptors from the grid's cache) stored
        as a finished ``QSnapFit`` child of the grid, with its LAMMPS potential files; later calls load it. Its
        coefficients equal the grid's (:meth:`get_coefficients`) up to rounding — the grid folded the set in one
        pass over its draw, the refit in one go — so both predict like dense SVD least squares to 1e-6 relative
        and their errors agree to 1e-8 relative (``tests/test_fitting.py``, ``tests/test_grid_job.py``).
        """
        row = self._table_row(row)
        name = str(row["job_name"])
        if self._point_storage() != "table" or self.project.get_job_id(name) is not None:
            return self.project.load(name)
        from ..fitting import fit_qsnap

        dataset, spec = self._plan()
        key = _row_key(row)
        info = read_draw(stored_draws(self._points_dir())[_draw_of(key)])
        train = np.sort(info["subset_order"][: int(row["subset_size"])])
        tj = int(key[6])
        descriptors = self._descriptor_sources(dataset, spec).get(tj)
        if descriptors is None:
            descriptors = dataset_descriptors(dataset, tj, spec.descriptor_settings, element=spec.element,
                                              elements=spec.elements, virial=spec.stress_weight > 0,
                                              cache_dir=self._cache_dir())
        result = fit_qsnap(
            dataset, train, key[0], key[4], key[5], tj, spec.descriptor_settings, test_indices=spec.test_indices,
            rcond=spec.rcond, ridge=spec.ridge, element=spec.element, descriptors=descriptors,
            validation_indices=spec.validation_indices, reference_level=spec.reference_level,
            elements=spec.elements, stress_weight=spec.stress_weight, reference_potential=spec.reference_potential,
            reference_energies=spec.reference_energies, group_weights=spec.group_weights,
        )
        point = GridPoint(key, float(row["weight_ratio"]), key[2], key[3], key[1], result,
                          int(row["n_columns"]))
        _, entry = self._store_point(point, name, spec)
        _insert_entries(self.project.db, [entry])
        return self.project.load(name)

    def get_coefficients(self, row: int | str | Mapping) -> np.ndarray:
        """The coefficients the grid fitted for a point (``row`` as for :meth:`get_fit`), eV per descriptor unit."""
        row = self._table_row(row)
        name = str(row["job_name"])
        if self._point_storage() != "table":
            return np.asarray(self.project.load(name).output.coefficients, dtype=float)
        key = _row_key(row)
        info = read_draw(stored_draws(self._points_dir())[_draw_of(key)], coefficients=True)
        (where,) = np.flatnonzero(info["rows"]["job_name"] == name)
        return info["coefficients"][where]


def _insert_entries(db, entries: list[dict]) -> None:
    """Insert job entries into the pyiron database in one transaction (one commit instead of one per job)."""
    if not entries:
        return
    table, conn = getattr(db, "simulation_table", None), getattr(db, "conn", None)
    if table is None or conn is None:  # another database front end: one by one
        for entry in entries:
            db.add_item_dict(entry)
        return
    rows = [{key.lower(): value for key, value in db._check_chem_formula_length(dict(e)).items()} for e in entries]
    conn.execute(table.insert(), rows)
    conn.commit()
    if not getattr(db, "_keep_connection", True):
        conn.close()


def _table_in_grid_order(rows: list[dict], spec: GridSpec) -> pd.DataFrame:
    """Rows as a DataFrame in :meth:`GridSpec.keys` order."""
    table = pd.DataFrame(rows)
    order = {key: i for i, key in enumerate(spec.keys())}
    table["_order"] = [order[_row_key(row)] for row in rows]
    return table.sort_values("_order").drop(columns="_order").reset_index(drop=True)


def _row_key(row: Mapping) -> tuple:
    return (int(row["training_level"]), int(row["subset_size"]), str(row["sampling"]), int(row["repetition"]),
            float(row["energy_weight"]), float(row["force_weight"]), int(row["twojmax"]))
