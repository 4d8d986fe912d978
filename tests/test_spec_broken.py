"""Table-driven broken-file tests: every bad file gives a SpecError naming file, line, key path.

Each file in tests/broken/ marks the line the error must point at with a ``# ERROR`` comment; the
table gives the loader to use and the key path the message must name. The expected line is read
from the file itself (independently of the loader's line tracking).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testy_model.cli import app
from testy_model.errors import MappingError, SpecError
from testy_model.spec import (
    load_any,
    load_arch,
    load_mapping,
    load_network,
    load_problem,
    validate_mapping,
)
from testy_model.spec.accelergy import load_ert
from testy_model.spec.sparseloop import load_sparse_optimizations

HERE = Path(__file__).resolve().parent
BROKEN = HERE / "broken"
ROOT = HERE.parent


def _validate(path: Path) -> None:
    """Load a mapping against the shipped dense engine and the M512-K1024-N256 GEMM, validate."""
    arch = load_arch(ROOT / "arch_specs" / "tc_dense.yaml")
    prob = load_problem(ROOT / "mappings" / "problem_M512-K1024-N256.yaml")
    validate_mapping(load_mapping(path, arch, prob), arch, prob)


LOADERS = {
    "arch": load_arch,
    "problem": load_problem,
    "mapping": _validate,
    "network": load_network,
    "any": load_any,
    "sparse": load_sparse_optimizations,
    "ert": load_ert,
}

# (file, loader, key path the message must name, fragment of the explanation)
CASES = [
    ("arch_depth_wrong_type.yaml", "arch", "architecture.nodes[2].attributes.depth", "integer"),
    ("arch_depth_negative.yaml", "arch", "architecture.nodes[2].attributes.depth", ">= 1"),
    ("arch_width_zero.yaml", "arch", "architecture.nodes[2].attributes.width", ">= 1"),
    ("arch_bandwidth_zero.yaml", "arch", "architecture.nodes[2].attributes.read_bandwidth", "> 0"),
    ("arch_mesh_negative.yaml", "arch", "architecture.nodes[3].spatial.meshX", ">= 1"),
    ("arch_pattern_5of4.yaml", "arch", "sparsity.A.patterns", "5:4"),
    ("arch_pattern_garbage.yaml", "arch", "sparsity.B.patterns", "N:M"),
    ("arch_sparsity_unknown_field.yaml", "arch", "sparsity.A.skipping", "Extra inputs"),
    ("arch_tasd_count_zero.yaml", "arch", "tasd_unit.count", "greater than or equal to 1"),
    ("arch_metadata_level_unknown.yaml", "arch", "sparsity", "GLB"),
    ("arch_python_object.yaml", "arch", "architecture.nodes[2].attributes.depth", "python"),
    ("arch_unknown_node_tag.yaml", "arch", "architecture.nodes[3]", "!Widget"),
    ("arch_syntax_error.yaml", "arch", "architecture.nodes[2].attributes.width", "syntax"),
    ("arch_nodes_not_list.yaml", "arch", "architecture.nodes", "expected a list"),
    ("arch_no_compute.yaml", "arch", "architecture.nodes", "no compute"),
    ("arch_duplicate_key.yaml", "arch", "architecture.nodes[2].attributes", "duplicate key"),
    ("arch_duplicate_level.yaml", "arch", "architecture.nodes[2].name", "duplicate level"),
    ("arch_missing_block.yaml", "arch", "(top level)", "architecture"),
    ("arch_v03_mesh_mismatch.yaml", "arch", "local[0].attributes.meshX", "4 instances"),
    ("arch_name_not_string.yaml", "arch", "architecture.nodes[2].name", "expected a string"),
    ("problem_bound_negative.yaml", "problem", "problem.instance.M", ">= 1"),
    ("problem_bound_float.yaml", "problem", "problem.instance.M", "integer"),
    ("problem_missing_bound.yaml", "problem", "problem.instance", "'K' has no bound"),
    ("problem_unknown_dim.yaml", "problem", "problem.shape.data_spaces[1].projection", "'X'"),
    ("problem_unknown_distribution.yaml", "problem", "densities.A.distribution", "lognormal"),
    ("problem_density_above_one.yaml", "problem", "densities.A.density", "between 0 and 1"),
    ("problem_pattern_5of4.yaml", "problem", "densities.A.pattern", "5:4"),
    ("problem_density_unknown_tensor.yaml", "problem", "densities.W", "unknown tensor"),
    ("mapping_unknown_level.yaml", "mapping", "mapping[4].target", "GLB"),
    ("mapping_bad_type.yaml", "mapping", "mapping[4].type", "temporall"),
    ("mapping_bad_factor_syntax.yaml", "mapping", "mapping[4].factors", "M=abc"),
    ("mapping_unknown_dimension.yaml", "mapping", "mapping[4].factors", "'X'"),
    ("mapping_factors_dont_multiply.yaml", "mapping", "mapping[0]", "multiply to 128"),
    ("mapping_tile_overflow.yaml", "mapping", "mapping[2]", "4096 words"),
    ("mapping_fanout_exceeded.yaml", "mapping", "mapping[2]", "512 instances"),
    ("mapping_keep_bypassed.yaml", "mapping", "mapping[0]", "bypasses"),
    ("mapping_keep_and_bypass.yaml", "mapping", "mapping[7]", "both kept and bypassed"),
    ("mapping_constraint_factor.yaml", "mapping", "mapping[4].factors", "constraint"),
    ("mapping_not_list.yaml", "mapping", "mapping", "expected a list"),
    ("network_missing_k.yaml", "network", "network.layers[0].gemm", "'K'"),
    ("network_two_kinds.yaml", "network", "network.layers[0]", "exactly one"),
    ("network_duplicate_layer.yaml", "network", "network.layers[1].name", "duplicate layer"),
    ("unknown_kind.yaml", "any", "(top level)", "cannot tell"),
    # second batch: kinds of breakage not covered above
    ("mapping_factor_typo.yaml", "mapping", "mapping[4].factors", "'K1O'"),
    ("mapping_duplicate_key.yaml", "mapping", "mapping[4]", "duplicate key 'factors'"),
    ("mapping_permutation_unknown_dim.yaml", "mapping", "mapping[4].permutation", "'X'"),
    ("mapping_keep_unknown_tensor.yaml", "mapping", "mapping[6].keep", "unknown tensor 'Q'"),
    ("arch_datawidth_above_width.yaml", "arch", "nodes[2].attributes.datawidth", "exceeds"),
    ("arch_bandwidth_negative.yaml", "arch", "attributes.write_bandwidth", "> 0"),
    ("arch_container_no_name.yaml", "arch", "architecture.nodes[3]", "'name'"),
    ("arch_empty.yaml", "arch", "(top level)", "'architecture'"),
    ("arch_top_level_list.yaml", "arch", "(top level)", "expected a mapping"),
    ("arch_not_utf8.yaml", "arch", "(top level)", "not UTF-8"),
    ("sparse_unknown_format.yaml", "arch", "ranks[0].format", "'CSR'"),
    ("sparse_unknown_action.yaml", "sparse", "action_optimization[0].type", "skiping"),
    ("ert_energy_not_number.yaml", "ert", "ERT.tables[0].actions[0].energy", "'lots'"),
    ("problem_density_negative.yaml", "problem", "densities.A.density", ">= 0"),
    ("problem_read_write_not_bool.yaml", "problem", "data_spaces[2].read_write", "true or false"),
    ("network_layers_not_list.yaml", "network", "network.layers", "expected a list"),
    ("arch_pattern_not_list.yaml", "arch", "sparsity.B.patterns", "list of them, got 24"),
]


def _marked_line(path: Path) -> int:
    # bytes, so that the non-UTF-8 file can be read too
    raw = path.read_bytes().split(b"\n")
    lines = [i + 1 for i, t in enumerate(raw) if b"# ERROR" in t]
    assert len(lines) == 1, f"{path.name} must mark exactly one line with '# ERROR'"
    return lines[0]


def test_enough_cases_and_every_file_listed() -> None:
    files = sorted(p.name for p in BROKEN.glob("*.yaml"))
    assert len(CASES) >= 25
    assert sorted(c[0] for c in CASES) == files


@pytest.mark.parametrize(
    ("name", "loader", "key_path", "fragment"), CASES, ids=[c[0] for c in CASES]
)
def test_broken_file(name: str, loader: str, key_path: str, fragment: str) -> None:
    path = BROKEN / name
    line = _marked_line(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            LOADERS[loader](path)
        except SpecError as err:
            msg = str(err)
            if name.startswith("mapping_") and loader == "mapping" and "multiply" in fragment:
                assert isinstance(err, MappingError)
            assert err.file is not None and Path(err.file).name == name, msg
            assert err.line == line, msg
            assert msg.startswith(f"{path}:{line}: "), msg
            assert err.key_path is not None and key_path in err.key_path, msg
            assert fragment in msg, msg
        except Exception as err:
            pytest.fail(f"{name}: raised {type(err).__name__} instead of SpecError: {err}")
        else:
            pytest.fail(f"{name}: no error raised")


# Files the CLI's ``validate`` can take on their own (a mapping needs its arch and problem).
CLI_CASES = [c for c in CASES if c[1] in ("arch", "problem", "network", "any", "sparse", "ert")]


@pytest.mark.parametrize("name", [c[0] for c in CLI_CASES])
def test_cli_validate_broken_file_one_line_exit_2(name: str) -> None:
    """``testy-model validate FILE`` on a broken file: exit code 2 and one line naming file:line."""
    path = BROKEN / name
    res = CliRunner().invoke(app, ["validate", str(path)])
    out = res.output.strip()
    assert res.exit_code == 2, out
    assert len(out.splitlines()) == 1, out
    assert out.startswith(f"error: {path}:{_marked_line(path)}: "), out


@pytest.mark.parametrize("name", [c[0] for c in CASES if c[1] == "mapping"])
def test_cli_eval_broken_mapping_one_line_exit_2(name: str) -> None:
    """``testy-model eval`` with a broken mapping file: exit code 2 and one line naming it."""
    path = BROKEN / name
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "--arch",
            str(ROOT / "arch_specs" / "tc_dense.yaml"),
            "--mapping",
            str(path),
            "--network",
            str(ROOT / "mappings" / "problem_M512-K1024-N256.yaml"),
        ],
    )
    out = res.output.strip()
    assert res.exit_code == 2, out
    assert len(out.splitlines()) == 1, out
    assert out.startswith(f"error: {path}:"), out
