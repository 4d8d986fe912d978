"""Timeloop ``problem:`` YAML (v0.3 hyphenated and v0.4 underscored keys) -> :class:`Problem`.

Densities (``instance.densities.<tensor>``):

- ``fixed_structured`` / ``fixed-structured`` (or a bare number, as Timeloop reads it) has **one
  meaning everywhere** (every command, the Sparseloop study included): Sparseloop's
  fixed-structured density, the same number of non-zeros in every tile (``Density(kind=
  "fixed_structured")``, priced by its own density model, as Timeloop v3.0.3 does). Where an N:M
  pattern matters (an engine's structured-sparsity support, TASD terms, ``validate``), the
  density's ``pattern`` is the N:M pattern of :func:`fixed_structured_pattern` (the first M of
  4, 8, 2, 3, 16 with d·M an integer N: 0.5 -> 2:4, 0.25 -> 1:4, 0.3333 -> 1:3), ``None`` when no
  pattern fits (0.3). With our extension key ``pattern: "2:4"`` the density is that N:M pattern
  (``Density(kind="nm")``). Density 1.0 -> ``dense``.
- ``hypergeometric`` -> ``hypergeometric``; ``uniform``/``bernoulli``/``random`` -> ``bernoulli``.
- ``banded`` (``band_width``) -> ``banded``.
- our ``tensor`` (``path``, optional ``key``) and ``nm`` (``pattern``) kinds; ``dense``.

Operands: a GEMM with data spaces A, B, Z gets ``weight="A"``, ``activation="B"``; a convolution
with Weights/Inputs gets ``weight="Weights"``, ``activation="Inputs"``; our extension keys
``weight:``/``activation:`` beside ``shape:`` override. Extra instance keys that are neither
dimensions nor coefficients (``H``, ``Wpad`` ...) are warned and ignored.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from testy_model.errors import SpecError
from testy_model.spec.cursor import Cur, Doc, validation_to_spec_error
from testy_model.spec.workload import DataSpace, Density, Problem
from testy_model.spec.yaml_io import KNOWN_TOP_LEVEL

DISTRIBUTIONS = (
    "fixed_structured",
    "fixed-structured",
    "hypergeometric",
    "uniform",
    "bernoulli",
    "random",
    "banded",
    "dense",
    "nm",
    "tensor",
)


def _term(cur: Cur) -> tuple[str, int | str]:
    """One projection term: ``[dim]`` or ``[dim, coef]`` (coef a name or an integer)."""
    v = cur.value
    if isinstance(v, str):
        return v, 1
    items = list(cur.as_list(allow_none=False).elems())
    if len(items) == 1:
        return items[0].str(), 1
    if len(items) == 2:
        dim = items[0].str()
        c = items[1].value
        if isinstance(c, bool) or not isinstance(c, (int, str)):
            raise items[1].error(f"expected a coefficient name or integer, got {c!r}")
        return dim, c
    raise cur.error(f"expected a projection term [dim] or [dim, coefficient], got {v!r}")


def _projection(cur: Cur) -> tuple[tuple[tuple[str, int | str], ...], ...]:
    ranks: list[tuple[tuple[str, int | str], ...]] = []
    for rank in cur.as_list(allow_none=False).elems():
        if isinstance(rank.value, str):
            ranks.append(((rank.value, 1),))
            continue
        ranks.append(tuple(_term(t) for t in rank.as_list(allow_none=False).elems()))
    return tuple(ranks)


def fixed_structured_pattern(
    density: float, candidates: tuple[int, ...] = (4, 8, 2, 3, 16)
) -> tuple[int, int] | None:
    """The N:M pattern of Sparseloop's ``fixed-structured`` density ``d``: the first M of
    ``candidates`` with d·M within 1e-3·M of an integer N >= 1 (0.5 -> 2:4, 0.25 -> 1:4,
    0.3333 -> 1:3). ``None`` for d >= 1 (dense) or when none fits."""
    if density >= 1.0:
        return None
    for m in candidates:
        n = round(density * m)
        if n >= 1 and abs(density * m - n) < 1e-3 * m:
            return n, m
    return None


def fixed_structured_density(density: float) -> Density:
    """The one reading of ``fixed_structured`` without a ``pattern`` (module docstring):
    Sparseloop's fixed-structured density ``d``, with the N:M pattern it is when one fits."""
    if density >= 1.0:
        return Density()
    pat = fixed_structured_pattern(density)
    return Density(
        kind="fixed_structured",
        density=density,
        pattern=f"{pat[0]}:{pat[1]}" if pat is not None else None,
    )


