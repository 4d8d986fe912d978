"""The command line imports heavy libraries only in the commands that use them (issue 15), and
the names that moved when spec/ was split keep their old import paths.

Each check runs in a fresh interpreter (this test process has imported everything already) and
compares the set of loaded modules, so it can fail without any timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Libraries that ``--help`` (and ``import testy_model.cli``) must not load.
HEAVY = ("numpy", "pandas", "matplotlib", "networkx", "onnx", "scipy", "dask", "pydantic")


def _loaded_after(code: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``code`` in a new interpreter."""
    probe = (
        "import sys, json, io, contextlib\n"
        f"{code}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_cli_loads_no_heavy_library() -> None:
    loaded = _loaded_after("import testy_model.cli")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_loads_no_heavy_library() -> None:
    code = (
        "from testy_model.cli import main\n"
        "sys.argv = ['testy-model', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass"
    )
    loaded = _loaded_after(code)
    assert "typer" in loaded  # the probe did run the command line
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_every_command_registers_for_help() -> None:
    """``--help`` lists every command of ``COMMAND_MODULES`` (commands load lazily)."""
    from typer.testing import CliRunner

    from testy_model.cli import app
    from testy_model.cli.app import COMMAND_MODULES

    res = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    listed = {line.split()[1] for line in res.output.splitlines() if line.startswith("│ ")}
    assert set(COMMAND_MODULES) <= listed, sorted(set(COMMAND_MODULES) - listed)


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("did_you_mean", "testy_model.spec.located"),
        ("spec_error_at", "testy_model.spec.located"),
        ("SpecWarning", "testy_model.spec.located"),
        ("Cur", "testy_model.spec.cursor"),
        ("Doc", "testy_model.spec.cursor"),
        ("apply_overrides", "testy_model.spec.overrides"),
        ("parse_override", "testy_model.spec.overrides"),
        ("load_arch", "testy_model.spec.arch_loader"),
    ],
)
def test_moved_names_keep_their_yaml_io_path(name: str, module: str) -> None:
    import importlib

    from testy_model.spec import yaml_io

    assert getattr(yaml_io, name) is getattr(importlib.import_module(module), name)


def test_split_modules_keep_their_public_paths() -> None:
    from testy_model.spec import arch_loader, arch_overrides, sparse_optimizations, sparseloop

    assert arch_loader.apply_arch_overrides is arch_overrides.apply_arch_overrides
    assert arch_loader.scale_pes is arch_overrides.scale_pes
    assert sparseloop.SparseOptimizations is sparse_optimizations.SparseOptimizations
    assert sparseloop.sparse_opts_from_support is sparse_optimizations.sparse_opts_from_support


def test_unknown_yaml_io_name_is_an_attribute_error() -> None:
    from testy_model.spec import yaml_io

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = yaml_io.no_such_name
