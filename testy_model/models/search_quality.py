"""Quality-constrained TASD plan search on a real model (all-MiniLM-L6-v2).

Find the per-layer plan (weight series, activation series) of least network EDP on an engine
such that the sentence embeddings keep a mean cosine similarity ``>= target`` (0.99, the
method's 99%-of-quality goal) to the reference model's, using *measured* per-layer quality
losses instead of the closed-form error proxy of :mod:`testy_model.plan_search`.

Pipeline (:func:`quality_search`):

1. **Cost** (:func:`cost_tables`): every layer's candidates (``search.candidates``) priced in one
   batched model call per layer (``search.evaluate_candidates``, mapping from
   ``search.default_mapper``). Network totals: ``E = Σ_l E_l`` (pJ), ``t = Σ_l t_l`` (s),
   ``EDP = E·t`` (pJ·s).
2. **Quality classes** (:func:`quality_class`): the greedy decomposition keeps, in every block
   of M values, the ``N1`` largest magnitudes, then the ``N2`` largest of the rest, ...; the
   sum of the terms is therefore the block's ``K = N1 + N2 + ...`` largest values (ties by
   lowest index in both cases), the same tensor as the single pattern ``K:M``. So every series
   whose terms share one block size M has the quality of ``K:M`` (``dense`` when K >= M):
   ``2:8+1:8`` ≡ ``3:8``, ``1:4+1:4`` ≡ ``2:4``. Quality is measured once per class.
3. **Shortlist** (:func:`shortlist`): per layer and class pair the cheapest valid option; an
   option is kept only if its layer EDP is below the dense option's and no other kept option
   keeps at least as much of both operands (class K at least as large) at no more EDP.
4. **Measured loss** (:func:`measure_losses`): per layer l, the marginal losses
   ``loss_W(l, w) = cos̄_base − cos̄({l: (w, dense)})`` and ``loss_A(l, a)`` likewise
   (dimensionless), with ``cos̄`` the mean cosine similarity over the *loss sentences* to the
   reference (dense, unpruned) embeddings and ``base`` the model with only the unstructured
   pruning (``cos̄_base = 1`` without it); a pair's loss is ``loss_W + loss_A``. Measured most
   kept first; once a class loses more than the budget, the classes keeping fewer values of
   that operand are assumed worse and not measured. Results are kept in a :class:`LossCache`
   (CSV) keyed by layer, classes, sparsity and a fingerprint of the sentences.
5. **Greedy path** (:func:`greedy_path`): from the all-dense plan, each step switches the one
   (layer, option) of highest EDP gain per unit of added loss ``(J − J')/Δloss`` (a switch that
   adds no loss first), among those that lower ``J`` and keep ``Σ_l loss_l <= cap``. The sum
   of the per-layer losses is the proxy of the plan's loss (losses roughly add up: measured in
   ``benchmarks/minilm_sensitivity.csv``).
6. **Verification** (:func:`quality_search`): the plan after the last step whose proxy loss is
   within ``budget = cos̄_base − target`` is run on the full *search sentences*; when its real
   mean cosine is below the target, steps are dropped from the end (the last steps are those of
   least gain per loss), and when it passes, longer prefixes of the path (up to the ``cap``) are
   tried (:func:`_bracket`: steps of 1, 2, 4, ... then bisection), at most ``max_verify`` full
   runs. The result is the longest verified prefix: its mean cosine was measured ``>= target``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from testy_model.errors import TestyModelError
from testy_model.spec.arch import Architecture
from testy_model.spec.workload import Density, Layer, Network, gemm
from testy_model.tasd.pattern import NMPattern, TasdSeries

if TYPE_CHECKING:
    from testy_model.models.minilm import MiniLM
    from testy_model.plan_search import LayerTable

DENSE = TasdSeries(())
LOSS_EVERY = 4
"""The loss sentences are every ``LOSS_EVERY``-th search sentence (52 of 208)."""
_EPS = 1e-12
_CACHE_COLUMNS = ("layer", "weight", "activation", "weight_sparsity", "sentences", "loss")

#: ``log(message)`` for progress lines.
Log = Callable[[str], None]


def _search_mod() -> Any:
    return importlib.import_module("testy_model.plan_search")


# -- quality classes ---------------------------------------------------------------------------


def quality_class(series: TasdSeries | str) -> TasdSeries:
    """The single pattern whose greedy approximation equals ``series``'s: ``K:M`` with
    ``K = Σ N_i`` when all terms share the block size M (``dense`` when ``K >= M``); a series
    mixing block sizes is its own class. ``2:8+1:8`` -> ``3:8``; ``2:4+2:4`` -> ``dense``."""
    s = TasdSeries.parse(series)
    if s.is_dense:
        return DENSE
    ms = {t.m for t in s.terms}
    if len(ms) != 1:
        return s
    m = ms.pop()
    k = sum(t.n for t in s.terms)
    return DENSE if k >= m else TasdSeries((NMPattern(k, m),))


def kept_fraction(series: TasdSeries) -> float:
    """Largest fraction of an operand's values a class keeps, ``K/M`` (1 for ``dense``)."""
    c = quality_class(series)
    return 1.0 if c.is_dense else sum(t.n / t.m for t in c.terms)


