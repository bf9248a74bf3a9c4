"""Read a FitSNAP set-up (input file + the JSON/XYZ data folder it names) into a dataset and fit-job inputs.

``read_fitsnap("InP-example.in")`` returns a :class:`FitSnapSetup` with

* ``dataset`` — a one-level :class:`~pyiron_mlip_tradeoff.dataset.LadderDataset` (level label 1): the structures in
  their original frame (FitSNAP rotates them to LAMMPS' frame only internally), total energies in eV **without**
  FitSNAP's ``[ESHIFT]`` (that goes into ``reference_energies``), forces in eV/Å, stresses in eV/Å³ with the ASE
  sign (positive = tensile), Voigt xx yy zz yz xz xy, and one group per configuration: its sub-folder (JSON) or file
  stem (XYZ). Configurations are ordered group by group as the ``[GROUPS]`` table lists them, files within a group
  sorted by name.
* ``job_input`` — fit-job input names and values (see :func:`read_fitsnap`).
* ``train_indices`` / ``test_indices`` — FitSNAP's split by group (see :func:`read_fitsnap`).

Unit and sign facts this module relies on (checked in ``tests/test_fitsnap_io.py``):

* FitSNAP's JSON ``Stress`` is VASP's: pressure-positive (a compressed cell has positive diagonal stress; on
  InP's EOS series the mean diagonal equals −dE/dV). ASE's stress is the negative of that. Each file's own
  ``StressStyle`` (``kB``, ``bar``, ``GPa``, ...), ``EnergyStyle``, ``ForcesStyle``, ``LatticeStyle`` and
  ``PositionsStyle`` are read; FitSNAP's default for an absent style is metal units (bar, eV, eV/Å, Å).
* FitSNAP fits stress rows in bar (metal pressure; its descriptor virial rows are scaled by 1.6021765e6 bar per
  eV/Å³), our stress rows are in eV/Å³. A FitSNAP stress weight ``vweight`` therefore becomes
  ``vweight × BAR_PER_EV_PER_A3`` (1.602176634e6) so that every row keeps the same share of the loss.
* FitSNAP's energy row is the energy per atom ((E − E_ref)/N) with weight ``eweight``, as our energy rows are
  (Eq. 1 of the design: w_E² (Ê − E)² / N²), so ``eweight`` is used as is; ``fweight`` likewise.
* FitSNAP *adds* ``[ESHIFT]`` per atom to the DFT energy before fitting. Our ``reference_energies`` are the
  per-atom energies *subtracted* from the total energy (target = E − Σ_atoms e_ref(element)), so
  ``reference_energies[el] = −ESHIFT[el]``: the fitted targets are identical.

Nothing in this module imports pyiron.
"""

from __future__ import annotations

import configparser
import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from .dataset import DatasetError, LadderDataset

__all__ = ["read_fitsnap", "FitSnapSetup", "FitSnapInputError", "BAR_PER_EV_PER_A3", "PRESSURE_IN_BAR"]

#: bar per eV/Å³ (exact SI: 1 eV/Å³ = 1.602176634e-19 J / 1e-30 m³ = 1.602176634e11 Pa)
BAR_PER_EV_PER_A3 = 1.602176634e6

