"""VASP run folders (OUTCARs of static runs, relaxations or MD) → a one-level ``LadderDataset``.

Every completed ionic step of every OUTCAR is a configuration, parsed with pyiron's VASP OUTCAR parser
(``vaspparser``, the parser pyiron_atomistics' ``Vasp`` job uses): energy = the free energy TOTEN (consistent with
the forces; FitSNAP's VASP scraper takes the energy without entropy unless ``vasp_use_TOTEN``), forces eV/Å,
stress from the ``in kB`` line converted to eV/Å³ and to the ASE sign (VASP's is pressure-positive). Species come
from the OUTCAR header (``VRHFIN`` and ``ions per type``), so no POTCAR is needed.

The group of a configuration is the first folder below ``root`` (FitSNAP's layout: ``root/<group>/<runs...>/OUTCAR``).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms

from ..dataset import DatasetError, LadderDataset
from ._assemble import Frame, assemble, check_results

__all__ = ["read_vasp_runs", "read_outcar", "VASP_INPUT_FILES"]

#: files that make a folder a VASP run folder (one without an OUTCAR is reported)
VASP_INPUT_FILES = ("INCAR", "POSCAR", "KPOINTS", "CONTCAR")

_ITERATION = re.compile(r"-+\s*Iteration\s+(\d+)\s*\(")


def _species(lines: list[str], path: Path) -> list[str]:
    symbols, counts = [], None
    for line in lines:
        if "VRHFIN" in line:
            symbols.append(line.split("=", 1)[1].split(":", 1)[0].strip())
        elif "ions per type" in line and counts is None:
            counts = [int(v) for v in line.split("=", 1)[1].split()]
        if counts is not None and len(symbols) >= len(counts):
            break
    if counts is None or len(symbols) < len(counts):
        raise DatasetError(f"{path}: no species in the OUTCAR header (VRHFIN / ions per type lines)")
    return [s for s, n in zip(symbols, counts, strict=False) for _ in range(n)]


def read_outcar(path: str | os.PathLike) -> tuple[list[Atoms], np.ndarray, list[np.ndarray], list[np.ndarray], int]:
    """Completed ionic steps of one OUTCAR: (structures, free energies eV, forces eV/Å, ASE-sign stress eV/Å³ Voigt,
    number of started but unfinished ionic steps left out)."""
    from vaspparser.vasp.parser.outcar import Outcar

    path = Path(path)
    with open(path, errors="ignore") as fh:
        lines = fh.readlines()
    symbols = _species(lines, path)
    parser = Outcar()
    try:
        energies = np.asarray(parser.get_total_energies(lines=lines))  # "free  energy   TOTEN"
        forces = np.asarray(parser.get_forces(lines=lines, n_atoms=len(symbols)))
        positions = np.asarray(parser.get_positions(lines=lines, n_atoms=len(symbols)))
        cells = np.asarray(parser.get_cells(lines=lines))
        stresses = np.asarray(parser.get_stresses(lines=lines, si_unit=False))  # kB, VASP sign
    except (ValueError, IndexError) as err:
        raise DatasetError(f"{path}: pyiron's OUTCAR parser failed ({type(err).__name__}: {err})") from err
    n_complete = min(len(energies), len(forces), len(positions), len(cells), len(stresses) if len(stresses) else 10**9)
    started = max((int(m.group(1)) for line in lines if (m := _ITERATION.match(line.strip()))), default=0)
    dropped = max(started, len(energies), len(forces), len(positions)) - n_complete
    kbar_to_ev_a3 = 0.1 / 160.21766208  # kB → GPa → eV/Å³ (ASE's constant, CODATA 2014)
    structures, stress_list = [], []
    for k in range(n_complete):
        structures.append(Atoms(symbols=symbols, positions=positions[k], cell=cells[k], pbc=True))
        if len(stresses):
            s = -stresses[k] * kbar_to_ev_a3
            stress_list.append(s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]])
        else:
            stress_list.append(None)
    return structures, energies[:n_complete], list(forces[:n_complete]), stress_list, dropped


def read_vasp_runs(root: str | os.PathLike, level: int = 1) -> LadderDataset:
    """All OUTCARs below ``root`` as one level; group = first folder below ``root``.

    ``metadata["files"]`` names each configuration (``<relative OUTCAR path>#<ionic step>``);
    ``metadata["folders_without_outcar"]`` lists run folders (holding INCAR/POSCAR/KPOINTS/CONTCAR) without an
    OUTCAR, which are also reported in a warning; an OUTCAR whose last ionic step did not finish loses that step
    with a warning naming the file.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no VASP data folder at {root}")
    outcars = sorted(p for p in root.rglob("OUTCAR") if p.is_file())
    run_folders = sorted({p.parent for name in VASP_INPUT_FILES for p in root.rglob(name)})
    without = [str(f.relative_to(root)) for f in run_folders if not (f / "OUTCAR").is_file()]
    if without:
        warnings.warn(f"{len(without)} VASP run folder(s) below {root} have no OUTCAR and are not imported: "
                      f"{without}", stacklevel=2)
    if not outcars:
        raise DatasetError(f"no OUTCAR below {root}")
    frames, files = [], []
    for outcar in outcars:
        relative = outcar.relative_to(root)
        group = relative.parts[0] if len(relative.parts) > 1 else "default"
        structures, energies, forces, stresses, dropped = read_outcar(outcar)
        if dropped:
            warnings.warn(f"{outcar}: {dropped} ionic step(s) did not finish and are left out "
                          f"({len(structures)} complete step(s) imported)", stacklevel=2)
        if not structures:
            warnings.warn(f"{outcar}: no completed ionic step", stacklevel=2)
        for k, atoms in enumerate(structures):
            source = f"{relative}#{k}"
            energy, force, stress = check_results(source, len(atoms), energies[k], forces[k], stresses[k])
            frames.append(Frame(int(level), atoms, energy, force, stress, group, source, identity=source))
            files.append(source)
    return assemble(frames, levels=[int(level)],
                    metadata={"source": "vasp", "root": str(root), "files": files,
                              "folders_without_outcar": without,
                              "energy": "free energy TOTEN (eV)"})
