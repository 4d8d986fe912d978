"""A seeded mutation fuzzer of every input kind, run in-process through the CLI (typer's runner).

Each *kind* has seed files (shipped and shared inputs) and the command lines that read a file of
that kind: ``validate`` plus the command that uses it (``eval``, ``sweep``). A mutant is a seed with
a few seeded edits: bytes inserted, deleted or replaced; a scalar replaced by a hostile value
(NaN, infinities, numbers past float range, negative or null sizes, huge patterns, 70,000-character
strings, python tags ...); a line duplicated (duplicate keys) or deleted; a key misspelt; an alias
bomb, 1,000-deep nesting or a 1 MiB+ string appended. ``generated`` documents (random trees of the
keys the loaders look for, hostile scalars) cover inputs unlike any shipped file.

Every command run must end with exit code 0 or 2, never a traceback; on 2, stderr is exactly one
line ``error: ...`` naming one of the run's files; on 0, no number printed or written is NaN or
infinite, and every warning is one line. A run that uses more than :data:`CPU_LIMIT_S` seconds of
CPU is a hang (a CPU-time interval timer, not the wall clock, so a busy shared machine cannot make a
run count as a hang).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import resource
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from typer.testing import CliRunner

from testy_model.cli import app

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
STUDY = SHARED / "sparseloop_stc_study/WD-0.5/M512-K1024-N256-IAD0.27-WD0.5/STC-RF2x-24-bandwidth"
V3 = SHARED / "timeloop_v3_cases"
TL = SHARED / "timeloop_examples"

#: CPU seconds one command run may use before it counts as a hang.
CPU_LIMIT_S = 20.0

HOSTILE = [
    "-1",
    "0",
    "-0.5",
    "1e999",
    "-1e999",
    ".nan",
    ".inf",
    "-.inf",
    "99999999999999999999",
    "1e308",
    "1e-320",
    "null",
    "~",
    "''",
    "[]",
    "{}",
    "true",
    "2:4",
    "5:4",
    "0:4",
    "1:65536",
    "3:2048",
    "3.7",
    "0x7fffffffffffffff",
    "1_000",
    "2001-12-14",
    "!!binary aGVsbG8=",
    "!!python/object/apply:os.system ['true']",
    "!Foo",
    "*undefined",
    "'" + "x" * 70_000 + "'",
    "[" * 1000 + "]" * 1000,
    "{a: 1, a: 2}",
    "DRAMM",
    "mapperr",
    "[1, [2, [3]]]",
]
ALIAS_BOMB = "\n".join(
    ["bomb0: &b0 [x, x, x, x, x, x, x, x, x, x]"]
    + [f"bomb{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]" for i in range(1, 9)]
)
APPENDS = [
    "\n" + ALIAS_BOMB + "\n",
    "\ndeep: " + "[" * 1000 + "]" * 1000 + "\n",
    "\nhuge: '" + "y" * (1 << 20) + "'\n",
    "\nlots: [" + ",".join("1" for _ in range(250_000)) + "]\n",
]
ALPHABET = ":-[]{}&*!#|>'\"\n  ,.0123456789abcxyzMNK=+~"


@dataclass(frozen=True)
class Kind:
    """One input kind: seed files and the command lines reading a file of the kind.

    ``commands(path, out_dir)`` -> list of argument lists; ``region`` limits mutations to the
    text after that marker (e.g. the ``sparse_optimizations`` block of an aggregated input).
    """

    name: str
    seeds: tuple[Path, ...]
    commands: Callable[[Path, Path], list[list[str]]]
    region: str | None = None
    companions: tuple[Path, ...] = ()


def _study_eval(extra: list[str]) -> list[str]:
    return ["eval", "--arch", str(STUDY / "aggregated_input.yaml"), *extra]


def kinds(tmp: Path) -> list[Kind]:
    """Every input kind the tool reads, with its seeds (shipped and shared files)."""
    plan = tmp / "seed_plan.yaml"
    plan.write_text(
        "plan:\n  default: {weights: '2:4', activations: dense}\n"
        "  layers:\n    fc1: {weights: '2:8+1:8'}\n    conv1: {weights: dense}\n"
    )
    sweep = tmp / "seed_sweep.yaml"
    sweep.write_text(
        "sweep:\n"
        f"  arch: {ROOT / 'arch_specs/stc_2of4_tasd.yaml'}\n"
        "  grid:\n    levels.SMEM.depth: [2048, 4096]\n    levels.DRAM.read_bandwidth: [16]\n"
        f"  networks: [{ROOT / 'examples/networks/tiny_cnn.yaml'}]\n"
        "  weight_sparsity: [0.5]\n  plan: 'W=2:4,A=dense'\n  objective: edp\n"
        "  mapper: false\n"
    )
    stc = str(ROOT / "arch_specs/stc_2of4_tasd.yaml")
    gemm = str(ROOT / "mappings/problem_M512-K1024-N256.yaml")
    tc = str(ROOT / "arch_specs/tc_dense.yaml")
    net = str(ROOT / "examples/networks/tiny_cnn.yaml")
    b01 = V3 / "b01_sws_C16M64R3S3P28Q28"

    def v(p: Path, _o: Path) -> list[list[str]]:
        return [["validate", str(p)]]

    return [
        Kind(
            "aggregated_v03",
            (STUDY / "aggregated_input.yaml",),
            lambda p, o: [
                ["validate", str(p)],
                [
                    "eval",
                    "--arch",
                    str(p),
                    "--mapping",
                    str(STUDY / "map.yaml"),
                    "--json",
                    str(o / "r.json"),
                ],
            ],
        ),
        Kind(
            "arch_v03",
            (b01 / "arch.yaml",),
            lambda p, o: [
                ["validate", str(p), str(b01 / "problem.yaml")],
                [
                    "eval",
                    "--arch",
                    str(p),
                    "--network",
                    str(b01 / "problem.yaml"),
                    "--json",
                    str(o / "r.json"),
                ],
            ],
        ),
        Kind(
            "arch_v04",
            (TL / "simple_weight_stationary/arch.yaml", TL / "eyeriss_like/arch.yaml"),
            lambda p, o: [
                ["validate", str(p), str(TL / "default_problem.yaml")],
                [
                    "eval",
                    "--arch",
                    str(p),
                    "--network",
                    str(TL / "default_problem.yaml"),
                    "--json",
                    str(o / "r.json"),
                ],
            ],
        ),
        Kind(
            "arch_ours",
            (ROOT / "arch_specs/stc_2of4_tasd.yaml", ROOT / "arch_specs/highlight.yaml"),
            lambda p, o: [
                ["validate", str(p)],
                [
                    "eval",
                    "--arch",
                    str(p),
                    "--network",
                    gemm,
                    "--plan",
                    "W=2:4",
                    "--json",
                    str(o / "r.json"),
                ],
            ],
        ),
        Kind(
            "problem",
            (ROOT / "mappings/problem_M512-K1024-N256.yaml", TL / "default_problem.yaml"),
            lambda p, o: [
                ["validate", str(p)],
                ["eval", "--arch", tc, "--network", str(p), "--json", str(o / "r.json")],
            ],
        ),
        Kind(
            "mapping",
            (ROOT / "mappings/tc_dense_M512-K1024-N256.yaml",),
            lambda p, o: [
                ["validate", tc, gemm, str(p)],
                [
                    "eval",
                    "--arch",
                    tc,
                    "--network",
                    gemm,
                    "--mapping",
                    str(p),
                    "--json",
                    str(o / "r.json"),
                ],
            ],
        ),
        Kind(
            "mapping_sparseloop",
            (STUDY / "map.yaml",),
            lambda p, o: [
                ["validate", str(STUDY / "aggregated_input.yaml"), str(p)],
                _study_eval(["--mapping", str(p), "--json", str(o / "r.json")]),
            ],
        ),
        Kind(
            "sparse_optimizations",
            (STUDY / "aggregated_input.yaml",),
            lambda p, o: [
                ["validate", str(p)],
                [
                    "eval",
                    "--arch",
                    str(p),
                    "--mapping",
                    str(STUDY / "map.yaml"),
                    "--json",
                    str(o / "r.json"),
                ],
            ],
            region="sparse_optimizations:",
        ),
        Kind(
            "sparse_opt_file",
            tuple(sorted(V3.glob("*/sparse_opt.yaml")))[:2],
            v,
        ),
        Kind(
            "ert",
            (STUDY / "ERT.yaml", b01 / "ERT.yaml"),
            lambda p, o: [
                ["validate", str(p)],
                _study_eval(
                    [
                        "--mapping",
                        str(STUDY / "map.yaml"),
                        "--ert",
                        str(p),
                        "--json",
                        str(o / "r.json"),
                    ]
                ),
            ],
        ),
        Kind(
            "art",
            (STUDY / "ART.yaml", b01 / "ART.yaml"),
            lambda p, o: [
                ["validate", str(p)],
                _study_eval(
                    [
                        "--mapping",
                        str(STUDY / "map.yaml"),
                        "--art",
                        str(p),
                        "--json",
                        str(o / "r.json"),
                    ]
                ),
            ],
        ),
        Kind(
            "network",
            (ROOT / "examples/networks/tiny_cnn.yaml", ROOT / "examples/search/mlp.yaml"),
            lambda p, o: [
                ["validate", str(p)],
                ["eval", "--arch", stc, "--network", str(p), "--json", str(o / "r.json")],
            ],
        ),
        Kind(
            "plan",
            (plan,),
            lambda p, o: [
                ["validate", str(p)],
                [
                    "eval",
                    "--arch",
                    stc,
                    "--network",
                    net,
                    "--plan",
                    str(p),
                    "--json",
                    str(o / "r.json"),
                ],
            ],
        ),
        Kind(
            "sweep",
            (sweep,),
            lambda p, o: [
                ["validate", str(p)],
                [
                    "sweep",
                    str(p),
                    "--out",
                    str(o / "s.csv"),
                    "--backend",
                    "serial",
                    "--no-progress",
                ],
            ],
        ),
    ]


def absolutise(text: str, folder: Path) -> str:
    """Relative file references of a seed (tensors, problems, sweep bases) made absolute, so a
    mutant written elsewhere still finds them."""

    def fix(m: re.Match[str]) -> str:
        ref = m.group(2)
        path, sep, key = ref.partition(":")
        if path.startswith("/") or not (folder / path).exists():
            return m.group(0)
        return f"{m.group(1)}{(folder / path).resolve()}{sep}{key}"

    return re.sub(
        r"((?:weight_tensor|activation_tensor|problem|arch):\s*)([^\s#{}\[\],]+)", fix, text
    )


# --------------------------------------------------------------------------------------------
# mutation
# --------------------------------------------------------------------------------------------
_SCALAR_RE = re.compile(r"(?m)(:[ \t]+|^[ \t]*-[ \t]+)([^\s#\[\]{}][^\n#]*?)[ \t]*$")
_KEY_RE = re.compile(r"(?m)^[ \t-]*([A-Za-z_][\w-]*):")


def mutate(text: str, rng: random.Random, region: str | None = None) -> tuple[str, str]:
    """One mutant of ``text`` (and the name of the operator used)."""
    lo = max(0, text.find(region)) if region and region in text else 0
    op = rng.choice(
        [
            "bytes",
            "bytes",
            "value",
            "value",
            "value",
            "dupline",
            "delline",
            "key",
            "append",
            "indent",
        ]
    )
    if op == "bytes":
        for _ in range(rng.randint(1, 4)):
            i = rng.randint(lo, len(text))
            cut = rng.choice([0, 0, 1, 2, 5])
            new = "".join(rng.choice(ALPHABET) for _ in range(rng.choice([0, 1, 1, 3])))
            text = text[:i] + new + text[i + cut :]
    elif op == "value":
        spots = [m for m in _SCALAR_RE.finditer(text) if m.start() >= lo]
        if spots:
            m = rng.choice(spots)
            text = text[: m.start(2)] + rng.choice(HOSTILE) + text[m.end(2) :]
    elif op in ("dupline", "delline", "indent"):
        lines = text.split("\n")
        first = text[:lo].count("\n")
        i = rng.randint(first, max(first, len(lines) - 1))
        if op == "dupline":
            lines.insert(i, lines[i])
        elif op == "delline":
            del lines[i]
        else:
            lines[i] = " " * rng.choice([1, 2, 3, 4]) + lines[i]
        text = "\n".join(lines)
    elif op == "key":
        keys = [m for m in _KEY_RE.finditer(text) if m.start() >= lo]
        if keys:
            m = rng.choice(keys)
            k = m.group(1)
            j = rng.randrange(len(k))
            typo = k[:j] + k[j + 1 :] + (k[j] if j + 1 < len(k) else "x")
            text = text[: m.start(1)] + typo + text[m.end(1) :]
    else:
        text = text + rng.choice(APPENDS)
    return text, op


# --------------------------------------------------------------------------------------------
# generated documents
# --------------------------------------------------------------------------------------------
VOCAB = [
    "architecture",
    "nodes",
    "subtree",
    "local",
    "name",
    "class",
    "attributes",
    "depth",
    "width",
    "datawidth",
    "spatial",
    "meshX",
    "meshY",
    "constraints",
    "dataspace",
    "keep",
    "bypass",
    "sparsity",
    "A",
    "B",
    "patterns",
    "tasd_unit",
    "count",
    "problem",
    "shape",
    "dimensions",
    "data_spaces",
    "projection",
    "instance",
    "densities",
    "density",
    "distribution",
    "mapping",
    "target",
    "type",
    "factors",
    "permutation",
    "split",
    "M",
    "K",
    "N",
    "network",
    "layers",
    "gemm",
    "conv2d",
    "stride",
    "read_bandwidth",
    "ERT",
    "ART",
    "tables",
    "actions",
    "energy",
    "area",
    "plan",
    "default",
    "weights",
    "activations",
    "sweep",
    "arch",
    "grid",
    "networks",
    "sparse_optimizations",
    "targets",
    "representation-format",
    "action-optimization",
]
TOPS = [
    "architecture",
    "problem",
    "mapping",
    "network",
    "ERT",
    "ART",
    "plan",
    "sweep",
    "sparse_optimizations",
]


def generated(rng: random.Random) -> str:
    """A random YAML document: one top-level block of a real kind holding a random tree of the
    loaders' keys and hostile scalars."""

    def node(depth: int) -> str:
        r = rng.random()
        if depth > 3 or r < 0.4:
            return rng.choice([*HOSTILE[:30], "DRAM", "intmac", "temporal", "K=2 M1", "8", "A"])
        if r < 0.7:
            items = [node(depth + 1) for _ in range(rng.randint(0, 4))]
            return "[" + ", ".join(items) + "]"
        pairs = [f"{rng.choice(VOCAB)}: {node(depth + 1)}" for _ in range(rng.randint(0, 5))]
        return "{" + ", ".join(pairs) + "}"

    return f"{rng.choice(TOPS)}: {node(0)}\n"