# -- cost ----------------------------------------------------------------------------------------


def minilm_network(model: MiniLM, tokens: int = 128, weight_sparsity: float = 0.0) -> Network:
    """The model's 36 linear layers as GEMMs (``MiniLM.network``); with ``weight_sparsity`` > 0
    the weight operand A gets a Bernoulli density ``1 − weight_sparsity`` (magnitude pruning
    leaves the survivors scattered; the model prices its N:M terms by the closed form)."""
    net = model.network(tokens=tokens)
    if weight_sparsity <= 0.0:
        return net
    d = Density(kind="bernoulli", density=1.0 - weight_sparsity)
    layers = []
    for layer in net.layers:
        b = layer.problem.bounds
        prob = gemm(m=b["M"], n=b["N"], k=b["K"], name=layer.name, densities={"A": d})
        layers.append(Layer(name=layer.name, problem=prob))
    return Network(name=f"{net.name} pruned {weight_sparsity:g}", layers=tuple(layers))


def cost_tables(network: Network, arch: Architecture, max_terms: int = 2) -> list[LayerTable]:
    """Every candidate of every layer with its cost (``plan_search.evaluate_candidates``: each
    candidate on the mapping ``eval`` runs it on, its class mapping; cycles, s, pJ, pJ·s). The
    plain orientation only (the weight in the engine's A slot): this study's plans are
    ``(weights, activations)`` pairs."""
    s = _search_mod()
    out = []
    for layer in network.layers:
        opts = [o for o in s.candidates(layer, arch, max_terms) if not o.transposed]
        out.append(s.evaluate_candidates(layer, arch, None, opts, max_terms=max_terms))
    return out


def totals(tables: Sequence[LayerTable], idx: Sequence[int]) -> tuple[float, float, float]:
    """(energy pJ, seconds, EDP pJ·s) of choosing option ``idx[l]`` in layer l; layers run in
    sequence: ``E = Σ E_l``, ``t = Σ t_l``, ``EDP = E·t``."""
    e = float(sum(t.energy_pj[i] for t, i in zip(tables, idx, strict=True)))
    sec = float(sum(t.seconds[i] for t, i in zip(tables, idx, strict=True)))
    return e, sec, e * sec


