"""pyiron job ``RecipePlanner``: find the cheapest fitting recipe from a small pilot, then compute only that.

>>> plan = pr.create.job.RecipePlanner("plan")
>>> plan.input.structures = pool                 # candidate structures, no DFT yet
>>> plan.input.levels = [1, 2, 3]                # the precision ladder (the most precise one is the reference)
>>> plan.input.max_energy_rmse = 20.0            # meV/atom against the reference level
>>> plan.input.max_force_rmse = 300.0            # meV/Å
>>> plan.input.budget_seconds = 3600.0           # optional: DFT CPU seconds the planner may spend in all
>>> plan.run()
>>> plan.output.recipe                           # level, training-set size, weights, 2Jmax
>>> plan.output.predicted_energy_rmse, plan.output.achieved_energy_rmse
>>> plan.get_fit()                               # the QSnapFit job of the recommended recipe (LAMMPS files)

The planning itself is :class:`pyiron_mlip_tradeoff.planner.Planner` (no pyiron in it): it ranks the pool by
leverage, asks for a pilot at every level, fits a cost model and learning curves, recommends a recipe and asks for
exactly the calculations that recipe needs, plus a validation set at the reference level. This job answers every
request of the planner with a ``PrecisionLadder`` child job (``<name>_<k>_<stage>_L<level>``), all of them sharing
one store of finished calculations (``input.unit_store``, by default ``<working directory>/units``), so a
configuration computed once at a level is never computed again, and ends with one ``QSnapFit`` child
(``<name>_fit``) of the recommended recipe.

Resuming: the planner's requests depend only on its input and on the results it was given, so ``plan.run()`` on a
planner whose process died asks the same questions again; finished children answer them from the database, an
unfinished child resumes its own calculations (see ``PrecisionLadder``), and only what is missing is computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..dataset import LadderDataset
from ..precision import PrecisionLevel
from .base import StructureInputJob, mark_finished, to_builtin

__all__ = ["RecipePlanner"]

#: statuses from which ``plan.run()`` continues an interrupted planner instead of refusing
_RESUMABLE = ("running", "aborted", "collect", "suspended", "refresh", "busy")


class RecipePlanner(StructureInputJob):
    """Plan the cheapest recipe for accuracy targets from a pilot, then compute only it (see the module docstring).

    Input (``job.input``):
        structures: the candidate pool (ASE/pyiron structures; no DFT needed).
        levels: the ladder, level numbers of the reference ladder (1–6) or :class:`PrecisionLevel` objects; at
            least two.
        reference_level: the level the errors are measured against (default: the most precise by its settings).
        engine, engine_options, cores: as ``PrecisionLadder`` (default GPAW, one calculation per core).
        max_energy_rmse: target energy RMSE, meV/atom, against the reference level (> 0).
        max_force_rmse: target force RMSE, meV/Å (> 0).
        min_md_speed: optional target MD speed, atom-timesteps/s (measured with ``MDSpeed`` probes per 2Jmax).
        max_twojmax: optional largest 2Jmax.
        budget_seconds: optional DFT budget, CPU seconds, for everything the planner computes.
        validation_size: configurations computed at the reference level to validate the recipe, the pilot's
            included (default 6: the pilot itself).
        pilot_size: configurations of the pilot at every level (default 6, as the planning core).
        twojmax_values: the 2Jmax the planner considers.
        element / elements: the model's element(s) (as ``QSnapFit``).
        seed: integer seed of every random choice.
        planner_options: further keywords of :class:`~pyiron_mlip_tradeoff.planner.Planner`.
        unit_store: folder of finished calculations shared by the children (``None``: ``<working dir>/units``).

    Output (``job.output``):
        recipe (dict: training_level, n_train, energy_weight, force_weight, twojmax), train_indices,
        validation_indices, predicted_energy_rmse / predicted_force_rmse (meV/atom, meV/Å) with their
        ``_spread``, achieved_energy_rmse / achieved_force_rmse (validation set, vs the reference level),
        predicted_seconds (DFT CPU s of the recipe), spent_seconds (all DFT the planner spent, CPU s),
        spent_by_stage (dict), saving_vs_reference (predicted factor against computing the whole pool at the
        reference level), targets_met (bool), messages (list of str), learning_curves (DataFrame of the pilot
        fits and the fitted curves), cost_model (dict), requests (list of the child job names in order), fit_job.
    """

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.structures = []
        self.input.levels = [1, 2, 3, 4, 5, 6]
        self.input.reference_level = None
        self.input.engine = "gpaw"
        self.input.engine_options = {}
        self.input.cores = None
        self.input.max_energy_rmse = None
        self.input.max_force_rmse = None
        self.input.min_md_speed = None
        self.input.max_twojmax = None
        self.input.budget_seconds = None
        self.input.validation_size = 6
        self.input.pilot_size = 6
        self.input.twojmax_values = [4, 6]
        self.input.element = None
        self.input.elements = None
        self.input.seed = 0
        self.input.planner_options = {}
        self.input.unit_store = None

    # -- input -------------------------------------------------------------------------------------------------
    def _levels(self) -> list[PrecisionLevel]:
        from ..ladder import resolve_levels

        levels = self.input.levels
        if isinstance(levels, (int, np.integer, PrecisionLevel)):
            levels = [levels]
        levels = [PrecisionLevel.from_dict(lv) if isinstance(lv, Mapping) else lv for lv in to_builtin(levels)]
        return list(resolve_levels(levels))

    def _elements(self) -> list[str] | None:
        elements = to_builtin(self.input.get("elements"))
        if elements:
            return [str(e) for e in elements]
        element = self.input.get("element")
        if element:
            return [str(element)]
        symbols = sorted({s for atoms in self.input.structures for s in atoms.get_chemical_symbols()})
        return symbols or None

    def _planner(self, md_speeds: Mapping[int, float] | None = None):
        """The planning core for this input (raises on bad input, before any DFT is computed)."""
        from ..planner import Planner, PlannerTargets

        inp = self.input
        targets = PlannerTargets(
            max_energy_rmse=inp.max_energy_rmse, max_force_rmse=inp.max_force_rmse,
            min_md_speed=inp.min_md_speed, max_twojmax=inp.max_twojmax,
        )
        if md_speeds is None and targets.min_md_speed is not None:  # validation only: speeds are measured later
            md_speeds = dict.fromkeys((int(t) for t in to_builtin(inp.twojmax_values)), float(np.finfo(float).max))
        options = dict(to_builtin(inp.planner_options) or {})
        options.setdefault("cost_prior", self._cost_prior())
        elements = self._elements()
        model = {"elements": elements} if elements and len(elements) > 1 else {"element": (elements or ["Be"])[0]}
        return Planner(
            list(inp.structures), self._levels(), targets, reference_level=inp.reference_level,
            budget_seconds=inp.budget_seconds, validation_size=int(inp.validation_size),
            pilot_size=int(inp.pilot_size), twojmax_values=tuple(int(t) for t in to_builtin(inp.twojmax_values)),
            seed=int(inp.seed), md_speeds=md_speeds, **model, **options,
        )

    def _cost_prior(self):
        """A cost model of the package's own GPAW timings (the bundled Be ladder) when the ladder is made of the
        reference ladder's levels and the engine is GPAW, else ``None``.

        It prices the cheapest possible pilot before anything is computed, so a budget that cannot pay even that is
        refused at once. Be has few electrons, so for other elements the prior underestimates: it never refuses a
        budget that could pay the pilot.
        """
        from ..cost_model import CostModel
        from ..dataset import load_bundled

        if self.input.engine != "gpaw":
            return None
        bundled = load_bundled(warn_interim=False)
        if not all(bundled.level_settings.get(lv.level) == lv for lv in self._levels()):
            return None
        return CostModel.from_dataset(bundled)

    def validate_ready_to_run(self) -> None:
        """Check all input (targets, budget, pool size, ladder, engine options) before anything is saved."""
        from ..ladder import validate_ladder_input

        structures = list(self.input.structures or [])
        validate_ladder_input(structures, self._levels(), self.input.engine,
                              dict(to_builtin(self.input.engine_options) or {}), self._cores())
        self._planner()
        if self.input.min_md_speed is not None and len(self._elements() or []) > 1:
            raise ValueError("min_md_speed is measured with one-element probe models; for a model of several "
                             "elements limit the model size with max_twojmax instead")
        self.input.levels = [lv.to_dict() for lv in self._levels()]

    def _cores(self) -> int:
        return int(self.server.cores or 1) if self.input.cores is None else int(self.input.cores)

    def _unit_store(self) -> Path:
        store = self.input.get("unit_store")
        return Path(store).resolve() if store else Path(self.working_directory) / "units"

    # -- running -----------------------------------------------------------------------------------------------
    def run(self, delete_existing_job: bool = False, repair: bool = False, debug: bool = False,
            run_mode: str | None = None, run_again: bool = False) -> None:
        """Run the planner; on a planner whose earlier process died, resume it (see the module docstring)."""
        if not (delete_existing_job or run_again) and self.status.string in _RESUMABLE:
            self.status.created = True
        return super().run(delete_existing_job=delete_existing_job, repair=repair, debug=debug,
                           run_mode=run_mode, run_again=run_again)

    def run_static(self) -> None:
        self.status.running = True
        Path(self.working_directory).mkdir(parents=True, exist_ok=True)
        md_speeds = self._md_speeds() if self.input.min_md_speed is not None else None
        planner = self._planner(md_speeds)
        names = []
        while (request := planner.next_request()) is not None:
            name = f"{self.job_name}_{len(names):03d}_{request.stage}_L{request.level}"
            planner.tell(request, self._answer(name, request))
            names.append(name)
        report = planner.report()
        fit = self._final_fit(report, planner)
        self._store_output(report, names, fit)
        mark_finished(self)

    def _answer(self, name: str, request) -> LadderDataset:
        """The DFT results of one request, from a finished ``PrecisionLadder`` child or by running it."""
        child = self.project.create.job.PrecisionLadder(name)
        if not child.status.finished:
            if child.status.initialized:
                level = next(lv for lv in self._levels() if lv.level == request.level)
                child.input.structures = [self.input.structures[i] for i in request.indices]
                child.input.levels = [level]
                child.input.engine = self.input.engine
                child.input.engine_options = dict(to_builtin(self.input.engine_options) or {})
                child.input.cores = self._cores()
                child.input.unit_store = str(self._unit_store())
                child.master_id = self.job_id
            child.run()
        return child.to_dataset()

    def _md_speeds(self) -> dict[int, float]:
        """MD speed (atom-timesteps/s) of a qSNAP model of each 2Jmax the planner considers, from ``MDSpeed``
        probes on the pool's largest structure repeated to ~2000 atoms (reused across runs by name)."""
        from ..descriptors import n_columns, resolve_settings

        options = dict(to_builtin(self.input.planner_options) or {})
        settings = dict(options.get("descriptor_settings") or {})
        structure = max(self.input.structures, key=len)
        speeds = {}
        for tj in sorted({int(t) for t in to_builtin(self.input.twojmax_values)}):
            resolved = resolve_settings(tj, settings)
            p = n_columns(tj, int(resolved["quadraticflag"]), int(resolved["bzeroflag"]))
            job = self.project.create.job.MDSpeed(f"{self.job_name}_md_2j{tj}")
            if not job.status.finished:
                job.input.coefficients = np.full(p, 1e-10)
                job.input.twojmax = tj
                job.input.descriptor_settings = settings
                job.input.structure = structure
                job.input.n_atoms = 2000
                job.input.steps = 100
                job.input.nvt_steps = 0
                job.input.nve_steps = 0
                job.master_id = self.job_id
                job.run()
            speeds[tj] = float(job.output.atom_steps_per_second)
        return speeds

    def _final_fit(self, report, planner):
        """The chosen recipe as a ``QSnapFit`` child (``<name>_fit``): its training configurations at its level and
        the validation set at the reference level, each only at the level computed; ``None`` without a recipe."""
        recipe = report.recipe
        if recipe is None:
            return None
        fit = self.project.create.job.QSnapFit(f"{self.job_name}_fit")
        if fit.status.finished:
            return fit
        train = [int(i) for i in recipe.indices]
        validation = [int(i) for i in report.validation_indices if i not in set(train)]
        wanted = {recipe.level: train, report.reference_level: validation}
        dataset, positions = planner.computed_dataset(wanted)
        elements = self._elements()
        fit.input.dataset = dataset
        fit.input.training_level = int(recipe.level)
        fit.input.reference_level = int(report.reference_level)
        fit.input.train_indices = [positions[i] for i in train]
        ref = dataset.level_index(report.reference_level)
        fit.input.validation_indices = [positions[i] for i in validation
                                        if positions[i] >= 0 and not dataset.failed[ref, positions[i]]]
        fit.input.test_indices = []
        fit.input.energy_weight = float(recipe.energy_weight)
        fit.input.force_weight = 1.0
        fit.input.twojmax = int(recipe.twojmax)
        if elements:
            fit.input.elements = elements
        settings = dict(to_builtin(self.input.planner_options) or {}).get("descriptor_settings")
        if settings:
            fit.input.descriptor_settings = settings
        fit.master_id = self.job_id
        fit.run()
        return fit

    def _store_output(self, report, names: list[str], fit) -> None:
        out = self.output
        recipe = report.recipe
        out.finished_plan = bool(report.finished)
        out.targets_met = bool(report.targets_met)
        out.recipe = {} if recipe is None else {k: v for k, v in recipe.to_dict().items() if k != "indices"}
        out.train_indices = np.array([] if recipe is None else recipe.indices, dtype=np.int64)
        out.validation_indices = np.array(report.validation_indices, dtype=np.int64)
        nan = float("nan")
        out.predicted_energy_rmse = nan if recipe is None else float(recipe.predicted_energy_rmse)
        out.predicted_force_rmse = nan if recipe is None else float(recipe.predicted_force_rmse)
        out.achieved_energy_rmse = nan if recipe is None else float(recipe.validation_energy_rmse)
        out.achieved_force_rmse = nan if recipe is None else float(recipe.validation_force_rmse)
        out.spent_seconds = float(report.total_seconds)
        out.spent_by_stage = {k: float(v) for k, v in report.spent_seconds.items()}
        out.whole_pool_reference_seconds = float(report.whole_pool_reference_seconds)
        out.predicted_saving = float(report.predicted_saving)
        out.dft_errors = {str(lv): list(v) for lv, v in report.dft_errors.items()}
        out.cost_model = {} if report.cost_model is None else report.cost_model.to_dict()
        out.messages = list(report.messages)
        out.requests = names
        out.fit_job = fit.job_name if fit is not None else ""

    # -- results -----------------------------------------------------------------------------------------------
    def get_fit(self):
        """The ``QSnapFit`` job of the recommended recipe (its ``get_potential()`` gives the LAMMPS files)."""
        if not self.status.finished:
            raise RuntimeError(f"planner {self.job_name!r} has status {self.status}; run it first")
        name = self.output.get("fit_job")
        if not name:
            raise RuntimeError(f"planner {self.job_name!r} found no recipe: {list(self.output.messages)}")
        return self.project.load(name)

