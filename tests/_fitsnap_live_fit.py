"""FitSNAP 3.1.0.4 run live on a subset of a FitSNAP example (test-side helper).

:func:`subset_input` writes a copy of a FitSNAP input whose data folder holds the first few JSON files of every
group (symlinks), with optional ``[BISPECTRUM]`` overrides; :func:`fitsnap_fit` runs FitSNAP's own pipeline on it
(JSON scraper, ``process_configs``, SVD fit, error analysis) and returns its coefficients and unweighted training
RMSEs per group. Our side reads the same input with ``read_fitsnap``.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def _parser(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(inline_comment_prefixes=("#",))
    cp.optionxform = str  # group names and keys keep their case, as FitSNAP reads them
    cp.read(path)
    return cp


def subset_input(source: Path, folder: Path, per_group: int = 2, bispectrum: Mapping | None = None,
                 sections: Mapping[str, Mapping[str, str]] | None = None) -> Path:
    """A FitSNAP input in ``folder`` fitting the first ``per_group`` JSON files (sorted) of every group; whole
    sections replaced by ``sections`` (e.g. a ``REFERENCE`` that needs a LAMMPS package we do not have)."""
    cp = _parser(source)
    data = source.parent / cp["PATH"].get("dataPath", "JSON")
    target = folder / "JSON"
    for group in cp["GROUPS"]:
        if group in ("group_sections", "group_types", "smartweights", "random_sampling", "random_seed"):
            continue
        (target / group).mkdir(parents=True, exist_ok=True)
        for file in sorted(p for p in (data / group).iterdir() if p.suffix == ".json")[:per_group]:
            os.symlink(file, target / group / file.name)
    cp["PATH"]["dataPath"] = "JSON"
    for key, value in (bispectrum or {}).items():
        cp["BISPECTRUM"][key] = str(int(value)) if isinstance(value, bool) else str(value)
    for section in ("OUTFILE", "EXTRAS", "MEMORY"):
        cp.remove_section(section)
    for section, values in (sections or {}).items():
        cp.remove_section(section)
        cp[section] = dict(values)
    path = folder / source.name
    with open(path, "w") as handle:
        cp.write(handle)
    return path


def fitsnap_fit(path: Path) -> dict:
    """FitSNAP's fit of the input at ``path`` (run in its folder).

    Returns:
        ``{"coefficients": (p,) FitSNAP's raw solution (no β_0 entries with bzeroflag 1), "rmse": {(group, kind):
        unweighted training RMSE in eV/atom, eV/Å or bar}}``.
    """
    from pyiron_mlip_tradeoff._fitsnap_compat import make_fitsnap

    cp = _parser(path)
    settings = {name: dict(cp[name]) for name in cp.sections()}
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        fs = make_fitsnap(settings)
        fs.scrape_configs()
        fs.process_configs()
        fs.solver.perform_fit()
        coefficients = np.array(fs.solver.fit, dtype=float).reshape(-1)
        fs.solver.error_analysis()
        errors = fs.solver.errors
    finally:
        os.chdir(cwd)
    table = errors.reset_index()
    rmse = {}
    for _, row in table.iterrows():
        if row.get("Weighting") == "Unweighted" and row.get("Testing", "Training") in ("Training", False):
            rmse[(row["Group"], row["Subsystem"])] = float(row["rmse"])
    return {"coefficients": coefficients, "rmse": rmse, "table": table}
