"""Dotted-key overrides on typed (frozen) models: ``--set levels.GLB.depth=4096``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from testy_model.errors import SpecError
from testy_model.spec.located import format_path
from testy_model.spec.yaml_io import parse_yaml_text

# --------------------------------------------------------------------------------------------
_OVERRIDE_ALIASES = {"macs": "instances"}


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"levels.GLB.depth=4096"`` into ``(["levels", "GLB", "depth"], 4096)``.

    The value is read as YAML with this module's loader (``[1:4,2:4]`` -> ``["1:4", "2:4"]``).
    """
    if "=" not in text:
        raise SpecError(f"override {text!r}: expected KEY.PATH=VALUE", key_path=None)
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise SpecError(f"override {text!r}: empty key path")
    try:
        value, _ = parse_yaml_text(raw, f"override {text!r}")
    except SpecError as err:
        raise SpecError(f"override {text!r}: cannot read the value ({err.problem})") from None
    return parts, value


def _descend(node: Any, parts: list[str], text: str, model_fields: Any) -> None:
    """Set ``parts`` inside the dumped model tree ``node`` (in place)."""
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        idx = None
        for i, item in enumerate(node):
            if isinstance(item, dict) and item.get("name") == head:
                idx = i
        if idx is None and head.lstrip("-").isdigit() and -len(node) <= int(head) < len(node):
            idx = int(head)
        if idx is None:
            names = [item.get("name") for item in node if isinstance(item, dict)]
            raise SpecError(
                f"override {text!r}: no entry {head!r}; valid names are {names} "
                f"(or an index 0..{len(node) - 1})"
            )
        if not rest:
            raise SpecError(f"override {text!r}: cannot replace a whole entry; name a field")
        _descend(node[idx], rest, text, model_fields)
        return
    if not isinstance(node, dict):
        raise SpecError(f"override {text!r}: {head!r} is below a plain value")
    head = head if head in node else _OVERRIDE_ALIASES.get(head, head)
    if head not in node:
        raise SpecError(f"override {text!r}: unknown key {head!r}; valid keys are {sorted(node)}")
    if rest:
        if node[head] is None:
            raise SpecError(f"override {text!r}: {head!r} is not set in this spec")
        _descend(node[head], rest, text, model_fields)
    else:
        node[head] = model_fields


def _lists(node: Any) -> Any:
    """A model as a mutable tree: models -> dicts of their fields, tuples -> lists; other values
    (``NMPattern`` ...) kept as they are so re-validation sees the same objects."""
    if isinstance(node, BaseModel):
        return {k: _lists(getattr(node, k)) for k in type(node).model_fields}
    if isinstance(node, dict):
        return {k: _lists(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_lists(v) for v in node]
    return node


def apply_overrides(model: BaseModel, overrides: Iterable[str] | None) -> Any:
    """Apply dotted-key overrides to a typed (frozen) model; return a new validated model.

    Keys are the model's own field names; list entries with a ``name`` are addressed by name
    (``levels.GLB.depth=4096``) or index; ``macs`` is an alias of ``instances``. A bad key or value
    raises :class:`SpecError` naming the override and the valid choices.
    """
    if not overrides:
        return model
    tree = _lists(model)
    for text in overrides:
        parts, value = parse_override(text)
        _descend(tree, parts, text, value)
    try:
        return type(model).model_validate(tree)
    except ValidationError as err:
        first = err.errors()[0]
        loc = format_path(p for p in first.get("loc", ()) if isinstance(p, (str, int)))
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise SpecError(f"overrides {list(overrides)}: {loc}: {msg}") from None