def shortlist(table: LayerTable) -> list[int]:
    """Option indices of ``table`` worth measuring (see the module docstring, step 3), most
    kept values first."""
    best: dict[tuple[TasdSeries, TasdSeries], int] = {}
    edp = table.edp
    for i, o in enumerate(table.options):
        if not table.valid[i] or o.is_dense:
            continue
        key = (quality_class(o.weights), quality_class(o.activations))
        if edp[i] >= edp[table.dense] * (1 - 1e-12):
            continue  # no cheaper than dense: never worth a loss
        if key not in best or edp[i] < edp[best[key]]:
            best[key] = i
    keep = []
    for key, i in best.items():
        kw, ka = kept_fraction(key[0]), kept_fraction(key[1])
        dominated = any(
            kept_fraction(k2[0]) >= kw
            and kept_fraction(k2[1]) >= ka
            and edp[j] <= edp[i]
            and (k2 != key)
            for k2, j in best.items()
        )
        if not dominated:
            keep.append(i)
    return sorted(
        keep,
        key=lambda i: (
            -kept_fraction(table.options[i].weights) * kept_fraction(table.options[i].activations),
            i,
        ),
    )


# -- measured losses ------------------------------------------------------------------------------


def fingerprint(sentences: Sequence[str]) -> str:
    """First 12 hex digits of the SHA-1 of the sentences joined by newlines."""
    return hashlib.sha1("\n".join(sentences).encode("utf-8")).hexdigest()[:12]


