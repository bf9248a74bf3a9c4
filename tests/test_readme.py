"""The README stays true: its tour runs as written, and its comparison table holds the bundled dataset's numbers.

``test_readme_tour_runs`` executes the Python block of the README's "A short tour" section unchanged (real GPAW,
LAMMPS and pyiron database, in a temporary folder) and checks what every step produced. ``comparison_tables``
writes the "The study's numbers next to ours" tables from the package's ``dft_error_table`` on ``load_bundled()``;
when the bundled dataset changes (more levels finished), ``test_readme_comparison_matches_bundled_dataset`` fails
and prints the tables to paste into the README.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
TOUR_HEADING = "## A short tour"
COMPARISON_HEADING = "## The study's numbers next to ours"
#: the README's top-level sections, in the order the README promises
SECTION_ORDER = (
    "## What it does",
    TOUR_HEADING,
    "## The jobs",
    "## The bundled dataset",
    "## DFT with VASP on a cluster",
    COMPARISON_HEADING,
)


def _section(text: str, heading: str) -> str:
    """The text of the section under ``heading`` (up to the next heading of the same or a higher level)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line == heading or line.startswith(heading + " ")]
    assert starts, f"README.md has no section {heading!r}"
    body = []
    for line in lines[starts[0] + 1:]:
        stripped = line.lstrip("#")
        if line.startswith("#") and stripped.startswith(" ") and len(line) - len(stripped) <= level:
            break
        body.append(line)
    return "\n".join(body)


def tour_code(text: str | None = None) -> str:
    """The Python code block of the README's tour section (exactly one is expected)."""
    section = _section(README.read_text() if text is None else text, TOUR_HEADING)
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    assert len(blocks) == 1, f"the tour section should hold one python block, found {len(blocks)}"
    return blocks[0]


def test_readme_layout():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert first_block is not None and text.index(first_block.group(0)) < text.index("\n## ")
    assert "make demo" in first_block.group(1) and "make test" in first_block.group(1)
    positions = []
    for heading in SECTION_ORDER:
        match = re.search(rf"^{re.escape(heading)}\b", text, flags=re.M)
        assert match is not None, f"README.md lacks the section {heading!r}"
        positions.append(match.start())
    assert positions == sorted(positions), f"README sections out of order: {SECTION_ORDER}"
    code = tour_code(text)
    compile(code, "README.md tour", "exec")
    steps = ["pr.create.job.PrecisionLadder", "pr.create.job.LeverageSelection", "pr.create.job.TradeoffGrid",
             ".recommend(", "pr.create.job.MDSpeed"]
    where = [code.find(step) for step in steps]
    assert min(where) >= 0 and where == sorted(where), "the tour must go ladder → selection → grid → recommend → MD"
    assert len([line for line in code.splitlines() if line.strip()]) <= 30, "the tour should stay short"


SECOND_SYSTEM_HEADING = "## A second worked system: Al–Cu"


def test_readme_second_system_matches_its_notebook():
    """The README's second worked system is code a user can copy: it compiles, goes ladder → selection → grid →
    recommend → MD and then from extended XYZ to a recipe, and uses the settings of notebook 06, which runs it."""
    import json

    section = _section(README.read_text(), SECOND_SYSTEM_HEADING)
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    assert len(blocks) == 2, f"the second worked system should hold two python blocks, found {len(blocks)}"
    code = "\n".join(blocks)
    compile(code, "README.md second worked system", "exec")
    steps = ["generate_structures(", "pr.create.job.PrecisionLadder", "pr.create.job.LeverageSelection",
             "pr.create.job.TradeoffGrid", ".recommend(", "pr.create.job.MDSpeed", "LadderDataset.from_extxyz(",
             'recommend(max_energy_rmse=150, max_force_rmse=800, cost="n_train")']
    where = [code.find(step) for step in steps]
    assert min(where) >= 0 and where == sorted(where), where
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "06_your_own_system.ipynb"
    cells = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")
    shared = ['bulk("AlCu", "cesiumchloride", a=2.95)', "generate_structures(24, seed=0, max_atoms=4, crystal=crystal)",
              '("ground_state_crystal", "strained", "rattled", "vacancy", "density")',
              "[PrecisionLevel(1, None, 250.0), PrecisionLevel(2, 1.0, 300.0)]", '{"quadraticflag": 0}',
              '"twojmax": [2, 4], "subset_sizes": [3, 6],', '"weight_ratios": [1.0, 10.0, 100.0], "sampling": ["block", "random"], "repetitions": 3',
              '"max_energy_rmse": 150.0, "max_force_rmse": 800.0', 'level_key="level"', 'cost="n_train"']
    for text in shared:
        assert text in cells, f"notebook 06 no longer uses {text!r}, which the README shows"