#: pressure units FitSNAP (and common codes) write, in bar (FitSNAP's metal pressure unit)
PRESSURE_IN_BAR = {
    "metal": 1.0, "bar": 1.0, "bars": 1.0, "kbar": 1000.0, "kb": 1000.0, "kB": 1000.0, "atm": 1.01325,
    "pa": 1e-5, "kpa": 1e-2, "mpa": 10.0, "gpa": 1e4, "mbar": 1e6,
    "ev/a^3": BAR_PER_EV_PER_A3, "ev/ang^3": BAR_PER_EV_PER_A3, "ev/angstrom^3": BAR_PER_EV_PER_A3,
    "electronvoltperangstrom3": BAR_PER_EV_PER_A3, "ev_per_angstrom3": BAR_PER_EV_PER_A3,
}
_ENERGY_IN_EV = {
    "metal": 1.0, "ev": 1.0, "electronvolt": 1.0, "electron_volt": 1.0, "hartree": 27.211386245988,
    "ha": 27.211386245988, "eh": 27.211386245988, "atomic": 27.211386245988, "rydberg": 13.605693122994,
    "ryd": 13.605693122994, "ry": 13.605693122994, "kcal/mol": 0.0433641043, "kj/mol": 0.0103642688,
}
_LENGTH_IN_A = {
    "metal": 1.0, "angstrom": 1.0, "angstroms": 1.0, "ang": 1.0, "a": 1.0, "bohr": 0.529177210903,
    "au": 0.529177210903, "atomic": 0.529177210903, "nm": 10.0,
}
_FORCE_IN_EV_PER_A = {
    "metal": 1.0, "electronvoltperangstrom": 1.0, "ev/a": 1.0, "ev/angstrom": 1.0, "ev_per_angstrom": 1.0,
    "ev_per_ang": 1.0, "hartree_per_bohr": 27.211386245988 / 0.529177210903,
    "ha_per_bohr": 27.211386245988 / 0.529177210903, "atomic": 27.211386245988 / 0.529177210903,
}
_STYLES = {"Energy": _ENERGY_IN_EV, "Forces": _FORCE_IN_EV_PER_A, "Lattice": _LENGTH_IN_A,
           "Positions": _LENGTH_IN_A, "Stress": PRESSURE_IN_BAR}

# FitSNAP 3.1's accepted keys per section (a key outside these lists makes FitSNAP stop with an error)
_ALLOWED = {
    "BISPECTRUM": {"numTypes", "twojmax", "rcutfac", "rfac0", "rmin0", "wj", "radelem", "type", "wselfallflag",
                   "chemflag", "bzeroflag", "quadraticflag", "bnormflag", "bikflag", "switchinnerflag",
                   "switchflag", "sinner", "dinner", "dgradflag"},
    "CALCULATOR": {"calculator", "energy", "per_atom_energy", "force", "stress", "nonlinear", "per_atom_scalar"},
    "SOLVER": {"solver", "normalweight", "normratio", "compute_testerrs", "detailed_errors", "nsam", "cov_nugget",
               "mcmc_num", "mcmc_gamma", "merr_mult", "merr_method", "merr_cfs"},
    "SCRAPER": {"scraper", "save_group_scrape", "read_group_scrape", "property_array"},
    "PATH": {"dataPath", "groupFile"},
    "OUTFILE": {"output_style", "metrics", "metrics_style", "potential", "detailed_errors"},
    "EXTRAS": {"multinode_testing", "apply_transpose", "only_test", "dump_descriptors", "dump_truth",
               "dump_weights", "dump_dataframe", "dump_peratom", "dump_perconfig", "dump_configs"},
    "MEMORY": {"memory", "override"},
}
_GROUP_SETTINGS = {"group_sections", "group_types", "smartweights", "random_sampling", "random_seed",
                   "vasp_use_TOTEN", "vasp_json_pathname", "vasp_ignore_incomplete", "vasp_ignore_jsons",
                   "vasp_unconverged_label", "BOLTZ"}
_FREE_SECTIONS = {"ESHIFT", "REFERENCE", "GROUPS", "TRAINSHIFT"}
_OTHER_FITSNAP_SECTIONS = {"ACE", "CUSTOM", "BASIC", "PYTORCH", "NETWORK", "JAX", "RIDGE", "LASSO", "ARD"}
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


class FitSnapInputError(ValueError):
    """A FitSNAP input file or data folder that cannot be read as FitSNAP would read it (message names the file)."""


@dataclass
class FitSnapSetup:
    """What :func:`read_fitsnap` returns."""

    dataset: LadderDataset
    job_input: dict
    train_indices: np.ndarray
    test_indices: np.ndarray
    input_file: Path
    data_path: Path
    #: the input file's sections as read (strings), for anything not mapped into ``job_input``
    sections: dict = field(default_factory=dict)
    #: sub-folders / files of the data folder that the ``[GROUPS]`` table does not name (FitSNAP ignores them too)
    unused: list = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
