"""Command-line options shared by several commands (one definition each).

``ConventionsOption`` / ``StudyConventionsOption``: ``--conventions timeloop|sparseloop-2022``
(:class:`~testy_model.spec.conventions.Conventions`), default ``timeloop`` (``eval``, ``map``,
``search``, ``sweep``) or ``sparseloop-2022`` (``study``, the MICRO 2022 artifact's cases).
Commands read the value with ``Conventions.parse``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from testy_model.spec.conventions import CONVENTION_NAMES, Conventions

_HELP = (
    "counting conventions: 'timeloop' (v3.0.3: stream: lists ignored, first output fill not "
    "counted) or 'sparseloop-2022' (the MICRO 2022 artifact: streamed tensors and first output "
    f"fills counted); one of {list(CONVENTION_NAMES)}"
)

#: ``--conventions`` defaulting to ``timeloop``.
ConventionsOption = Annotated[
    str, typer.Option("--conventions", help=_HELP + " [default: timeloop]", show_default=False)
]
#: ``--conventions`` defaulting to ``sparseloop-2022`` (``study``).
StudyConventionsOption = Annotated[
    str,
    typer.Option("--conventions", help=_HELP + " [default: sparseloop-2022]", show_default=False),
]
#: ``--ert`` / ``--art``: Accelergy tables overriding the architecture's numbers.
ErtOption = Annotated[str | None, typer.Option("--ert", help="Accelergy ERT.yaml (pJ per action)")]
ArtOption = Annotated[
    str | None, typer.Option("--art", help="Accelergy ART.yaml (µm² per instance)")
]

#: ``--set KEY.PATH=VALUE``: architecture overrides (``spec.arch_overrides``), repeatable.
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY.PATH=VALUE",
        help="architecture override (repeatable; bandwidths in words/cycle, as in the file)",
    ),
]

DEFAULT_CONVENTIONS = Conventions.TIMELOOP.value
STUDY_CONVENTIONS = Conventions.SPARSELOOP_2022.value