def test_readme_tour_runs(tmp_path, monkeypatch):
    """Run the tour exactly as written in the README and check what each job left behind."""
    import numpy as np

    from pyiron_mlip_tradeoff.pareto import Recommendation

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_tour"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the bundled dataset is interim")
        exec(compile(tour_code(), str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    pr, ladder, select, grid, best, md = (namespace[k] for k in ("pr", "ladder", "select", "grid", "best", "md"))
    try:
        assert Path(pr.path).resolve().is_relative_to(tmp_path.resolve())
        jobs = pr.job_table()
        for job in (ladder, select, grid, md):
            assert job.status.finished, f"{job.job_name}: {job.status}"
            assert job.job_name in set(jobs.job)

        n_levels, n_structures = len(ladder.input.levels), len(ladder.input.structures)
        energy = np.asarray(ladder.output.energy)
        assert energy.shape == (n_levels, n_structures)
        assert not np.asarray(ladder.output.failed).any() and np.isfinite(energy).all()
        assert (np.asarray(ladder.output.core_seconds) > 0).all()

        for size in select.input.sizes:
            chosen = select.get_selection(int(size))
            assert len(chosen) == size == len(set(chosen.tolist()))
            assert chosen.max() < select.output.n_configs

        table = grid.get_table()
        assert len(table) == grid.output.n_points > 0
        assert np.isfinite(table[["test_energy_rmse", "test_force_rmse", "dft_seconds"]].to_numpy()).all()
        assert isinstance(best, Recommendation)
        # what the tour prints: a recipe that meets its targets (median over its three draws, validation set) ...
        assert best.targets_met, best.message
        assert best.message.startswith("Cheapest recipe meeting all targets")
        assert best.n_draws == 3 and best.fit_job == best.row["job_name"] in set(table.job_name)
        v, t = best.validation_errors, best.test_errors
        assert v["energy_rmse"]["median"] <= best.targets["max_energy_rmse"]
        assert v["force_rmse"]["median"] <= best.targets["max_force_rmse"]
        # ... whose test errors, reported in the message, are the medians over the same draws
        assert f"energy {t['energy_rmse']['median']:.4g} meV/atom" in best.message
        draws = table[(table.training_level == best.training_level) & (table.subset_size == best.subset_size)
                      & (table.sampling == best.sampling) & (table.energy_weight == best.energy_weight)]
        assert t["force_rmse"]["median"] == np.median(draws.test_force_rmse)

        # ... and a model that runs stable MD, as the last line prints
        assert md.output.lammps_job in set(jobs.job)
        assert md.output.twojmax == best.twojmax
        assert md.output.atom_steps_per_second > 0
        assert isinstance(md.output.stable, (bool, np.bool_)) and md.output.stable, md.output.stability_message
    finally:
        pr.remove(enable=True, enforce=True)


# -- the comparison table ---------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    return "pending" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def comparison_tables() -> str:
    """The README's tables of the study's DFT errors and cost per level next to ours on the bundled dataset."""
    from pyiron_mlip_tradeoff.cli import STUDY_SECONDS, STUDY_TABLE3
    from pyiron_mlip_tradeoff.dataset import load_bundled
    from pyiron_mlip_tradeoff.dft_errors import dft_error_table
    from pyiron_mlip_tradeoff.reference_level import most_precise_level

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the bundled dataset is interim")
        dataset = load_bundled()
    dataset = dataset.drop_failed()
    ours = dft_error_table(dataset)
    top = most_precise_level(dataset)
    assert ours.attrs["reference_level"] == top
    interim = bool(dataset.metadata.get("pending_levels"))
    mark = "*" if interim else ""  # interim: every error of ours changes once the top levels are in
    columns = ("energy_rmse", "energy_rmse_bulk", "energy_rmse_mean", "force_rmse")
    names = ("E unshifted", "E bulk-shifted", "E mean-shifted", "F")
    head = "| level | " + " | ".join(f"{name}: study | ours{mark}" for name in names) + " |"
    lines = [f"Errors against the reference level (study: level 6; ours: level {top}, the most precise by its settings); "
             "energies meV/atom, forces meV/Å.",
             "", head, "|---" * (1 + 2 * len(names)) + "|"]
    for level in range(1, 7):
        study = STUDY_TABLE3.get(level)
        cells = [str(level)]
        for k, column in enumerate(columns):
            cells.append("reference" if level == 6 else _number(study[k]))
            if level == top:
                cells.append("reference")
            else:
                cells.append(_number(float(ours.loc[level, column])) if level in ours.index else "pending")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| level | study: s per configuration (VASP, A100 GPU, ~50 atoms) | ours: CPU s per configuration "
              f"(GPAW, 1 core, {dataset.n_atoms.mean():.1f} atoms on average) |", "|---|---|---|"]
    for level in range(1, 7):
        mine = float(ours.loc[level, "core_seconds_per_config"]) if level in ours.index else None
        lines.append(f"| {level} | {_number(STUDY_SECONDS[level])} | {_number(mine)} |")
    return "\n".join(lines)


def test_readme_comparison_matches_bundled_dataset():
    expected = comparison_tables()
    section = _section(README.read_text(), COMPARISON_HEADING)
    missing = [line for line in expected.splitlines() if line.strip() and line not in section]
    assert not missing, (
        "the README's comparison tables differ from the bundled dataset (it has changed?); "
        f"replace them with:\n\n{expected}\n"
    )