@dataclass
class LossCache:
    """Measured per-layer losses, keyed by (layer, weight class, activation class, sparsity,
    sentence fingerprint); saved as CSV (columns ``layer, weight, activation, weight_sparsity,
    sentences, loss``). The key ``("", "base", "base", s, f)`` holds ``cos̄_base``."""

    entries: dict[tuple[str, str, str, float, str], float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> LossCache:
        """Read a cache CSV; a missing file gives an empty cache."""
        p = Path(path)
        if not p.is_file():
            return cls()
        try:
            df = pd.read_csv(p, dtype={"layer": str}, keep_default_na=False)
        except (OSError, ValueError) as err:
            raise TestyModelError(f"{p}: cannot read the loss cache: {err}") from err
        missing = [c for c in _CACHE_COLUMNS if c not in df.columns]
        if missing:
            raise TestyModelError(
                f"{p}: loss cache lacks column(s) {', '.join(missing)} "
                f"(expected {', '.join(_CACHE_COLUMNS)})"
            )
        out = cls()
        for row in df.itertuples(index=False):  # one entry per row of a small table
            key = (
                str(row.layer),
                str(row.weight),
                str(row.activation),
                float(row.weight_sparsity),
                str(row.sentences),
            )
            out.entries[key] = float(row.loss)
        return out

    def save(self, path: str | Path) -> None:
        """Write the cache CSV (rows sorted by key; its folder created; atomic rename)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        rows = [(*k, v) for k, v in sorted(self.entries.items())]
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        pd.DataFrame(rows, columns=list(_CACHE_COLUMNS)).to_csv(tmp, index=False)
        os.replace(tmp, p)


#: The per-layer losses shipped with the package (measured once on the shipped sentences).
SHIPPED_LOSSES = Path(__file__).resolve().parents[1] / "data" / "minilm_losses.csv"


def user_loss_cache() -> Path:
    """Where measured losses are kept between runs by default:
    ``$XDG_CACHE_HOME/testy-model/minilm_losses.csv`` (``~/.cache/...`` without the variable)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "testy-model" / "minilm_losses.csv"


def open_loss_cache(path: str | Path | None = None) -> tuple[LossCache, Path]:
    """The loss cache to use and where to keep it: ``path`` (default :func:`user_loss_cache`)
    when it exists, else the shipped losses to start from. Save with ``cache.save(where)``."""
    where = Path(path) if path is not None else user_loss_cache()
    return LossCache.load(where if where.is_file() else SHIPPED_LOSSES), where


def _cos(model: MiniLM, sentences: Sequence[str], ref: np.ndarray, plan: dict, s: float) -> float:
    from testy_model.models.quality import cosine

    return float(cosine(ref, model.encode(sentences, plan=plan, weight_sparsity=s)).mean())


def base_cosine(
    model: MiniLM, sentences: Sequence[str], weight_sparsity: float, cache: LossCache
) -> float:
    """``cos̄_base``: mean cosine of the pruned model (no TASD) to the dense one (1 unpruned)."""
    if weight_sparsity <= 0.0:
        return 1.0
    key = ("", "base", "base", float(weight_sparsity), fingerprint(sentences))
    if key not in cache.entries:
        ref = model.encode(sentences)
        cache.entries[key] = _cos(model, sentences, ref, {}, weight_sparsity)
    return cache.entries[key]


def measure_losses(
    model: MiniLM,
    sentences: Sequence[str],
    tables: Sequence[LayerTable],
    short: Sequence[Sequence[int]],
    *,
    budget: float,
    weight_sparsity: float = 0.0,
    cache: LossCache | None = None,
    log: Log | None = None,
) -> np.ndarray:
    """Loss matrix (L, C) (NaN where not measured), module step 4.

    Per layer l, the *marginal* losses are measured: ``loss_W(l, K:M) = cos̄_base −
    cos̄({l: (K:M, dense)})`` for every weight class of the shortlist and ``loss_A(l, K:M)``
    likewise for the activation classes (weights dense). A pair's loss is their sum,
    ``loss(l, (w, a)) = loss_W(l, w) + loss_A(l, a)`` (``loss_W(l, dense) = 0``): the same
    additivity the search assumes across layers, checked by the verification run. Classes are
    measured most-kept first; once one loses more than ``budget``, the classes keeping fewer
    values of that operand are not measured (assumed worse) and their pairs stay NaN.
    Cached entries are reused; new ones are added to ``cache``.
    """
    cache = cache if cache is not None else LossCache()
    fp = fingerprint(sentences)
    base = base_cosine(model, sentences, weight_sparsity, cache)
    n_c = max(len(t.options) for t in tables)
    loss = np.full((len(tables), n_c), np.nan)
    ref: list[np.ndarray] = []

    def marginal(name: str, cls: TasdSeries, operand: int) -> float:
        pair = (cls, DENSE) if operand == 0 else (DENSE, cls)
        key = (name, str(pair[0]), str(pair[1]), float(weight_sparsity), fp)
        if key not in cache.entries:
            if not ref:
                ref.append(model.encode(sentences))
            c = _cos(model, sentences, ref[0], {name: pair}, weight_sparsity)
            cache.entries[key] = base - c
            if log is not None:
                log(f"loss {name} W={pair[0]} A={pair[1]}: {base - c:.5f}")
        return cache.entries[key]

    for li, (t, opts) in enumerate(zip(tables, short, strict=True)):
        per_op: list[dict[TasdSeries, float]] = [{DENSE: 0.0}, {DENSE: 0.0}]
        for operand in (0, 1):
            classes = {
                quality_class(t.options[i].weights if operand == 0 else t.options[i].activations)
                for i in opts
            } - {DENSE}
            for cls in sorted(classes, key=kept_fraction, reverse=True):
                val = marginal(t.name, cls, operand)
                per_op[operand][cls] = val
                if val > budget:
                    break
        for i in opts:
            o = t.options[i]
            cw, ca = quality_class(o.weights), quality_class(o.activations)
            if cw in per_op[0] and ca in per_op[1]:
                loss[li, i] = per_op[0][cw] + per_op[1][ca]
    return loss


# -- greedy selection -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One switch of the greedy path: ``layer`` to option ``option``; EDP after it (pJ·s),
    the added loss and the proxy loss ``Σ loss`` after it (dimensionless)."""

    layer: int
    option: int
    edp: float
    d_loss: float
    proxy_loss: float


def greedy_path(
    tables: Sequence[LayerTable], loss: np.ndarray, cap: float, max_steps: int = 10000
) -> list[Step]:
    """The greedy path of module step 5, from all-dense; only options with a measured loss
    are used. Every step strictly lowers the network EDP, so the path ends."""
    n_l = len(tables)
    n_c = loss.shape[1]
    energy = np.full((n_l, n_c), np.inf)
    secs = np.full((n_l, n_c), np.inf)
    for li, t in enumerate(tables):
        c = len(t.options)
        energy[li, :c] = t.energy_pj
        secs[li, :c] = t.seconds
    ok = np.isfinite(loss)
    idx = np.array([t.dense for t in tables], dtype=np.int64)
    rows = np.arange(n_l)
    cur_loss = np.zeros(n_l)
    path: list[Step] = []
    for _ in range(max_steps):
        e_tot = float(energy[rows, idx].sum())
        s_tot = float(secs[rows, idx].sum())
        j_now = e_tot * s_tot
        j_new = (e_tot - energy[rows, idx][:, None] + energy) * (
            s_tot - secs[rows, idx][:, None] + secs
        )
        gain = j_now - j_new
        d_loss = np.where(ok, loss, np.inf) - cur_loss[:, None]
        allowed = ok & (gain > j_now * 1e-9) & (cur_loss.sum() + d_loss <= cap + _EPS)
        if not allowed.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(d_loss > _EPS, gain / np.where(d_loss > _EPS, d_loss, 1.0), np.inf)
        ratio = np.where(allowed, ratio, -np.inf)
        pick = np.where(ratio == ratio.max(), np.where(allowed, gain, -np.inf), -np.inf)
        li, ci = np.unravel_index(int(np.argmax(pick)), pick.shape)
        idx[li] = ci
        dl = float(loss[li, ci] - cur_loss[li])
        cur_loss[li] = loss[li, ci]
        path.append(Step(int(li), int(ci), float(j_new[li, ci]), dl, float(cur_loss.sum())))
    return path


def prefix_indices(tables: Sequence[LayerTable], path: Sequence[Step], k: int) -> np.ndarray:
    """Option index per layer after the first ``k`` steps of ``path``."""
    idx = np.array([t.dense for t in tables], dtype=np.int64)
    for st in path[:k]:
        idx[st.layer] = st.option
    return idx


def plan_of(tables: Sequence[LayerTable], idx: Sequence[int]) -> dict[str, tuple[str, str]]:
    """The non-dense layers of a choice: layer -> (weight series, activation series)."""
    out = {}
    for t, i in zip(tables, idx, strict=True):
        o = t.options[int(i)]
        if not o.is_dense:
            out[t.name] = (str(o.weights), str(o.activations))
    return out


def model_plan(plan: dict[str, tuple[str, str]]) -> dict[str, tuple[TasdSeries, TasdSeries]]:
    """A search plan in the form ``MiniLM.encode`` runs: every series replaced by its quality
    class (the same approximated tensors, module step 2, computed with one term)."""
    return {k: (quality_class(w), quality_class(a)) for k, (w, a) in plan.items()}


# -- the search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualitySearchResult:
    """Result of :func:`quality_search`. EDP in pJ·s; cosines and losses dimensionless."""

    arch: str
    target: float
    weight_sparsity: float
    tables: tuple[LayerTable, ...]
    choice: np.ndarray
    path: tuple[Step, ...]
    k: int
    verified: tuple[tuple[int, float], ...]
    base_cos: float
    budget: float
    n_measured: int
    loss: np.ndarray = field(repr=False)

    @property
    def plan(self) -> dict[str, tuple[str, str]]:
        """Non-dense layers of the searched plan: layer -> (weight series, activation series)."""
        return plan_of(self.tables, self.choice)

    @property
    def feasible(self) -> bool:
        """True when a plan meeting the target was found (verified, or all-dense unpruned)."""
        return self.search_cos >= self.target

    @property
    def search_cos(self) -> float:
        """Measured mean cosine of the chosen plan on the search sentences."""
        got = dict(self.verified)
        return got.get(self.k, 1.0 if self.k == 0 and self.weight_sparsity <= 0 else -1.0)

    def edp(self, which: str = "plan") -> float:
        """Network EDP (pJ·s) of ``plan`` or ``dense``."""
        if which == "dense":
            return totals(self.tables, [t.dense for t in self.tables])[2]
        return totals(self.tables, self.choice)[2]

    def edp_ratio(self) -> float:
        """EDP of the plan / EDP of the dense run."""
        return self.edp("plan") / self.edp("dense")

    def to_frame(self) -> pd.DataFrame:
        """One row per layer: chosen series, measured loss, EDP share."""
        rows = []
        for li, (t, i) in enumerate(zip(self.tables, self.choice, strict=True)):
            o = t.options[int(i)]
            rows.append(
                {
                    "layer": t.name,
                    "weights": str(o.weights),
                    "activations": str(o.activations),
                    "loss": 0.0 if o.is_dense else float(self.loss[li, int(i)]),
                    "cycles": float(t.cycles[i]),
                    "energy_pj": float(t.energy_pj[i]),
                    "dense_cycles": float(t.cycles[t.dense]),
                    "dense_energy_pj": float(t.energy_pj[t.dense]),
                }
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "arch": self.arch,
            "target": self.target,
            "weight_sparsity": self.weight_sparsity,
            "feasible": self.feasible,
            "search_mean_cosine": self.search_cos,
            "base_mean_cosine": self.base_cos,
            "proxy_budget": self.budget,
            "proxy_loss": self.path[self.k - 1].proxy_loss if self.k else 0.0,
            "steps": self.k,
            "path_length": len(self.path),
            "verified": [{"steps": k, "mean_cosine": c} for k, c in self.verified],
            "losses_measured": self.n_measured,
            "edp_pj_s": self.edp("plan"),
            "dense_edp_pj_s": self.edp("dense"),
            "edp_vs_dense": self.edp_ratio(),
            "plan": {k: {"weights": w, "activations": a} for k, (w, a) in self.plan.items()},
        }


def _bracket(
    k0: int, n: int, passes: Callable[[int], bool], budget_left: Callable[[], bool]
) -> tuple[int, int]:
    """(longest prefix known to pass, shortest known or assumed to fail) around ``k0``.

    From ``k0`` (the proxy-budget prefix): if it passes, try ``k0 + 1, k0 + 2, k0 + 4, ...``
    (capped at ``n``) until one fails; else back off ``k0 − 1, k0 − 2, k0 − 4, ...`` (dropping
    the last steps, those of least gain per loss) until one passes. Prefix 0 (all dense, no
    pruning) counts as passing without a run; ``n + 1`` as failing.
    """
    if k0 == 0 or passes(k0):
        lo, step = k0, 1
        while lo < n and budget_left():
            k = min(n, lo + step)
            if not passes(k):
                return lo, k
            lo, step = k, step * 2
        return lo, n + 1
    hi, step = k0, 1
    while budget_left():
        k = max(0, hi - step)
        if k == 0 or passes(k):
            return k, hi
        hi, step = k, step * 2
    return 0, hi


def quality_search(
    model: MiniLM,
    arch: Architecture,
    search_sentences: Sequence[str],
    *,
    target: float = 0.99,
    weight_sparsity: float = 0.0,
    tokens: int = 128,
    max_terms: int = 2,
    cache: LossCache | None = None,
    loss_every: int = LOSS_EVERY,
    cap_factor: float = 2.0,
    max_verify: int = 8,
    tables: Sequence[LayerTable] | None = None,
    log: Log | None = None,
) -> QualitySearchResult:
    """The plan of least EDP on ``arch`` whose measured mean cosine on ``search_sentences``
    is ``>= target`` (module docstring, steps 1-6).

    Args:
        model: the loaded MiniLM.
        arch: the engine.
        search_sentences: the sentences the search may see (the loss sentences are every
            ``loss_every``-th of them).
        target: mean-cosine target (dimensionless, in (0, 1]).
        weight_sparsity: unstructured magnitude pruning of every layer's weights first.
        tokens: sequence length N of the cost model's GEMMs.
        max_terms: longest series considered.
        cache: measured losses to reuse and extend.
        cap_factor: the greedy path runs up to a proxy loss of ``cap_factor × budget``.
        max_verify: most full runs on the search sentences.
        tables: precomputed :func:`cost_tables` (else computed).
    """
    if not 0.0 < target <= 1.0:
        raise TestyModelError(f"target {target!r} must be in (0, 1]")
    if not search_sentences:
        raise TestyModelError("quality_search: no search sentences given")
    cache = cache if cache is not None else LossCache()
    if tables is None:
        tables = cost_tables(minilm_network(model, tokens, weight_sparsity), arch, max_terms)
    tables = tuple(tables)
    loss_sents = list(search_sentences)[:: max(1, loss_every)]
    base = base_cosine(model, loss_sents, weight_sparsity, cache)
    budget = base - target
    n0 = len(cache.entries)
    short = [shortlist(t) for t in tables]
    if budget > 0:
        loss = measure_losses(
            model, loss_sents, tables, short, budget=budget, weight_sparsity=weight_sparsity,
            cache=cache, log=log,
        )  # fmt: skip
    else:
        loss = np.full((len(tables), max(len(t.options) for t in tables)), np.nan)
    path = greedy_path(tables, loss, cap=max(budget, 0.0) * cap_factor)
    ref: list[np.ndarray] = []  # the reference embeddings, computed on the first run
    verified: dict[int, float] = {}

    def passes(k: int) -> bool:
        if k not in verified:
            if not ref:
                ref.append(model.encode(search_sentences))
            plan = model_plan(plan_of(tables, prefix_indices(tables, path, k)))
            verified[k] = _cos(model, search_sentences, ref[0], plan, weight_sparsity)
            if log is not None:
                log(f"verify {k} steps: mean cosine {verified[k]:.5f}")
        return verified[k] >= target

    k0 = max((i + 1 for i, st in enumerate(path) if st.proxy_loss <= budget + _EPS), default=0)
    best, hi = _bracket(k0, len(path), passes, lambda: len(verified) < max_verify)
    while hi - best > 1 and len(verified) < max_verify:
        mid = (best + hi) // 2
        if passes(mid):
            best = mid
        else:
            hi = mid
    if best == 0 and weight_sparsity > 0:
        passes(0)
    return QualitySearchResult(
        arch=arch.name,
        target=target,
        weight_sparsity=weight_sparsity,
        tables=tables,
        choice=prefix_indices(tables, path, best),
        path=tuple(path),
        k=best,
        verified=tuple(sorted(verified.items())),
        base_cos=base,
        budget=budget,
        n_measured=len(cache.entries) - n0,
        loss=loss,
    )


# -- uniform plans and the proxy-budget plan -----------------------------------------------------


@dataclass(frozen=True)
class UniformPlan:
    """One series pair on every layer (``search.uniform_indices``' fallbacks), its EDP (pJ·s)
    and quality class."""

    weights: str
    activations: str
    idx: np.ndarray
    edp: float
    qclass: tuple[str, str]


def uniform_plans(tables: Sequence[LayerTable]) -> list[UniformPlan]:
    """Every uniform plan of the candidates (one per distinct series pair of any layer; pairs
    with an invalid option in some layer are left out), cheapest first."""
    from testy_model.model.plan import LayerPlan

    s = _search_mod()
    seen: dict[tuple[TasdSeries, TasdSeries], None] = {}
    for t in tables:
        for o in t.options:
            seen.setdefault((o.weights, o.activations), None)
    out = []
    for w, a in seen:
        idx = s.uniform_indices(tables, LayerPlan(weights=w, activations=a))
        if not all(t.valid[i] for t, i in zip(tables, idx, strict=True)):
            continue
        out.append(
            UniformPlan(
                str(w), str(a), idx, totals(tables, idx)[2],
                (str(quality_class(w)), str(quality_class(a))),
            )
        )  # fmt: skip
    return sorted(out, key=lambda u: u.edp)


def plan_cosine(
    model: MiniLM,
    sentences: Sequence[str],
    tables: Sequence[LayerTable],
    idx: Sequence[int],
    weight_sparsity: float = 0.0,
    ref: np.ndarray | None = None,
) -> float:
    """Measured mean cosine (to the dense, unpruned model) of the choice ``idx`` on
    ``sentences`` (exactly 1 for the dense, unpruned choice, which is not run)."""
    plan = model_plan(plan_of(tables, idx))
    if not plan and weight_sparsity <= 0.0:
        return 1.0  # the dense model itself
    ref = model.encode(sentences) if ref is None else ref
    return _cos(model, sentences, ref, plan, weight_sparsity)


def proxy_plan(
    network: Network, arch: Architecture, budget: float, mode: str = "global", max_terms: int = 2
) -> Any:
    """The plan of ``testy_model.plan_search.search`` under its closed-form error budget (the
    proxy this module replaces), as its ``SearchReport`` (plain orientation, as this study's
    plans; one budget on each layer's combined weight and activation error, as the study was
    run: ``activation_budget=None``)."""
    return _search_mod().search(
        network,
        arch,
        budget=budget,
        mode=mode,
        max_terms=max_terms,
        orientations=("weight",),
        activation_budget=None,
    )


def report_choice(report: Any, tables: Sequence[LayerTable]) -> np.ndarray:
    """A ``SearchReport``'s choice as option indices into ``tables`` (same candidates)."""
    out = []
    for t, (name, lp) in zip(tables, report.plan.layers.items(), strict=True):
        if name != t.name:
            raise TestyModelError(f"layer order differs: {name!r} vs {t.name!r}")
        i = t.index(lp.weights, lp.activations, lp.orientation)
        if i is None:
            raise TestyModelError(f"layer {name!r}: option {lp} is not among the candidates")
        out.append(i)
    return np.array(out, dtype=np.int64)


def check_uniform(
    model: MiniLM,
    sentences: Sequence[str],
    tables: Sequence[LayerTable],
    edp_limit: float,
    weight_sparsity: float = 0.0,
    target: float = 0.99,
    implied: bool = False,
    known: dict[tuple[str, str], float] | None = None,
) -> pd.DataFrame:
    """Every uniform plan (:func:`uniform_plans`) with its EDP (pJ·s) and, when its EDP is
    ``<= edp_limit`` (only those could match or beat a plan of EDP ``edp_limit``), its measured
    mean cosine on ``sentences``, once per quality class (plans of one class compute the same
    embeddings, module step 2); NaN otherwise.

    With ``implied``, classes are visited most-kept first and a class keeping no more of
    either operand than a class already measured below ``target`` is not run: it is marked as
    failing (``measured`` False; the same monotonicity assumption as :func:`measure_losses`).
    ``known`` maps (weight class, activation class) to a mean cosine already measured on the
    same ``sentences`` (the quality of a class does not depend on the engine); it is used and
    extended. Columns ``weights, activations, w_class, a_class, edp_pj_s, mean_cosine,
    measured, meets``.
    """
    plans = uniform_plans(tables)
    need = {u.qclass: u for u in reversed(plans) if u.edp <= edp_limit}
    order = sorted(
        need,
        key=lambda c: (
            -(kept_fraction(TasdSeries.parse(c[0])) + kept_fraction(TasdSeries.parse(c[1])))
        ),
    )
    known = {} if known is None else known
    ref: np.ndarray | None = None
    cos_of: dict[tuple[str, str], float] = {}
    failed: list[tuple[float, float]] = []
    for cls in order:
        kw, ka = (kept_fraction(TasdSeries.parse(x)) for x in cls)
        if implied and any(kw <= a and ka <= b for a, b in failed):
            continue
        if cls not in known or weight_sparsity > 0.0:
            if ref is None:
                ref = model.encode(sentences)
            known[cls] = plan_cosine(model, sentences, tables, need[cls].idx, weight_sparsity, ref)
        cos_of[cls] = known[cls]
        if cos_of[cls] < target:
            failed.append((kw, ka))
    rows = []
    for u in plans:
        c = cos_of.get(u.qclass, float("nan"))
        rows.append(
            {
                "weights": u.weights,
                "activations": u.activations,
                "w_class": u.qclass[0],
                "a_class": u.qclass[1],
                "edp_pj_s": u.edp,
                "mean_cosine": c,
                "measured": u.qclass in cos_of,
                "meets": bool(c >= target),
            }
        )
    return pd.DataFrame(rows)
