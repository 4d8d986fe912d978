"""Shared CLI behaviour: piped output is not cut at 80 columns."""

import subprocess
import sys


def test_piped_tables_keep_whole_numbers() -> None:
    """Through a pipe (no terminal) rich would default to 80 columns and cut cells ("75,497,4…").
    BERT-base's MLP up-projection at 128 tokens is 3072·128·768 = 301,989,888 MACs; the whole
    number must reach the pipe, and no cell may be elided."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from testy_model.cli import main; main()",
            "show",
            "network",
            "bert-base",
            "--seq-len",
            "128",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "301,989,888" in out
    assert "…" not in out
