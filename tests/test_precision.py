import math

import numpy as np
import pytest
from ase.build import bulk

from pyiron_mlip_tradeoff.precision import REFERENCE_LADDER, PrecisionLevel, kpoint_mesh, resolve_levels


def test_reference_ladder_matches_design_table():
    table = {1: (None, 300), 2: (1.0, 300), 3: (0.75, 400), 4: (0.5, 500), 5: (0.25, 700), 6: (0.10, 900)}
    assert sorted(REFERENCE_LADDER) == list(table)
    for number, (kspacing, cutoff) in table.items():
        level = REFERENCE_LADDER[number]
        assert level.kspacing == kspacing and level.cutoff == cutoff
        assert level.smearing == "methfessel-paxton" and level.smearing_order == 1 and level.smearing_width == 0.2


def test_kmesh_of_hcp_be_follows_vasp_kspacing_rule(hcp_be):
    assert REFERENCE_LADDER[1].kpoint_mesh(hcp_be.cell[:]) == (1, 1, 1)
    assert REFERENCE_LADDER[2].kpoint_mesh(hcp_be.cell[:]) == (4, 4, 2)
    # independent evaluation of n_i = ceil(|b_i| / kspacing) with |b| = 2π / (a sin 60°) and 2π / c
    b_in_plane = 2 * math.pi / (2.29 * math.sin(math.radians(60)))
    b_c = 2 * math.pi / 3.58
    for number in (3, 4, 5, 6):
        k = REFERENCE_LADDER[number].kspacing
        expected = (math.ceil(b_in_plane / k), math.ceil(b_in_plane / k), math.ceil(b_c / k))
        assert REFERENCE_LADDER[number].kpoint_mesh(hcp_be.cell[:]) == expected


def test_kmesh_is_invariant_to_rotation_and_scales_with_supercell(hcp_be):
    big = hcp_be.repeat((2, 2, 1))
    rotated = hcp_be.copy()
    rotated.rotate(37, "z", rotate_cell=True)
    assert kpoint_mesh(rotated.cell[:], 0.5) == kpoint_mesh(hcp_be.cell[:], 0.5)
    small = kpoint_mesh(hcp_be.cell[:], 0.25)
    assert kpoint_mesh(big.cell[:], 0.25) == (math.ceil(small[0] / 2), math.ceil(small[1] / 2), small[2])
    # a vacuum direction gets a single division
    slab_cell = np.diag([3.0, 3.0, 40.0])
    assert kpoint_mesh(slab_cell, 0.5)[2] == 1


@pytest.mark.parametrize("kwargs", [dict(kspacing=0.0), dict(kspacing=-0.3), dict(cutoff=0), dict(cutoff=-100),
                                    dict(smearing="cold"), dict(smearing_width=0)])
def test_bad_levels_rejected(kwargs):
    args = dict(level=7, kspacing=0.5, cutoff=400.0)
    args.update(kwargs)
    with pytest.raises(ValueError):
        PrecisionLevel(**args)


def test_resolve_levels_and_custom_ladder():
    custom = PrecisionLevel(7, 0.3, 650.0)
    levels = resolve_levels([1, custom, 4])
    assert [lv.level for lv in levels] == [1, 7, 4]
    with pytest.raises(ValueError, match="unknown precision level 9"):
        resolve_levels([9])
    with pytest.raises(ValueError, match="duplicate"):
        resolve_levels([2, 2])
    with pytest.raises(ValueError, match="no precision levels"):
        resolve_levels([])
    own = {1: PrecisionLevel(1, 0.8, 250.0)}
    assert resolve_levels([1], ladder=own)[0].cutoff == 250.0


def test_level_roundtrip_through_dict():
    for level in list(REFERENCE_LADDER.values()) + [PrecisionLevel(8, 0.2, 800, smearing="gaussian", smearing_width=0.1)]:
        assert PrecisionLevel.from_dict(level.to_dict()) == level


def test_zero_volume_cell_rejected():
    with pytest.raises(ValueError, match="zero volume"):
        kpoint_mesh(np.zeros((3, 3)), 0.5)
    assert bulk("Be", "bcc", a=2.5).cell.volume > 0
