"""Timeloop's constraint syntax on one level: factor lists (``"K=1 M<=8"``, ``[R=1, S=1]``,
``{K: 1}``, ``"M16 N1"``), permutations (``"KMN"`` or a list) and a component's
``constraints: {temporal, spatial, dataspace}`` block -> :class:`LevelConstraints` plus the kept
and bypassed tensors. Shared by architecture files (``arch_loader``) and mapping files
(``mapping_loader``)."""

from __future__ import annotations

import re

from testy_model.spec.arch import LevelConstraints
from testy_model.spec.cursor import Cur


def parse_factors(cur: Cur) -> dict[str, int]:
    """Timeloop factor lists: ``"K=1 M<=8"``, ``[R=1, S=1]``, ``{K: 1}``, ``"M16 N1"``.

    ``<=`` bounds are stored negative (``M<=8`` -> -8); ``>=`` bounds are ignored (warned).
    """
    v = cur.value
    out: dict[str, int] = {}
    if v is None:
        return out
    if isinstance(v, dict):
        for k, c in cur.items():
            out[k] = c.int(minimum=0)
        return out
    if isinstance(v, list):
        tokens = [(c, c.str()) for c in cur.elems()]
    elif isinstance(v, str):
        tokens = [(cur, t) for t in v.replace(",", " ").split()]
    else:
        raise cur.error(f"expected factors like 'K=16 M=1' or [K=16, M=1], got {v!r}")
    for c, tok in tokens:
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z_0-9]*?)\s*(<=|>=|=)?\s*(\d+)\s*", tok)
        if m is None:
            raise c.error(f"cannot read factor {tok!r}; expected DIM=N, DIM<=N or DIMN")
        dim, op, num = m.group(1), m.group(2) or "=", int(m.group(3))
        if op == ">=":
            c.warn(f"lower bound {tok!r} is not used by the model (ignored)")
            continue
        out[dim] = -num if op == "<=" else num
    return out


def parse_permutation(cur: Cur) -> tuple[str, ...]:
    """A permutation: ``"KMN"`` (one letter per dimension) or a list of names."""
    v = cur.value
    if v is None:
        return ()
    if isinstance(v, str):
        return tuple(ch for ch in v if not ch.isspace() and ch != ",")
    return cur.str_list()


def level_constraints(
    cur: Cur | None,
) -> tuple[LevelConstraints, tuple[str, ...] | None, tuple[str, ...]]:
    """Component constraints -> (temporal LevelConstraints, keep, bypass)."""
    if cur is None:
        return LevelConstraints(), None, ()
    cur.as_map()
    cur.warn_unused({"temporal", "spatial", "dataspace"})
    tf: dict[str, int] = {}
    tp: tuple[str, ...] = ()
    sf: dict[str, int] = {}
    sp: tuple[str, ...] = ()
    split: int | None = None
    keep: tuple[str, ...] | None = None
    bypass: tuple[str, ...] = ()
    t = cur.opt("temporal")
    if t is not None:
        t.as_map().warn_unused({"factors", "permutation"})
        if (f := t.opt("factors")) is not None:
            tf = parse_factors(f)
        if (p := t.opt("permutation")) is not None:
            tp = parse_permutation(p)
    s = cur.opt("spatial")
    if s is not None:
        sf, sp, split = spatial_constraints(s)
    d = cur.opt("dataspace")
    if d is not None:
        d.as_map().warn_unused({"keep", "bypass"})
        if (k := d.opt("keep")) is not None:
            keep = k.str_list()
        if (b := d.opt("bypass")) is not None:
            bypass = b.str_list()
        both = set(keep or ()) & set(bypass)
        if both:
            raise d.error(f"tensors {sorted(both)} are both kept and bypassed")
    lc = LevelConstraints(
        temporal_factors=tf,
        temporal_permutation=tp,
        spatial_factors=sf,
        spatial_permutation=sp,
        spatial_split=split,
    )
    return lc, keep, bypass


def spatial_constraints(s: Cur) -> tuple[dict[str, int], tuple[str, ...], int | None]:
    s.as_map().warn_unused({"factors", "permutation", "split"})
    sf = parse_factors(c) if (c := s.opt("factors")) is not None else {}
    sp = parse_permutation(c) if (c := s.opt("permutation")) is not None else ()
    split_cur = s.opt("split")
    split = split_cur.int(minimum=0) if split_cur is not None else None
    return sf, sp, split