def _flag(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise FitSnapInputError(f"{where}: {value!r} is not a true/false flag (1/0, true/false, yes/no)")


def _float(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise FitSnapInputError(f"{where}: {value!r} is not a number") from None


def _parse_ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(inline_comment_prefixes="#", interpolation=None)
    parser.optionxform = str  # keys are case sensitive, as in FitSNAP
    try:
        with open(path) as fh:
            parser.read_file(fh)
    except (configparser.Error, UnicodeDecodeError) as err:
        raise FitSnapInputError(f"{path}: not a readable FitSNAP input file ({err})") from err
    return parser


def _check_sections(parser: configparser.ConfigParser, path: Path) -> None:
    for name in parser.sections():
        if name in _OTHER_FITSNAP_SECTIONS:
            raise FitSnapInputError(
                f"{path}: section [{name}] sets up a FitSNAP model this package does not fit (linear/quadratic "
                "SNAP with the SVD solver only)"
            )
        if name not in _ALLOWED and name not in _FREE_SECTIONS:
            raise FitSnapInputError(
                f"{path}: unknown section [{name}] (FitSNAP sections: {sorted(set(_ALLOWED) | _FREE_SECTIONS)})"
            )
        allowed = _ALLOWED.get(name)
        if allowed is not None:
            unknown = [key for key in parser[name] if key not in allowed]
            if unknown:
                raise FitSnapInputError(
                    f"{path}: unknown key(s) {unknown} in [{name}] (FitSNAP stops on them too; allowed: "
                    f"{sorted(allowed)})"
                )
    if "BISPECTRUM" not in parser:
        raise FitSnapInputError(f"{path}: no [BISPECTRUM] section")


def _bispectrum(sec: Mapping, path: Path) -> tuple[list[str], int, dict]:
    where = f"{path} [BISPECTRUM]"
    elements = sec.get("type", "H").split()
    n_types = int(_float(sec.get("numTypes", "1"), f"{where} numTypes"))
    if len(elements) != n_types:
        raise FitSnapInputError(f"{where}: numTypes = {n_types} but type lists {len(elements)} element(s) {elements}")
    unknown = [e for e in elements if e not in atomic_numbers]
    if unknown:
        raise FitSnapInputError(f"{where}: type {unknown} is not a chemical symbol")
    if len(set(elements)) != len(elements):
        raise FitSnapInputError(f"{where}: type lists an element twice: {elements}")
    twojmax_list = sec.get("twojmax", "6").split()
    if len(twojmax_list) not in (1, n_types):
        raise FitSnapInputError(f"{where}: twojmax has {len(twojmax_list)} values for {n_types} element(s)")
    twojmax_values = {int(_float(v, f"{where} twojmax")) for v in twojmax_list}
    if len(twojmax_values) != 1:
        raise FitSnapInputError(f"{where}: different twojmax per element {twojmax_list} are not supported")
    per_element = {}
    for key, default in (("wj", "1.0"), ("radelem", "0.5")):
        values = [_float(v, f"{where} {key}") for v in sec.get(key, default).split()]
        if len(values) != n_types:
            raise FitSnapInputError(
                f"{where}: {key} has {len(values)} value(s) but there are {n_types} element(s) {elements}; give "
                "one per element in the order of `type`"
            )
        per_element[key] = values
    flags = {}
    for key, default in (("chemflag", "0"), ("bnormflag", "0"), ("wselfallflag", "0"), ("bzeroflag", "0"),
                         ("quadraticflag", "0"), ("switchflag", "1")):
        flags[key] = _flag(sec.get(key, default), f"{where} {key}")
    for key in ("bikflag", "dgradflag", "switchinnerflag"):
        if _flag(sec.get(key, "0"), f"{where} {key}"):
            raise FitSnapInputError(f"{where}: {key} = 1 is not supported by this package")
    if flags["chemflag"] and flags["quadraticflag"]:
        raise FitSnapInputError(f"{where}: chemflag and quadraticflag together are not implemented (FitSNAP neither)")
    settings = {
        "rcutfac": _float(sec.get("rcutfac", "4.67637"), f"{where} rcutfac"),
        "rfac0": _float(sec.get("rfac0", "0.99363"), f"{where} rfac0"),
        "rmin0": _float(sec.get("rmin0", "0.0"), f"{where} rmin0"),
        "radelem": per_element["radelem"],
        "wj": per_element["wj"],
        **flags,
    }
    return elements, twojmax_values.pop(), settings


def _reference(parser: configparser.ConfigParser, path: Path) -> dict | None:
    if "REFERENCE" not in parser:
        return None
    sec = parser["REFERENCE"]
    units = sec.get("units", "metal").lower()
    if units != "metal":
        raise FitSnapInputError(f"{path} [REFERENCE]: units = {units}; only LAMMPS metal units are supported")
    pair_style = sec.get("pair_style", "zero 10.0").strip()
    coeffs = [value.strip() for key, value in sec.items() if key.startswith("pair_coeff")]
    unknown = [key for key in sec if key not in {"units", "atom_style", "pair_style"} and not key.startswith("pair_coeff")]
    if unknown:
        raise FitSnapInputError(f"{path} [REFERENCE]: unknown key(s) {unknown}")
    if pair_style.split()[0] == "zero" and all(c.split()[2:3] == ["zero"] for c in coeffs):
        return None  # FitSNAP's default: no reference potential
    atom_style = sec.get("atom_style", "atomic").lower()
    if atom_style != "atomic":
        warnings.warn(
            f"{path} [REFERENCE]: atom_style {atom_style} (pair_style {pair_style}); running this reference "
            "potential needs that atom style and its LAMMPS package", stacklevel=3,
        )
    return {"pair_style": pair_style, "pair_coeff": coeffs}


def _group_table(parser: configparser.ConfigParser, path: Path) -> tuple[dict, dict]:
    """{group: {column: value}} in input order, and the [GROUPS] settings."""
    if "GROUPS" not in parser:
        raise FitSnapInputError(f"{path}: no [GROUPS] section (FitSNAP needs one to find the data)")
    sec = parser["GROUPS"]
    where = f"{path} [GROUPS]"
    columns = sec.get("group_sections", "name size eweight fweight vweight").split()
    types = sec.get("group_types", "str float float float float").split()
    if len(columns) != len(types):
        raise FitSnapInputError(f"{where}: group_sections has {len(columns)} names but group_types {len(types)}")
    unknown_types = [t for t in types if t not in ("str", "float", "int", "bool")]
    if unknown_types:
        raise FitSnapInputError(f"{where}: group_types {unknown_types} (str, float, int or bool)")
    settings = {k: sec[k] for k in sec if k in _GROUP_SETTINGS}
    rows = [(k, sec[k]) for k in sec if k not in _GROUP_SETTINGS]
    table_file = parser["PATH"].get("groupFile") if "PATH" in parser else None
    if table_file not in (None, "None"):
        file = path.parent / table_file
        if not file.is_file():
            raise FitSnapInputError(f"{path} [PATH]: groupFile {file} does not exist")
        rows = []
        for line in file.read_text().splitlines():
            line = line.split("#", 1)[0].split()
            if line:
                rows.append((line[0], " ".join(line[1:])))
    table: dict[str, dict] = {}
    for name, text in rows:
        values = text.split()
        if len(values) != len(columns) - 1:
            raise FitSnapInputError(
                f"{where}: group {name!r} has {len(values)} value(s), group_sections expects {len(columns) - 1} "
                f"({columns[1:]})"
            )
        row = {}
        for column, kind, value in zip(columns[1:], types[1:], values, strict=True):
            if kind == "str":
                row[column] = value
            elif kind == "bool":
                row[column] = _flag(value, f"{where} {name} {column}")
            else:
                row[column] = _float(value, f"{where} {name} {column}")
        for column, value in row.items():
            if "weight" in column and (not math.isfinite(value) or value < 0):
                raise FitSnapInputError(f"{where}: group {name!r} has {column} = {value}; weights are finite and >= 0")
        if "training_size" not in row and "size" not in row:
            raise FitSnapInputError(f"{where}: group {name!r} has no training_size (or size) column")
        if name in table:
            raise FitSnapInputError(f"{where}: group {name!r} is listed twice")
        table[name] = row
    if not table:
        raise FitSnapInputError(f"{where}: no group is listed")
    if _flag(settings.get("smartweights", "0"), f"{where} smartweights"):
        raise FitSnapInputError(f"{where}: smartweights = 1 (per-configuration weights) is not supported")
    if _float(settings.get("BOLTZ", "0"), f"{where} BOLTZ") != 0:
        raise FitSnapInputError(f"{where}: BOLTZ (Boltzmann energy weights) is not supported")
    return table, settings


def _sizes(row: dict, kinds: dict, n_files: int) -> tuple[int, int]:
    """FitSNAP's rule turning a group's training/testing sizes (fractions or counts) into counts."""
    both = "size" in row
    training = row.get("size", row.get("training_size"))
    testing = row.get("testing_size", 0.0)
    train_float = kinds.get("size" if both else "training_size") == "float"
    test_float = kinds.get("testing_size") == "float"
    if training < 1 or (training == 1 and train_float):
        if training == 1:
            training = n_files
        elif training != 0:
            training = max(1, int(abs(training) * n_files + 0.5))
        if both and testing == 0:
            testing = n_files - training
    if testing != 0 and (testing < 1 or (testing == 1 and test_float)):
        testing = max(1, int(abs(testing) * n_files + 0.5))
    if training != int(training) or testing != int(testing):
        raise FitSnapInputError("training and testing sizes must be fractions or whole numbers of configurations")
    training, testing = int(training), int(testing)
    if training + testing > n_files:
        testing = n_files - training
    return training, testing


# ---- data ------------------------------------------------------------------------------------------------------
def _unit(style_kind: str, style: str | None, file: Path) -> float:
    if style is None:
        return 1.0
    table = _STYLES[style_kind]
    key = style.strip()
    for candidate in (key, key.lower(), key.lower().replace(" ", "")):
        if candidate in table:
            return table[candidate]
    raise FitSnapInputError(f"{file}: {style_kind}Style {style!r} is not a unit this reader knows ({sorted(table)})")


def _read_json_config(file: Path, elements: set[str], need_stress: bool) -> dict:
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise FitSnapInputError(f"{file}: cannot read ({err})") from err
    if not text.startswith("{"):  # FitSNAP skips a first (comment) line that does not open the JSON object
        text = text.split("\n", 1)[1] if "\n" in text else ""
    try:
        data = json.loads(text)
        dataset = data["Dataset"]
        (config,) = dataset["Data"]
    except json.JSONDecodeError as err:
        raise FitSnapInputError(f"{file}: not valid JSON ({err})") from err
    except (KeyError, TypeError, ValueError) as err:
        raise FitSnapInputError(
            f"{file}: expected {{\"Dataset\": {{\"Data\": [one configuration]}}}} ({type(err).__name__}: {err})"
        ) from err
    styles = {k[: -len("Style")]: v for k, v in dataset.items() if k.endswith("Style")}
    styles.update({k[: -len("Style")]: v for k, v in config.items() if k.endswith("Style")})
    if styles.get("AtomType", "chemicalsymbol") != "chemicalsymbol":
        raise FitSnapInputError(f"{file}: AtomTypeStyle {styles['AtomType']!r}; only chemical symbols are supported")
    needed = ["Positions", "Lattice", "AtomTypes", "Energy", "Forces"] + (["Stress"] if need_stress else [])
    absent = [k for k in needed if k not in config]
    if absent:
        raise FitSnapInputError(f"{file}: configuration has no {absent}")
    try:
        positions = np.asarray(config["Positions"], dtype=float) * _unit("Positions", styles.get("Positions"), file)
        lattice = np.asarray(config["Lattice"], dtype=float) * _unit("Lattice", styles.get("Lattice"), file)
        forces = np.asarray(config["Forces"], dtype=float) * _unit("Forces", styles.get("Forces"), file)
        energy = float(config["Energy"]) * _unit("Energy", styles.get("Energy"), file)
        stress = None
        if "Stress" in config:
            stress = np.asarray(config["Stress"], dtype=float) * _unit("Stress", styles.get("Stress"), file)
    except (TypeError, ValueError) as err:
        raise FitSnapInputError(f"{file}: a value is not numeric or ragged ({err})") from err
    types = [str(t) for t in config["AtomTypes"]]
    n = len(types)
    if positions.shape != (n, 3) or forces.shape != (n, 3) or lattice.shape != (3, 3):
        raise FitSnapInputError(
            f"{file}: {n} AtomTypes but Positions {positions.shape}, Forces {forces.shape}, Lattice {lattice.shape}"
        )
    if "NumAtoms" in config and int(config["NumAtoms"]) != n:
        raise FitSnapInputError(f"{file}: NumAtoms = {config['NumAtoms']} but {n} atoms are listed")
    if stress is not None and stress.shape != (3, 3):
        raise FitSnapInputError(f"{file}: Stress has shape {stress.shape}, expected 3×3")
    foreign = sorted(set(types) - elements)
    if foreign:
        raise FitSnapInputError(f"{file}: element(s) {foreign} are not in [BISPECTRUM] type {sorted(elements)}")
    values = [energy, positions, forces, lattice] + ([stress] if stress is not None else [])
    if not all(np.isfinite(v).all() for v in values):
        raise FitSnapInputError(f"{file}: non-finite value (NaN/inf) in the configuration")
    return {"symbols": types, "positions": positions, "cell": lattice, "energy": energy, "forces": forces,
            "stress_bar": stress}


def _read_xyz_group(file: Path, elements: set[str]) -> list[dict]:
    """One FitSNAP XYZ group file; its stress is taken as FitSNAP takes it (metal pressure: bar, pressure sign)."""
    from ase.io import read

    try:
        frames = read(file, index=":", format="extxyz")
    except Exception as err:  # ASE raises many kinds for a malformed frame
        raise FitSnapInputError(f"{file}: not readable as extended XYZ ({type(err).__name__}: {err})") from err
    configs = []
    for k, atoms in enumerate(frames):
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        info = {key.lower(): value for key, value in atoms.info.items()}
        energy = results.get("energy", info.get("energy"))
        forces = results.get("forces", atoms.arrays.get("forces"))
        if energy is None or forces is None:
            raise FitSnapInputError(f"{file}: frame {k} has no energy or forces")
        stress = results.get("stress", info.get("stress"))
        if stress is not None:
            stress = np.asarray(stress, dtype=float)
            if stress.shape == (6,):  # ASE Voigt xx yy zz yz xz xy → 3×3
                xx, yy, zz, yz, xz, xy = stress
                stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
            # ASE's reader flips nothing: the numbers are the file's, which FitSNAP reads as bar (pressure sign)
        foreign = sorted(set(atoms.get_chemical_symbols()) - elements)
        if foreign:
            raise FitSnapInputError(f"{file}: frame {k} has element(s) {foreign} not in [BISPECTRUM] type")
        configs.append({"symbols": atoms.get_chemical_symbols(), "positions": atoms.get_positions(),
                        "cell": np.asarray(atoms.get_cell()), "energy": float(energy),
                        "forces": np.asarray(forces, dtype=float), "stress_bar": stress})
    return configs


def _voigt_ase(stress_bar: np.ndarray) -> np.ndarray:
    """3×3 pressure-sign stress in bar → ASE Voigt (xx yy zz yz xz xy) in eV/Å³ (tensile positive)."""
    s = -np.asarray(stress_bar) / BAR_PER_EV_PER_A3
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


# ---- the reader ------------------------------------------------------------------------------------------------
def read_fitsnap(path: str | os.PathLike) -> FitSnapSetup:
    """Read a FitSNAP input file and the data it names.

    Args:
        path: the FitSNAP input file (INI format). ``[PATH] dataPath`` is taken relative to its folder, as in
            FitSNAP. ``[SCRAPER] scraper`` may be JSON (one sub-folder per group, one configuration per ``.json``
            file) or XYZ (one ``<group>.xyz``/``.extxyz`` file per group).

    Returns:
        :class:`FitSnapSetup`. Its ``job_input`` holds:

        * ``elements`` — FitSNAP's type order (``[BISPECTRUM] type``); ``twojmax`` (int);
        * ``descriptor_settings`` — ``rcutfac``, ``rfac0``, ``rmin0``, ``radelem`` and ``wj`` (per-element lists in
          type order), ``chemflag``, ``bnormflag``, ``wselfallflag``, ``bzeroflag``, ``quadraticflag``,
          ``switchflag`` (bools), FitSNAP's names and defaults;
        * ``reference_potential`` — ``{"pair_style": str, "pair_coeff": [str, ...]}`` from ``[REFERENCE]``, or None
          (no section, or FitSNAP's default ``zero`` style);
        * ``reference_energies`` — {element: eV/atom} subtracted from total energies, = −``[ESHIFT]`` (FitSNAP adds
          ESHIFT; same targets); {} without the section;
        * ``energy_weight``, ``force_weight``, ``stress_weight`` — 1.0 (0.0 where ``[CALCULATOR]`` switches that
          row kind off): the absolute weights are in ``group_weights``;
        * ``group_weights`` — {group: {"energy": eweight, "force": fweight, "stress": vweight × 1.602176634e6}}: the
          energy and force weights as FitSNAP applies them (energy rows per atom), the stress weight converted from
          FitSNAP's bar rows to our eV/Å³ rows (see the module docstring);
        * ``solver`` — ``[SOLVER] solver``.

        ``train_indices`` / ``test_indices`` follow FitSNAP's per-group rule: sizes given as fractions become
        ``max(1, int(fraction × n + 0.5))`` configurations; training takes the first of the group's files, testing
        the last (FitSNAP pops them from the end of its list), files beyond both are in neither. Without
        ``random_sampling`` the order is the sorted file names (FitSNAP uses the directory listing order, which the
        file system decides); with ``random_sampling = 1`` the list is permuted by
        ``numpy.random.default_rng(random_seed)`` first (FitSNAP's own stream is Python's ``random`` module; the
        split is of the same sizes, not the same configurations). A testing size of 0 gives an empty
        ``test_indices``.

    Raises:
        FileNotFoundError: the input file or the data folder (or a group's folder/file) does not exist.
        FitSnapInputError: anything FitSNAP would stop on (unknown sections or keys, per-element lists of the wrong
            length, group rows of the wrong width), weights that are negative or NaN, groups in ``[GROUPS]`` without
            data, and unreadable or garbled data files (the message names the file). Everything is checked before
            the dataset is built.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no FitSNAP input file at {path}")
    parser = _parse_ini(path)
    _check_sections(parser, path)
    elements, twojmax, descriptor_settings = _bispectrum(parser["BISPECTRUM"], path)

    calc = parser["CALCULATOR"] if "CALCULATOR" in parser else {}
    if calc.get("calculator", "LAMMPSSNAP") != "LAMMPSSNAP":
        raise FitSnapInputError(f"{path} [CALCULATOR]: calculator {calc.get('calculator')}; only LAMMPSSNAP is supported")
    for key in ("per_atom_energy", "nonlinear", "per_atom_scalar"):
        if _flag(calc.get(key, "0"), f"{path} [CALCULATOR] {key}"):
            raise FitSnapInputError(f"{path} [CALCULATOR]: {key} = 1 is not supported")
    rows_on = {kind: _flag(calc.get(kind, "1"), f"{path} [CALCULATOR] {kind}") for kind in ("energy", "force", "stress")}

    eshift = {}
    if "ESHIFT" in parser:
        for key, value in parser["ESHIFT"].items():
            if key not in elements:
                warnings.warn(f"{path} [ESHIFT]: {key} is not in type {elements}; FitSNAP ignores it", stacklevel=2)
                continue
            eshift[key] = _float(value, f"{path} [ESHIFT] {key}")
    reference_potential = _reference(parser, path)
    solver = parser["SOLVER"].get("solver", "SVD") if "SOLVER" in parser else "SVD"

    scraper = parser["SCRAPER"].get("scraper", "JSON").upper() if "SCRAPER" in parser else "JSON"
    if "SCRAPER" in parser and "property_array" in parser["SCRAPER"]:
        raise FitSnapInputError(f"{path} [SCRAPER]: property_array (custom units) is not supported")
    if scraper not in ("JSON", "XYZ"):
        hint = " (read VASP run folders with pyiron_mlip_tradeoff.io.read_vasp_runs)" if scraper == "VASP" else ""
        raise FitSnapInputError(f"{path} [SCRAPER]: scraper {scraper} is not supported (JSON or XYZ){hint}")
    data_path = path.parent / (parser["PATH"].get("dataPath", "JSON") if "PATH" in parser else "JSON")
    if not data_path.is_dir():
        raise FileNotFoundError(f"{path}: the data folder {data_path} ([PATH] dataPath) does not exist")

    table, group_settings = _group_table(parser, path)
    gsec = parser["GROUPS"]
    kinds = dict(zip(gsec.get("group_sections", "name size eweight fweight vweight").split(),
                     gsec.get("group_types", "str float float float float").split(), strict=True))
    random_sampling = _flag(group_settings.get("random_sampling", "0"), f"{path} [GROUPS] random_sampling")
    random_seed = int(_float(group_settings.get("random_seed", "0"), f"{path} [GROUPS] random_seed"))

    # locate every group's files before reading any
    group_files: dict[str, list[Path]] = {}
    for group in table:
        if scraper == "JSON":
            folder = data_path / group
            if not folder.is_dir():
                raise FitSnapInputError(
                    f"{path} [GROUPS]: group {group!r} has no folder {folder} in the data folder {data_path}"
                )
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".json")
        else:
            candidates = [data_path / f"{group}.extxyz", data_path / f"{group}.xyz"]
            files = [p for p in candidates if p.is_file()][:1]
            if not files:
                raise FitSnapInputError(f"{path} [GROUPS]: group {group!r} has no file {group}.xyz in {data_path}")
        if not files:
            raise FitSnapInputError(f"{path} [GROUPS]: group {group!r} has no data files in {data_path / group}")
        group_files[group] = files
    if scraper == "JSON":
        unused = sorted(p.name for p in data_path.iterdir() if p.is_dir() and p.name not in table)
    else:
        unused = sorted(p.name for p in data_path.iterdir() if p.suffix in (".xyz", ".extxyz") and p.stem not in table)

    # read and check every configuration, then build
    element_set = set(elements)
    configs: list[dict] = []
    group_of: list[str] = []
    per_group_count: dict[str, int] = {}
    for group, files in group_files.items():
        if scraper == "JSON":
            read = [_read_json_config(f, element_set, rows_on["stress"]) for f in files]
            for f, c in zip(files, read, strict=True):
                c["file"] = str(f.relative_to(data_path))
        else:
            read = _read_xyz_group(files[0], element_set)
            for k, c in enumerate(read):
                c["file"] = f"{files[0].name}#{k}"
        configs.extend(read)
        group_of.extend([group] * len(read))
        per_group_count[group] = len(read)

    train: list[int] = []
    test: list[int] = []
    start = 0
    rng = np.random.default_rng(random_seed) if random_sampling else None
    for group, count in per_group_count.items():
        order = np.arange(start, start + count)
        if rng is not None:
            order = order[rng.permutation(count)]
        try:
            n_train, n_test = _sizes(table[group], kinds, count)
        except FitSnapInputError as err:
            raise FitSnapInputError(f"{path} [GROUPS] {group}: {err}") from None
        train.extend(order[:n_train].tolist())
        if n_test:
            test.extend(order[count - n_test:].tolist())
        start += count

    structures = [Atoms(symbols=c["symbols"], positions=c["positions"], cell=c["cell"], pbc=True) for c in configs]
    energy = np.array([c["energy"] for c in configs])
    forces = np.concatenate([c["forces"] for c in configs]) if configs else np.zeros((0, 3))
    stress = None
    if any(c["stress_bar"] is not None for c in configs):
        stress = np.array([_voigt_ase(c["stress_bar"]) if c["stress_bar"] is not None else np.full(6, np.nan)
                           for c in configs])
    metadata = {
        "source": "fitsnap",
        "input_file": str(path),
        "data_path": str(data_path),
        "files": [c["file"] for c in configs],
        "units": "energy eV (total, no ESHIFT), forces eV/Å, stress eV/Å³ ASE sign Voigt xx yy zz yz xz xy",
    }
    try:
        dataset = LadderDataset(structures, energy, forces, levels=[1], stress=None if stress is None else stress[None],
                                groups=group_of, metadata=metadata)
    except DatasetError as err:
        raise FitSnapInputError(f"{path}: the data do not form a dataset ({err})") from err

    group_weights = {
        group: {"energy": float(row.get("eweight", 1.0)), "force": float(row.get("fweight", 1.0)),
                "stress": float(row.get("vweight", 1.0)) * BAR_PER_EV_PER_A3}
        for group, row in table.items()
    }
    job_input = {
        "elements": list(elements),
        "twojmax": int(twojmax),
        "descriptor_settings": descriptor_settings,
        "reference_potential": reference_potential,
        "reference_energies": {el: 0.0 - shift for el, shift in eshift.items()},
        "energy_weight": 1.0 if rows_on["energy"] else 0.0,
        "force_weight": 1.0 if rows_on["force"] else 0.0,
        "stress_weight": 1.0 if rows_on["stress"] else 0.0,
        "group_weights": group_weights,
        "solver": solver,
    }
    sections = {name: dict(parser[name]) for name in parser.sections()}
    return FitSnapSetup(dataset=dataset, job_input=job_input, train_indices=np.array(sorted(train), dtype=np.int64),
                        test_indices=np.array(sorted(test), dtype=np.int64), input_file=path, data_path=data_path,
                        sections=sections, unused=unused)