# --------------------------------------------------------------------------------------------
# running and checking
# --------------------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the CPU-time timer: a command run used more than :data:`CPU_LIMIT_S`."""


@contextlib.contextmanager
def cpu_guard(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` once this process has used ``seconds`` more CPU time."""

    def on_timer(signum: int, frame: object) -> None:
        raise Hang()

    old = signal.signal(signal.SIGPROF, on_timer)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


_NONFINITE = re.compile(r"(?i)(?<![\w.])[-+]?(nan|inf|infinity)(?![\w])")


def _json_nonfinite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_json_nonfinite(v) for v in value.values())
    if isinstance(value, list):
        return any(_json_nonfinite(v) for v in value)
    return False


@dataclass
class Stats:
    """What a fuzz run saw."""

    mutants: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    accepted: int = 0
    rejected: int = 0
    operators: Counter[str] = field(default_factory=Counter)
    max_cpu_s: float = 0.0
    max_cpu_what: str = ""
    failures: list[str] = field(default_factory=list)
    hangs: int = 0
    tracebacks: int = 0
    nonfinite: int = 0
    messages: Counter[str] = field(default_factory=Counter)

    def fail(self, what: str, detail: str) -> None:
        self.failures.append(f"{what}: {detail[:400]}")


def check_run(stats: Stats, args: list[str], files: list[Path], out_dir: Path, what: str) -> None:
    """Run one command in-process and check it (module docstring)."""
    for f in out_dir.glob("*"):
        if f.is_file():
            f.unlink()
    runner = CliRunner()
    t0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        with cpu_guard(CPU_LIMIT_S):
            res = runner.invoke(app, args, catch_exceptions=True)
    except Hang:
        stats.hangs += 1
        stats.fail(what, f"hang: more than {CPU_LIMIT_S} CPU s: {' '.join(args)[:200]}")
        return
    t1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime)
    if cpu > stats.max_cpu_s:
        stats.max_cpu_s, stats.max_cpu_what = cpu, what
    stats.runs += 1
    err = res.stderr if res.stderr_bytes is not None else ""
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        stats.tracebacks += 1
        stats.fail(what, f"traceback {type(res.exception).__name__}: {res.exception}")
        return
    if res.exit_code not in (0, 2):
        stats.fail(what, f"exit code {res.exit_code}: {err[-300:]}")
        return
    lines = [x for x in err.splitlines() if x.strip()]
    if res.exit_code == 2:
        stats.rejected += 1
        errors = [x for x in lines if x.startswith("error: ")]
        if len(errors) != 1 or lines[-1] != errors[0]:
            stats.fail(what, f"expected one 'error:' line, got {lines[-3:]}")
            return
        msg = errors[0]
        if not any(str(f) in msg or f.name in msg for f in files):
            stats.fail(what, f"error names none of the run's files: {msg}")
        stats.messages[re.sub(r"\S*/", "", msg)[:90]] += 1
        return
    stats.accepted += 1
    bad = [x for x in lines if not x.startswith("warning: ")]
    if bad:
        stats.fail(what, f"stderr lines that are not one-line warnings: {bad[:3]}")
    if _NONFINITE.search(res.stdout):
        stats.nonfinite += 1
        stats.fail(what, f"NaN/inf printed: {_NONFINITE.search(res.stdout).group(0)!r}")
    for out in out_dir.glob("*.json"):
        if _json_nonfinite(json.loads(out.read_text())):
            stats.nonfinite += 1
            stats.fail(what, f"NaN/inf in {out.name}")


def fuzz(kind_list: list[Kind], per_kind: int, tmp: Path, seed: int = 0) -> Stats:
    """``per_kind`` seeded mutants of every kind (and ``per_kind`` generated documents), each
    run through the kind's commands; returns what was seen."""
    stats = Stats()
    out_dir = tmp / "out"
    out_dir.mkdir(exist_ok=True)
    for kind in kind_list:
        texts = [absolutise(s.read_text(), s.parent) for s in kind.seeds]
        for i in range(per_kind):
            rng = random.Random(f"{seed}:{kind.name}:{i}")
            src = rng.randrange(len(texts))
            text, op = mutate(texts[src], rng, kind.region)
            path = tmp / f"{kind.name}_{i}.yaml"
            path.write_text(text, encoding="utf-8")
            stats.mutants[kind.name] += 1
            stats.operators[op] += 1
            for args in kind.commands(path, out_dir):
                files = [Path(a) for a in args if a.endswith(".yaml")]
                check_run(stats, args, files, out_dir, f"{kind.name}#{i} ({op})")
            path.unlink()
    gen_kinds = {k.name: k for k in kind_list}
    for i in range(per_kind):
        rng = random.Random(f"{seed}:generated:{i}")
        text = generated(rng)
        path = tmp / f"generated_{i}.yaml"
        path.write_text(text, encoding="utf-8")
        stats.mutants["generated"] += 1
        kind = gen_kinds[rng.choice(sorted(gen_kinds))]
        for args in kind.commands(path, out_dir):
            files = [Path(a) for a in args if a.endswith(".yaml")]
            check_run(stats, args, files, out_dir, f"generated#{i} via {kind.name}")
        path.unlink()
    return stats


def report(stats: Stats) -> str:
    """A short summary (printed by the tests with ``-s``)."""
    return (
        f"mutants {sum(stats.mutants.values())} {dict(stats.mutants)}; runs {stats.runs} "
        f"(accepted {stats.accepted}, rejected {stats.rejected}); tracebacks {stats.tracebacks}, "
        f"hangs {stats.hangs}, NaN/inf {stats.nonfinite}; max CPU per run {stats.max_cpu_s:.2f} s "
        f"({stats.max_cpu_what}); operators {dict(stats.operators)}; at "
        f"{time.strftime('%H:%M:%S')}"
    )
