"""Test-side access to FitSNAP's example data (shared/data/fitsnap_examples): a minimal JSON reader and the
published InP and Fe settings. (The package's own FitSNAP importer is ``pyiron_mlip_tradeoff.fitsnap_io``; this
reader stays test-local so the descriptor tests do not depend on it.)"""

from __future__ import annotations

import json
from pathlib import Path

from _shared_data import shared_data
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator


def data_root() -> Path | None:
    """The ``fitsnap_examples`` folder of :func:`_shared_data.shared_data` (None if absent)."""
    root = shared_data()
    return None if root is None else root / "fitsnap_examples"


ROOT = data_root()

#: InP-example.in [BISPECTRUM] (JPCA 2020): EME-SNAP, 2Jmax 6
INP_ELEMENTS = ["In", "P"]
INP_BISPECTRUM = dict(
    rcutfac=1.0, rfac0=0.99363, rmin0=0.0, wj=[1.0, 0.9293160905266721],
    radelem=[3.812045629514403, 3.829453817954964],
)
INP_PUBLISHED_FLAGS = dict(wselfallflag=1, chemflag=1, bnormflag=1, quadraticflag=0, bzeroflag=1)
#: InP-example.in [REFERENCE]
INP_REFERENCE = {
    "pair_style": "hybrid/overlay zero 10.0 zbl 4.0 4.2",
    "pair_coeff": ["* * zero", "1 1 zbl 49 49", "1 2 zbl 49 15", "2 2 zbl 15 15"],
}
#: Fe-example.in [BISPECTRUM]
FE_BISPECTRUM = dict(rcutfac=4.519796866, rfac0=0.99363, rmin0=0.0, wj=1.0, radelem=0.5, wselfallflag=0,
                     chemflag=0, bzeroflag=1, quadraticflag=0)


def read_fitsnap_json(path: Path) -> Atoms:
    """One FitSNAP JSON file (a comment line, then {"Dataset": {"Data": [one configuration]}}) as ASE Atoms.

    The DFT energy (eV) and forces (eV/Å) are attached as a single-point calculator (stress left out: its unit
    and sign conventions belong to the importer); ``info["name"]`` is ``group/file``.
    """
    text = path.read_text()
    (data,) = json.loads(text[text.index("\n") :])["Dataset"]["Data"]
    atoms = Atoms(data["AtomTypes"], positions=data["Positions"], cell=data["Lattice"], pbc=True)
    assert len(atoms) == data["NumAtoms"]
    atoms.calc = SinglePointCalculator(atoms, energy=float(data["Energy"]), forces=data["Forces"])
    atoms.info["name"] = f"{path.parent.name}/{path.name}"
    return atoms


def first_in_group(group: str, example: str = "InP_JPCA2020", index: int = 0) -> Atoms:
    folder = ROOT / example / "JSON" / group
    return read_fitsnap_json(sorted(folder.glob("*.json"))[index])


def inp_sample() -> list[Atoms]:
    """Four InP configurations: wurtzite (4 atoms), sheared zincblende (8), an In vacancy (63), a P interstitial
    (65)."""
    wurtzite = read_fitsnap_json(ROOT / "InP_JPCA2020" / "JSON" / "EOS" / "InP_WZ_0GPA.json")
    return [wurtzite, first_in_group("Shear"), first_in_group("s_vIn"), first_in_group("s_iP")]
