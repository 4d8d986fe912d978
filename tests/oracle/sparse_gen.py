"""Random sparse optimizations of a generated case: densities, representation formats along a
tensor's keeper chain, gating / skipping / skipping-spatial directives (rules in
:mod:`oracle.gen`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from oracle.cases import Arch, LevelMap, Problem, keepers

# --------------------------------------------------------------------------------------------
# sparse optimizations
# --------------------------------------------------------------------------------------------

_UNCOMPRESSED = ("UOP", "UB")
_COMPRESSED = ("CP", "B", "RLE")


@dataclass
class SparseSpec:
    """Formats per (level, tensor) as rank dicts (outer to inner), action optimizations per
    level, compute optimization."""

    formats: dict[tuple[int, str], list[dict[str, Any]]] = field(default_factory=dict)
    actions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    compute: list[str] = field(default_factory=list)

    def to_yaml(self, arch: Arch, prob: Problem) -> dict[str, Any]:
        """The ``sparse_optimizations:`` document (levels outer to inner)."""
        targets = []
        for li in range(len(arch.levels) - 1, -1, -1):
            entry: dict[str, Any] = {"name": arch.levels[li].name}
            ds = [
                {"name": t, "ranks": self.formats[(li, t)]}
                for t in prob.tensors
                if (li, t) in self.formats
            ]
            if ds:
                entry["representation-format"] = {"data-spaces": ds}
            if li in self.actions:
                entry["action-optimization"] = self.actions[li]
            if len(entry) > 1:
                targets.append(entry)
        if self.compute:
            targets.append(
                {"name": "mac", "compute-optimization": [{"type": c} for c in self.compute]}
            )
        return {"sparse_optimizations": {"targets": targets}}


def _nontrivial_loops(
    prob: Problem, maps: list[LevelMap], t: str, top: int, bottom: int
) -> list[str]:
    """Dimensions of the non-trivial loops of levels ``top``..``bottom`` relevant to ``t``,
    outer to inner (per level: temporal outer to inner, then spatial)."""
    rel = set(prob.tensor_dims(t))
    out: list[str] = []
    for i in range(top, bottom - 1, -1):
        lm = maps[i]
        out += [d for d in reversed(lm.t_perm) if d in rel and lm.temporal[d] > 1]
        out += [d for d in prob.dims if d in rel and lm.sx.get(d, 1) * lm.sy.get(d, 1) > 1]
    return out


def _rank(fmt: str, rng: random.Random, md_bits_choices: tuple[int, ...]) -> dict[str, Any]:
    r: dict[str, Any] = {"format": fmt}
    if fmt != "UB" and rng.random() < 0.25:
        r["metadata-word-bits"] = rng.choice(md_bits_choices)
    return r


def random_formats(
    rng: random.Random, prob: Problem, arch: Arch, maps: list[LevelMap]
) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """Representation formats for some tensors along their keeper chains (see module doc)."""
    formats: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for t in prob.tensors:
        if rng.random() < (0.3 if t == prob.output else 0.7):
            continue
        chain = keepers(maps, t)  # inner first
        # compressed from some keeper up to the outermost one: an uncompressed level above a
        # compressed child aborts Timeloop (storage-optimization-combiner.cpp
        # CalculateDecompressionCompressionCost: on-chip compression is not modelled)
        lo = rng.randrange(len(chain))
        comp = chain[lo:]
        flat_all = rng.random() < 0.35
        flat_dims = prob.tensor_dims(t) if rng.random() < 0.5 else list(prob.dims)
        child_ranks: list[dict[str, Any]] | None = None
        for li in comp:
            ci = chain.index(li)
            child = chain[ci - 1] if ci > 0 else None
            bottom = child + 1 if child is not None else 0
            loops = _nontrivial_loops(prob, maps, t, li, bottom)
            if child_ranks is not None:
                # pre-tiling: new outer (uncompressed) ranks above the child's own ranks
                n_new = 1 if flat_all else max(1, len(loops))
                new = [{"format": rng.choice(_UNCOMPRESSED)} for _ in range(n_new)]
                if flat_all:
                    new[0] = {"format": "UOP", "flattened-rankIDs": [list(flat_dims)]}
                ranks = new + [dict(r) for r in child_ranks]
            elif flat_all:
                nr = rng.choice([1, 2, 2, 3])
                ranks = [
                    {
                        "format": "UOP" if k < nr - 1 else rng.choice(_COMPRESSED),
                        "flattened-rankIDs": [list(flat_dims)],
                    }
                    for k in range(nr)
                ]
            else:
                # one rank per non-trivial loop (+1 for an uncompressed child's single rank,
                # sometimes a spare), compressed ranks inside uncompressed ones
                total = max(1, len(loops)) + (1 if child is not None else 0)
                total += 1 if rng.random() < 0.25 else 0
                n_comp = rng.randint(1, total)
                fmts = [rng.choice(_UNCOMPRESSED) for _ in range(total - n_comp)]
                fmts += [rng.choice(_COMPRESSED) for _ in range(n_comp)]
                ranks = [_rank(f, rng, (2, 3, 4, 5, 8)) for f in fmts]
            formats[(li, t)] = ranks
            child_ranks = ranks
        # uncompressed keeper right below a compressed one must decompress (and compress
        # outputs on the way up)
        if lo > 0:
            below = arch.levels[chain[lo - 1]]
            below.decompression = True
            if t == prob.output:
                below.compression = True
    # metadata word bits: fixed per level later (needs the level's metadata width)
    return formats


def random_densities(rng: random.Random, prob: Problem) -> dict[str, tuple[str, float]]:
    """Fixed-structured or hypergeometric densities for the operands (sometimes the output)."""
    out: dict[str, tuple[str, float]] = {}
    for t in prob.tensors:
        if t == prob.output and rng.random() < 0.8:
            continue
        if rng.random() < 0.2:
            continue
        dist = rng.choice(["fixed-structured", "fixed-structured", "hypergeometric"])
        out[t] = (dist, rng.choice([0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9]))
    return out


def random_actions(
    rng: random.Random, prob: Problem, arch: Arch, maps: list[LevelMap], kind: str
) -> dict[int, list[dict[str, Any]]]:
    """Gating / skipping / spatial skipping directives, each on a level at or below a keeper of
    its target."""
    acts: dict[int, list[dict[str, Any]]] = {}
    typ = {"sparse_gating": "gating", "sparse_skipping": "skipping"}.get(kind)
    n_opts = rng.choice([1, 1, 2, 3])
    for _ in range(n_opts):
        t = rng.choice(prob.tensors)
        others = [x for x in prob.tensors if x != t and x != prob.output] or [
            x for x in prob.tensors if x != t
        ]
        cond = rng.sample(others, k=rng.choice([1, 1, 2]) if len(others) > 1 else 1)
        if kind == "spatial_skipping":
            spatial = [i for i, lv in enumerate(arch.levels) if lv.fanout > 1]
            if not spatial:
                typ_here = "skipping"
                li = rng.choice(keepers(maps, t))
            else:
                typ_here = "skipping-spatial"
                li = rng.choice(spatial)
        else:
            typ_here = typ or "gating"
            if kind == "sparse_format":
                typ_here = rng.choice(["gating", "skipping"])
            li = rng.choice(keepers(maps, t))
        acts.setdefault(li, []).append(
            {"type": typ_here, "options": [{"target": t, "condition-on": cond}]}
        )
    if kind == "spatial_skipping" and rng.random() < 0.5:
        # a temporal skipping as well, so spatial cases mix both
        t = rng.choice(prob.tensors)
        li = rng.choice(keepers(maps, t))
        cond = [x for x in prob.tensors if x != t][:1]
        acts.setdefault(li, []).append(
            {"type": "skipping", "options": [{"target": t, "condition-on": cond}]}
        )
    return acts
