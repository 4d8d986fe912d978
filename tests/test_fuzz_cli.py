"""The seeded mutation fuzzer (tests/fuzzing.py) over every input kind, through the CLI.

Replaces the 60-second wall-time loader fuzz: runs are counted by examples, not seconds, and each
command run is checked (exit code 0 or 2, never a traceback; one ``error:`` line naming a file of
the run; no NaN or infinity printed or written; warnings one line each; at most
``fuzzing.CPU_LIMIT_S`` CPU seconds per run).
"""

from __future__ import annotations

from pathlib import Path

import fuzzing
import pytest

#: Mutants per kind in the default run (quick) and in each shard of the slow run (CI): 14 kinds
#: plus as many generated documents, so the slow run checks SHARDS x 15 x FULL = 4 x 15 x 34 =
#: 2,040 inputs, in shards with their own seeds so that ``pytest -n`` spreads them over the cores.
QUICK = 1
FULL = 34
SHARDS = 4


def _run(tmp_path: Path, per_kind: int, seed: int) -> fuzzing.Stats:
    kinds = fuzzing.kinds(tmp_path)
    stats = fuzzing.fuzz(kinds, per_kind, tmp_path, seed=seed)
    print(fuzzing.report(stats))
    # every kind got its mutants, and the generated documents theirs
    assert set(stats.mutants) == {k.name for k in kinds} | {"generated"}
    assert all(n == per_kind for n in stats.mutants.values())
    return stats


def _assert_clean(stats: fuzzing.Stats) -> None:
    assert stats.tracebacks == 0, stats.failures[:5]
    assert stats.hangs == 0, stats.failures[:5]
    assert stats.nonfinite == 0, stats.failures[:5]
    assert stats.failures == [], stats.failures[:10]


def test_seeds_are_accepted(tmp_path: Path) -> None:
    """Every seed runs clean unmutated, so mutants start from inputs the tool accepts."""
    stats = fuzzing.Stats()
    out = tmp_path / "out"
    out.mkdir()
    for kind in fuzzing.kinds(tmp_path):
        for i, seed in enumerate(kind.seeds):
            p = tmp_path / f"seed_{kind.name}_{i}.yaml"
            p.write_text(fuzzing.absolutise(seed.read_text(), seed.parent))
            for args in kind.commands(p, out):
                fuzzing.check_run(stats, args, [p], out, f"seed {kind.name} {seed}")
    _assert_clean(stats)
    assert stats.rejected == 0 and stats.accepted == stats.runs > 0


def test_fuzz_quick(tmp_path: Path) -> None:
    _assert_clean(_run(tmp_path, QUICK, seed=101))


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_fuzz_every_kind_2040_inputs(tmp_path: Path, shard: int) -> None:
    stats = _run(tmp_path, FULL, seed=shard)
    assert sum(stats.mutants.values()) * SHARDS >= 2000
    # the mutants exercise both outcomes (not everything rejected at the first byte)
    assert stats.accepted >= 100 // SHARDS and stats.rejected >= 1000 // SHARDS
    _assert_clean(stats)