def _density(cur: Cur) -> Density:
    if isinstance(cur.value, (int, float)) and not isinstance(cur.value, bool):
        # Timeloop: a bare number is a fixed-structured density (Workload::Parse)
        d = cur.num(minimum=0)
        if d > 1:
            raise cur.error(f"expected a density between 0 and 1, got {d}")
        return fixed_structured_density(d)
    cur.as_map().warn_unused(
        {"distribution", "density", "pattern", "kind", "path", "key", "band_width"}
    )
    kind_cur = cur.opt("distribution", "kind")
    dist = kind_cur.str() if kind_cur is not None else None
    dens_cur = cur.opt("density")
    density = dens_cur.num(minimum=0) if dens_cur is not None else 1.0
    if density > 1:
        assert dens_cur is not None
        raise dens_cur.error(f"expected a density between 0 and 1, got {density}")
    pat_cur = cur.opt("pattern")
    path_cur = cur.opt("path")
    key_cur = cur.opt("key")
    try:
        if pat_cur is not None and dist in (None, "fixed_structured", "fixed-structured", "nm"):
            return Density(kind="nm", pattern=pat_cur.str())
        if dist is None:
            dist = "tensor" if path_cur is not None else "hypergeometric"
        if dist not in DISTRIBUTIONS:
            assert kind_cur is not None
            raise kind_cur.error(f"unknown distribution {dist!r}; expected one of {DISTRIBUTIONS}")
        if dist == "tensor":
            return Density(
                kind="tensor",
                path=path_cur.str() if path_cur else None,
                key=key_cur.str() if key_cur else None,
            )
        if dist == "nm":
            return Density(kind="nm", pattern=pat_cur.str() if pat_cur else None)
        if dist == "banded":
            bw_cur = cur.opt("band_width")
            bw = bw_cur.int(minimum=0) if bw_cur is not None else 0
            return Density(kind="banded", density=min(1.0, density), band_width=bw)
        if dist == "dense" or density == 1.0:
            return Density()
        if dist.replace("-", "_") == "fixed_structured":
            return fixed_structured_density(density)
        kind = "bernoulli" if dist in ("uniform", "bernoulli", "random") else "hypergeometric"
        return Density(kind=kind, density=density)
    except ValidationError as err:
        raise validation_to_spec_error(err, cur, {"pattern": ("pattern",)}) from None
    except SpecError:
        raise
    except ValueError as err:
        raise cur.error(str(err)) from None


def problem_from_cur(p: Cur, name: str) -> Problem:
    """Build a :class:`Problem` from the mapping under a ``problem:`` key."""
    p.as_map().warn_unused(
        {"shape", "instance", "version", "weight", "activation", "datawidths", "name"}
    )
    shape = p.req("shape").as_map()
    shape.warn_unused({"name", "dimensions", "data_spaces", "data-spaces", "coefficients"})
    shape_name = c.str() if (c := shape.opt("name")) is not None else "problem"
    dims_cur = shape.req("dimensions")
    dims = dims_cur.str_list()
    if len(set(dims)) != len(dims):
        raise dims_cur.error(f"duplicate dimensions in {list(dims)}")
    coefs = _coefficients(shape.opt("coefficients"))
    ds_cur = shape.req("data_spaces", "data-spaces")
    spaces = _data_spaces(ds_cur)
    names = [ds.name for ds in spaces]
    bounds, densities = _instance(p.req("instance").as_map(), dims, coefs, names)
    _check_projections(ds_cur, spaces, dims, coefs)
    weight = activation = None
    if {"A", "B", "Z"} <= set(names):
        weight, activation = "A", "B"
    elif {"Weights", "Inputs"} <= set(names):
        weight, activation = "Weights", "Inputs"
    if (w := p.opt("weight")) is not None:
        weight = w.str()
    if (a := p.opt("activation")) is not None:
        activation = a.str()
    widths: dict[str, int] = {}
    if (dw := p.opt("datawidths")) is not None:
        widths = {k: c.int(minimum=1) for k, c in dw.as_map().items()}
    nm_cur = p.opt("name")
    try:
        return Problem(
            name=nm_cur.str() if nm_cur is not None else name,
            shape_name=shape_name,
            dimensions=dims,
            bounds=bounds,
            coefficients=coefs,
            data_spaces=tuple(spaces),
            densities=densities,
            datawidths=widths,
            weight=weight,
            activation=activation,
        )
    except ValidationError as err:
        raise validation_to_spec_error(err, p, {"data_spaces": ("shape",)}) from None


