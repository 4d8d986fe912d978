"""Zero means zero: an energy given as 0 is 0 on every pricing path; an absent one (None) gets
its documented fallback.

Property (hypothesis, derandomised): for any set of (level, energy field) pairs of the shipped
STC spec set to 0, the priced energy equals the limit of the same fields set to a tiny positive
value (1e-9 pJ) — a 0 never jumps to a fallback — on the sparse stage (the engine's 2:4
support), the term stage (a TASD plan), a batch of design points (``evaluate_points``) and the
Accelergy ERT path. And a metadata energy left out (None) costs ``read_energy / datawidth`` per
bit, which is not 0.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testy_model.model.arrays import arch_arrays
from testy_model.model.evaluate import evaluate, evaluate_points
from testy_model.spec.arch import Architecture
from testy_model.spec.arch_loader import load_arch
from testy_model.spec.mapping_loader import load_mapping
from testy_model.spec.problem_loader import load_problem

ROOT = Path(__file__).resolve().parents[1]
STC = (
    ROOT.parent
    / "shared"
    / "sparseloop_stc_study"
    / "WD-0.5"
    / "M512-K1024-N256-IAD0.27-WD0.5"
    / "STC-RF2x-24-bandwidth"
)
FIELDS = ("read_energy", "write_energy", "metadata_read_energy", "metadata_write_energy", "leakage")
TINY = 1e-9


def _design():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = load_arch(ROOT / "arch_specs" / "sparseloop_stc.yaml")
        prob = load_problem(STC / "aggregated_input.yaml")
        mapping = load_mapping(STC / "map.yaml", arch, prob)
    return arch, prob, mapping


ARCH, PROB, MAPPING = _design()


def _with(arch: Architecture, fields: list[tuple[str, str]], value: float | None) -> Architecture:
    levels = []
    for lvl in arch.levels:
        upd = {f: value for n, f in fields if n == lvl.name}
        levels.append(lvl.model_copy(update=upd) if upd else lvl)
    comp = arch.compute
    cu = {f: value for n, f in fields if n == comp.name}
    if cu:
        comp = comp.model_copy(update=cu)
    return arch.model_copy(update={"levels": tuple(levels), "compute": comp})


def _energies(arch: Architecture) -> list[float]:
    """Energy (pJ) of the design on every path."""
    sparse = evaluate(PROB, arch, MAPPING, conventions="sparseloop-2022")  # engine support
    terms = evaluate(PROB, arch, MAPPING, plan="W=2:4")  # term stage
    pts = evaluate_points(PROB, arch, MAPPING, arch_arrays([arch, arch]), plan="W=2:4")
    return [sparse.energy_pj, terms.energy_pj, *pts.total_energy_pj.tolist()]


_pairs = st.lists(
    st.tuples(
        st.sampled_from([lvl.name for lvl in ARCH.levels] + [ARCH.compute.name]),
        st.sampled_from(FIELDS),
    ),
    min_size=1,
    max_size=4,
    unique=True,
).map(
    lambda xs: [
        (n, f if n != ARCH.compute.name else {"read_energy": "mac_energy"}.get(f, "leakage"))
        for n, f in xs
    ]
)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_pairs)
def test_zero_is_the_limit_of_small_energies(fields: list[tuple[str, str]]) -> None:
    zero = _energies(_with(ARCH, fields, 0.0))
    tiny = _energies(_with(ARCH, fields, TINY))
    # TINY pJ per action over < 1e9 actions moves the total by < 1 pJ: a fallback would add µJ
    assert zero == pytest.approx(tiny, abs=1.0)


def test_absent_metadata_energy_falls_back_to_read_energy_per_bit() -> None:
    smem = [("SMEM", "metadata_read_energy"), ("SMEM", "metadata_write_energy")]
    given_zero = evaluate(PROB, _with(ARCH, smem, 0.0), MAPPING, conventions="sparseloop-2022")
    absent = evaluate(PROB, _with(ARCH, smem, None), MAPPING, conventions="sparseloop-2022")
    lvl = ARCH.level("SMEM")
    # SMEM's A metadata: 524,288 + 262,144 2-bit coordinates, in 64-bit metadata accesses
    # (read 16,384, write 8,192), at read (write) energy / 8 bits per bit × 64 bits per access
    extra = 16384 * 64 * lvl.read_energy / 8 + 8192 * 64 * lvl.write_energy / 8
    got = (
        absent.layers[0].energy_by_component["SMEM"]
        - given_zero.layers[0].energy_by_component["SMEM"]
    )
    assert got == pytest.approx(extra, rel=1e-9)


def test_ert_zero_stays_zero() -> None:
    # an ERT listing metadata_read at 0 pJ: the metadata costs nothing, whereas the same level
    # without the ERT entry and with its own 0.404 pJ/bit pays for it
    from testy_model.spec.accelergy import EnergyTable, apply_ert

    base = evaluate(PROB, ARCH, MAPPING, conventions="sparseloop-2022")
    table = EnergyTable(
        actions={
            "SMEM": {
                "read": 285.71464,
                "write": 316.96744,
                "metadata_read": 0.0,
                "metadata_write": 0.0,
            }
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the other components keep their own energies
        arch = apply_ert(ARCH, table)
    got = evaluate(PROB, arch, MAPPING, conventions="sparseloop-2022")
    md = 16384 * 25.8695 + 8192 * 19.6486  # the metadata energy the spec's own numbers charge
    diff = base.layers[0].energy_by_component["SMEM"] - got.layers[0].energy_by_component["SMEM"]
    assert diff == pytest.approx(md, rel=1e-4)
    assert np.isfinite(got.energy_pj)
