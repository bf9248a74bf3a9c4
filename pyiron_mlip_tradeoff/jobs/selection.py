"""pyiron job ``LeverageSelection``: rank a pool of structures by qSNAP leverage and pick training subsets.

>>> job = pr.create.job.LeverageSelection("select")
>>> job.input.structures = structures          # or: job.input.dataset = "ladder.h5" (a LadderDataset file)
>>> job.input.twojmax = 6
>>> job.input.method = "block"                 # "energy", "block" or "random"
>>> job.input.sizes = [10, 50, 100]
>>> job.input.n_repetitions = 50
>>> job.run()
>>> job.output.scores                          # leverage per configuration
>>> job.get_selection(50, repetition=3)        # configuration indices (of the dataset / structure list)

Only descriptors enter the scores; no DFT label is used (a ``dataset`` contributes its structures only, and the
failed-calculation mask for its split). With a ``dataset`` only its *training pool* is ranked — the pool of the
seeded training/validation/test split that ``QSnapFit`` and ``TradeoffGrid`` use (``split_seed``,
``split_fractions``, default 50/25/25) — so a selection never takes a configuration that later tests the fit.
The descriptors are cached as an HDF5 :class:`~pyiron_mlip_tradeoff.descriptors.DescriptorStore` (in
``input.cache_dir`` or the job's working directory), so later steps can read them by configuration.

In ``pr.create_table()`` the results are at ``job.content["storage/output/<name>"]`` (e.g. ``scores``, ``rank``)
and the input at ``job.content["storage/input/<name>"]``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import numpy as np

from ..descriptors import DescriptorStore, resolve_settings, validate_structures
from ..fitting import DEFAULT_SPLIT, check_fractions, check_indices, resolve_split, split_configurations
from ..leverage import DEFAULT_LEVERAGE_ENERGY_WEIGHT, check_ridge, leverage_scores, ranking, repetition_rng
from .base import StructureInputJob, mark_finished, to_builtin

__all__ = ["LeverageSelection"]

SCORE_METHODS = ("energy", "block", "random")
SAMPLING = ("proportional", "top")


class LeverageSelection(StructureInputJob):
    """Leverage scores of a structure pool and subsets of every requested size and repetition.

    Input (``job.input``):
        structures: list of ASE/pyiron structures (periodic), or ``None`` when ``dataset`` is given.
        dataset: a :class:`~pyiron_mlip_tradeoff.dataset.LadderDataset` file, ``"bundled"``, or the name/id of a
            ``PrecisionLadder`` job; its training pool is ranked (its labels are never read).
        pool: configuration indices to rank (default: with ``dataset`` the training pool of the split, with
            ``structures`` all of them). A given pool carries no split: ``QSnapFit`` then uses its own.
        split_seed, split_fractions: the seeded (training pool, validation, test) split of a ``dataset``
            (default seed 0 and 50/25/25, as ``QSnapFit`` and ``TradeoffGrid``: over the configurations whose DFT
            succeeded at every level; a dataset without any labels yet is split over all its configurations).
        element: the element of the descriptors (default ``"Be"``); elements: the elements of a model of several
            (in order, LAMMPS types 1, 2, …; overrides ``element``; every species of the structures must be listed).
        twojmax: qSNAP band limit 2Jmax (4, 6, 8, 10 in the study).
        descriptor_settings: FitSNAP ``[BISPECTRUM]`` settings overriding the study's defaults.
        method: ``"energy"`` (energy-row leverage), ``"block"`` (energy + force rows) or ``"random"`` (uniform).
        sampling: ``"proportional"`` (without replacement, probability ∝ leverage; the study) or ``"top"``
            (deterministic highest leverage first; every repetition is then the same). Ignored for ``"random"``.
        sizes: subset sizes, each in 1..pool size.
        n_repetitions: independent draws per size (the study: 50).
        seed: integer seed; repetition r uses the stream (seed, r), so runs are repeatable.
        energy_weight: w_E / w_F on the energy rows in block leverage (default 150, the study's; the same default
            as ``TradeoffGrid.input.leverage_energy_weight``).
        rcond: relative singular-value cut-off of the rank (``None``: max(rows, p)·eps).
        leverage_ridge: λ / s_max² > 0 to use ridge leverage; ``None`` (default): plain leverage, or ridge leverage
            with λ = 1e-8 s_max² where the pool's rows are all independent (e.g. energy leverage of fewer
            configurations than qSNAP columns), where plain leverage would be 1 for every configuration.
        cache_dir: folder of the descriptor cache (``None``: the job's working directory).

    Output (``job.output``):
        pool_indices (the ranked configurations), scores (per pool configuration, in ``pool_indices`` order; for
        ``"random"`` the uniform probability 1/n), energy_part, rank, leverage_ridge (λ / s_max² used, NaN for
        plain leverage), n_columns, n_configs (of the dataset / structure list), n_pool, sizes, rankings
        (n_repetitions × n_pool configuration indices; subset = prefix), selections (``size_<k>`` →
        n_repetitions × k indices), validation_indices and test_indices (of the dataset's split; empty for a
        structure list), descriptor_seconds, leverage_seconds, descriptor_file.
    """

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.structures = None
        self.input.dataset = None
        self.input.element = "Be"
        self.input.elements = None
        self.input.twojmax = 6
        self.input.descriptor_settings = {}
        self.input.method = "block"
        self.input.sampling = "proportional"
        self.input.sizes = [10]
        self.input.n_repetitions = 1
        self.input.seed = 0
        self.input.energy_weight = DEFAULT_LEVERAGE_ENERGY_WEIGHT
        self.input.rcond = None
        self.input.leverage_ridge = None
        self.input.pool = None
        self.input.split_seed = 0
        self.input.split_fractions = list(DEFAULT_SPLIT)
        self.input.cache_dir = None

    # -- input -----------------------------------------------------------------------------------------------
    def _source(self) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
        """All structures, and the pool, validation and test indices into them."""
        structures, dataset = self.input.get("structures"), self.input.get("dataset")
        has_structures = structures is not None and not (isinstance(structures, (list, tuple)) and not structures)
        if has_structures == (dataset is not None):
            raise ValueError("give exactly one of input.structures (a list of structures) and input.dataset (a path)")
        pool = to_builtin(self.input.get("pool"))
        empty = np.zeros(0, dtype=np.int64)
        if dataset is not None:
            from .fit import load_dataset

            data = load_dataset(dataset, self.project)
            fractions = check_fractions(to_builtin(self.input.get("split_fractions")) or DEFAULT_SPLIT)
            seed = self.input.get("split_seed")
            seed = 0 if seed is None else seed
            if pool is not None:  # a given pool: no split is known, QSnapFit then uses its own
                return list(data.structures), check_indices(pool, data.n_configs, "input.pool"), empty, empty
            if data.failed.any(axis=0).all():
                # no labels yet (a pool planned before its DFT): split all configurations, as a complete dataset is
                split = split_configurations(data.n_configs, fractions, int(seed))
            else:
                split = resolve_split(data, None, None, fractions, seed, prefix="input.")
            return list(data.structures), *split
        structures = list(structures)
        pool_indices = (np.arange(len(structures), dtype=np.int64) if pool is None
                        else check_indices(pool, len(structures), "input.pool"))
        return structures, pool_indices, empty, empty

    def _pool(self) -> list:
        structures, pool, _, _ = self._source()
        return [structures[i] for i in pool]

    def _element_kw(self) -> dict:
        """``{"elements": [...]}`` for a model of several elements, else ``{"element": symbol}``."""
        elements = to_builtin(self.input.get("elements"))
        if elements:
            return {"elements": list(elements)}
        return {"element": self.input.element}

    def _settings(self) -> dict:
        settings = to_builtin(self.input.get("descriptor_settings")) or {}
        if not isinstance(settings, Mapping):
            raise TypeError(f"input.descriptor_settings must be a dict, got {type(settings).__name__}")
        return dict(settings)

    def _sizes(self) -> list[int]:
        sizes = to_builtin(self.input.sizes)
        sizes = [sizes] if isinstance(sizes, (int, np.integer)) else list(np.asarray(sizes).reshape(-1))
        if not sizes:
            raise ValueError("input.sizes is empty: give at least one subset size")
        out = []
        for size in sizes:
            if isinstance(size, (bool, np.bool_)) or not float(size).is_integer():
                raise ValueError(f"subset sizes must be integers, got {size!r}")
            out.append(int(size))
        return out

    def validate_ready_to_run(self) -> None:
        """Check all input (raises ``ValueError``/``TypeError``/``FileNotFoundError``) before anything is computed."""
        method = self.input.method
        if method not in SCORE_METHODS:
            raise ValueError(f"input.method must be one of {SCORE_METHODS}, got {method!r}")
        if self.input.sampling not in SAMPLING:
            raise ValueError(f"input.sampling must be one of {SAMPLING}, got {self.input.sampling!r}")
        pool = validate_structures(self._pool(), **self._element_kw())
        kw = self._element_kw()
        resolve_settings(self.input.twojmax, self._settings(), len(kw["elements"]) if "elements" in kw else 1)
        n = len(pool)
        for size in self._sizes():
            if size < 1 or size > n:
                raise ValueError(f"subset size {size} is outside 1..{n} (the pool has {n} configurations)")
        reps = self.input.n_repetitions
        if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
            raise ValueError(f"input.n_repetitions must be an integer ≥ 1, got {reps!r}")
        seed = self.input.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"input.seed must be a non-negative integer or None, got {seed!r}")
        weight = self.input.energy_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) or not weight > 0:
            raise ValueError(f"input.energy_weight must be a positive number, got {weight!r}")
        rcond = self.input.rcond
        if rcond is not None and not (isinstance(rcond, (int, float, np.number)) and 0 <= rcond < 1):
            raise ValueError(f"input.rcond must be None or in [0, 1), got {rcond!r}")
        ridge = self.input.get("leverage_ridge")
        if ridge is not None:
            check_ridge(ridge)

    # -- run -------------------------------------------------------------------------------------------------
    def run_static(self) -> None:
        self.status.running = True
        self.validate_ready_to_run()
        all_structures, pool, validation, test = self._source()
        n = pool.size
        method = self.input.method
        out = self.output
        out.leverage_ridge = float("nan")
        if method == "random":
            scores = np.full(n, 1.0 / n)
            out.energy_part = scores.copy()
            out.rank = 0
            out.n_columns = 0
            out.descriptor_seconds = 0.0
            out.leverage_seconds = 0.0
            out.descriptor_file = ""
            order_method = "uniform"
        else:
            cache = self.input.cache_dir or self.working_directory
            os.makedirs(cache, exist_ok=True)
            start = time.perf_counter()
            store = DescriptorStore.open_or_compute(
                cache, all_structures, int(self.input.twojmax), **self._element_kw(), **self._settings()
            )
            out.descriptor_seconds = time.perf_counter() - start
            start = time.perf_counter()
            use_forces = method == "block"
            result = leverage_scores(lambda: store.iter_blocks(pool, forces=use_forces), method,
                                     float(self.input.energy_weight), self.input.rcond,
                                     ridge=self.input.get("leverage_ridge"))
            out.leverage_seconds = time.perf_counter() - start
            scores = result.scores
            out.energy_part = result.energy_part
            out.rank = int(result.rank)
            out.leverage_ridge = float("nan") if result.ridge is None else float(result.ridge)
            out.n_columns = int(store.n_columns)
            out.descriptor_file = str(store.path)
            order_method = self.input.sampling
        seed = None if self.input.seed is None else int(self.input.seed)
        rankings = np.array(
            [pool[ranking(scores, order_method, repetition_rng(seed, r))]
             for r in range(int(self.input.n_repetitions))],
            dtype=np.int64,
        )
        sizes = self._sizes()
        out.scores = np.asarray(scores, dtype=float)
        out.pool_indices = pool
        out.validation_indices = validation
        out.test_indices = test
        out.n_configs = len(all_structures)
        out.n_pool = int(n)
        out.sizes = np.array(sizes, dtype=np.int64)
        out.rankings = rankings
        out.selections = {f"size_{k}": rankings[:, :k].copy() for k in sizes}
        mark_finished(self)

    # -- results ---------------------------------------------------------------------------------------------
    def get_selection(self, size: int, repetition: int = 0) -> np.ndarray:
        """Configuration indices (of the dataset or structure list) of the size-``size`` subset of repetition
        ``repetition``; all from the training pool (``output.pool_indices``).

        Any size up to the pool size is answered (subsets are prefixes of the repetition's ranking).
        """
        rankings = self.output.get("rankings")
        if rankings is None:
            raise ValueError(f"job {self.job_name!r} has no output yet (status: {self.status})")
        rankings = np.asarray(rankings)
        if not 0 <= repetition < len(rankings):
            raise IndexError(f"repetition {repetition} is outside 0..{len(rankings) - 1}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= rankings.shape[1]:
            raise ValueError(f"size must be an integer in 1..{rankings.shape[1]}, got {size!r}")
        return rankings[repetition, : int(size)].copy()