def _coefficients(cc: Cur | None) -> dict[str, int]:
    """``shape.coefficients``: name -> default value (a bare name defaults to 1)."""
    coefs: dict[str, int] = {}
    if cc is None:
        return coefs
    for c in cc.elems():
        if isinstance(c.value, str):
            coefs[c.value] = 1
            continue
        c.as_map().warn_unused({"name", "default"})
        dflt = c.opt("default")
        coefs[c.req("name").str()] = dflt.int() if dflt is not None else 1
    return coefs


def _data_spaces(ds_cur: Cur) -> list[DataSpace]:
    """``shape.data_spaces``: name, projection and read-write flag of each tensor."""
    spaces = []
    for ds_c in ds_cur.as_list(allow_none=False).elems():
        ds_c.as_map().warn_unused({"name", "projection", "read_write", "read-write"})
        rw = ds_c.opt("read_write", "read-write")
        proj_cur = ds_c.req("projection")
        try:
            spaces.append(
                DataSpace(
                    name=ds_c.req("name").str(),
                    projection=_projection(proj_cur),
                    read_write=rw.bool() if rw is not None else False,
                )
            )
        except ValidationError as err:
            raise validation_to_spec_error(err, ds_c) from None
    return spaces


def _instance(
    inst: Cur, dims: tuple[str, ...], coefs: dict[str, int], names: list[str]
) -> tuple[dict[str, int], dict[str, Density]]:
    """``instance``: the bound of every dimension and the density of each tensor (``densities``,
    or ``commonDensity`` for all); a coefficient given here overrides its default in
    ``coefs`` (updated in place)."""
    bounds: dict[str, int] = {}
    densities: dict[str, Density] = {}
    common: Density | None = None
    for k, c in inst.items():
        if k == "densities":
            for t, dc in c.as_map().items():
                densities[t] = _density(dc)
        elif k == "commonDensity":
            common = _density(c)
        elif k in dims:
            bounds[k] = c.int(minimum=1)
        elif k in coefs:
            coefs[k] = c.int()
        else:
            c.warn(f"instance key {k!r} is neither a dimension nor a coefficient (ignored)")
    for d in dims:
        if d not in bounds:
            raise inst.error(f"dimension {d!r} has no bound; expected '{d}: <integer >= 1>'")
    if common is not None and not densities:
        densities = {t: common for t in names}
    for t, _ in densities.items():
        if t not in names:
            raise (
                inst.child("densities")
                .child(t)
                .error(f"density for unknown tensor {t!r}; tensors are {names}")
            )
    return bounds, densities


def _check_projections(
    ds_cur: Cur, spaces: list[DataSpace], dims: tuple[str, ...], coefs: dict[str, int]
) -> None:
    """Every projection term names a dimension and, when it has one, a declared coefficient."""
    for ds_i, ds in enumerate(spaces):
        for rank in ds.projection:
            for dim, coef in rank:
                if dim not in dims:
                    raise (
                        ds_cur.child(ds_i)
                        .child("projection")
                        .error(
                            f"data space {ds.name!r} projects unknown dimension {dim!r}; "
                            f"dimensions are {list(dims)}"
                        )
                    )
                if isinstance(coef, str) and coef not in coefs:
                    raise (
                        ds_cur.child(ds_i)
                        .child("projection")
                        .error(
                            f"unknown coefficient {coef!r}; declared coefficients are "
                            f"{sorted(coefs)}"
                        )
                    )


def problem_from_doc(doc: Doc) -> Problem:
    """Build a :class:`Problem` from a loaded document with a ``problem:`` block."""
    from testy_model.spec.cursor import warn_unknown_top

    root = doc.root()
    if not root.is_map():
        raise root.error("expected a mapping with a 'problem' block")
    p = root.req("problem")
    warn_unknown_top(root, KNOWN_TOP_LEVEL)
    return problem_from_cur(p, Path(doc.file).stem)


def load_problem(path: str | Path) -> Problem:
    """Load a Timeloop problem file (or the ``problem`` part of an aggregated Sparseloop input).

    Raises :class:`SpecError` naming file, line and key path on any problem.
    """
    doc = Doc.load(path)
    prob = problem_from_doc(doc)
    doc.report_unused()
    return prob
