"""Per-layer TASD plans: which series each layer's weights and activations use.

Inline form (CLI ``--plan``): ``"W=2:8+1:8,A=dense"`` sets the default for every layer; per-layer
overrides follow after ``;`` as ``NAME:W=...,A=...``, e.g. ``"W=2:4;conv1:W=dense"``.

YAML form (``plan.yaml``), reloadable with :meth:`Plan.to_yaml_text`::

    plan:
      default: {weights: "2:8+1:8", activations: dense}
      layers:
        conv1: {weights: dense}
        fc: {weights: dense, activations: "2:4", orientation: activation}

A missing series means ``dense``.

**Orientation** (``O=weight|activation`` inline, ``orientation:`` in YAML; default ``weight``):
which operand sits in the engine's operand-A slot (the structured slot of a single-sided N:M
engine). ``activation`` is the transposed GEMM ``Zᵀ = B·Aᵀ``: the decomposed activation takes
the A slot and its patterns, the weight the B slot (dense on a single-sided engine), and every
level's keep/bypass list swaps the two operands (``model.terms.oriented_arch``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from testy_model.errors import SpecError
from testy_model.tasd.pattern import TasdSeries


class LayerPlan(BaseModel):
    """One layer's series: ``weights`` (decomposed offline), ``activations`` (at run time)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    weights: TasdSeries = Field(default_factory=TasdSeries)
    activations: TasdSeries = Field(default_factory=TasdSeries)
    orientation: Literal["weight", "activation"] = "weight"

    @field_validator("weights", "activations", mode="before")
    @classmethod
    def _parse(cls, v: object) -> TasdSeries:
        return TasdSeries.parse("dense" if v is None else v)

    @field_validator("orientation", mode="before")
    @classmethod
    def _orient(cls, v: object) -> str:
        return parse_orientation(str(v))

    @field_serializer("weights", "activations")
    def _ser(self, v: TasdSeries) -> str:
        return str(v)

    def __str__(self) -> str:
        o = ",O=activation" if self.transposed else ""
        return f"W={self.weights},A={self.activations}{o}"

    @property
    def transposed(self) -> bool:
        """True for the transposed GEMM (the activation in the engine's A slot)."""
        return self.orientation == "activation"

    def to_plain(self) -> dict[str, str]:
        """``{weights, activations}`` plus ``orientation`` when it is not the default."""
        out = {"weights": str(self.weights), "activations": str(self.activations)}
        if self.transposed:
            out["orientation"] = self.orientation
        return out

    @property
    def is_dense(self) -> bool:
        """True when neither operand is decomposed."""
        return self.weights.is_dense and self.activations.is_dense


class Plan(BaseModel):
    """A default :class:`LayerPlan` plus per-layer overrides (by layer name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: LayerPlan = Field(default_factory=LayerPlan)
    layers: dict[str, LayerPlan] = Field(default_factory=dict)

    def for_layer(self, name: str) -> LayerPlan:
        """The plan of layer ``name`` (the default when not overridden)."""
        return self.layers.get(name, self.default)

    @classmethod
    def dense(cls) -> Plan:
        """Every layer dense."""
        return cls()

    @classmethod
    def parse(cls, text: str) -> Plan:
        """Parse the inline form (module docstring); :class:`SpecError` quoting the bad part.

        ``"dense"`` alone is the all-dense plan (``W=dense,A=dense``)."""
        if text.strip().lower() == "dense":
            return cls()
        if len(text) > 10_000:
            raise SpecError(f"plan of {len(text):,} characters; the limit is 10,000")
        parts = [p.strip() for p in text.split(";")]
        default = LayerPlan()
        layers: dict[str, LayerPlan] = {}
        for i, part in enumerate(parts):
            if not part:
                continue
            name = None
            body = part
            _bare_series(part, text)
            head, sep, rest = part.partition(":")
            if sep and "=" not in head:
                name, body = head.strip(), rest
            base = default if name is not None else LayerPlan()
            lp = _parse_assignments(body, text, base)
            if name is None:
                if i != 0:
                    raise SpecError(
                        f"plan {text!r}: part {part!r} has no layer name (expected "
                        "'NAME:W=...,A=...' after the first ';')"
                    )
                default = lp
            else:
                layers[name] = lp
        return cls(default=default, layers=layers)

    def check_layers(self, names: list[str] | tuple[str, ...], source: object = None) -> None:
        """Raise :class:`SpecError` when the plan names a layer that is not in ``names`` (a plan
        entry for a missing layer would otherwise be ignored silently), with a "did you mean"
        suggestion and the layers that exist."""
        from testy_model.spec.yaml_io import did_you_mean

        for name in self.layers:
            if name not in names:
                shown = ", ".join(list(names)[:20]) + (" ..." if len(names) > 20 else "")
                file = (
                    str(source)
                    if isinstance(source, (str, Path)) and str(source).endswith((".yaml", ".yml"))
                    else None
                )
                raise SpecError(
                    f"plan layer {name!r} is not a layer of the network{did_you_mean(name, names)}"
                    f" (its layers: {shown})",
                    key_path=f"plan.layers.{name}" if file else None,
                    file=file,
                )

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """Load a YAML plan (module docstring); errors name the file, line and key."""
        from testy_model.spec.yaml_io import did_you_mean, load_yaml_with_marks, spec_error_at

        file = str(path)
        data, marks = load_yaml_with_marks(path)
        root: Any = data.get("plan", data) if isinstance(data, dict) else data
        top = ("plan",) if isinstance(data, dict) and "plan" in data else ()
        if not isinstance(root, dict):
            raise spec_error_at(file, marks, top, "expected a mapping with 'default'/'layers'")
        unknown = [k for k in root if k not in ("default", "layers")]
        if unknown:
            k = str(unknown[0])
            raise spec_error_at(
                file,
                marks,
                (*top, k),
                f"unknown key {k!r}{did_you_mean(k, ('default', 'layers'))}; expected default, "
                "layers",
            )

        def one(node: Any, where: tuple) -> LayerPlan:
            if node is None:
                return LayerPlan()
            if not isinstance(node, dict):
                raise spec_error_at(file, marks, where, "expected {weights: ..., activations: ...}")
            for k in node:
                if k not in ("weights", "activations", "orientation"):
                    hint = did_you_mean(str(k), ("weights", "activations", "orientation"))
                    raise spec_error_at(
                        file,
                        marks,
                        (*where, k),
                        f"unknown key {k!r}{hint}; expected weights, activations, orientation",
                    )
            out: dict[str, Any] = {}
            for k, v in node.items():
                if isinstance(v, (dict, list, bool)):
                    raise spec_error_at(
                        file, marks, (*where, k), "expected a series such as '2:8+1:8' or dense"
                    )
                try:
                    if k == "orientation":
                        out[k] = parse_orientation(str(v))
                    else:
                        out[k] = TasdSeries.parse("dense" if v is None else str(v))
                except ValueError as err:
                    raise spec_error_at(file, marks, (*where, k), str(err)) from None
            return LayerPlan(**out)

        default = one(root.get("default"), (*top, "default"))
        layers_node = root.get("layers") or {}
        if not isinstance(layers_node, dict):
            raise spec_error_at(file, marks, (*top, "layers"), "expected a mapping of layer names")
        layers = {str(k): one(v, (*top, "layers", k)) for k, v in layers_node.items()}
        return cls(default=default, layers=layers)

    @classmethod
    def coerce(cls, plan: Plan | str | Path | None) -> Plan:
        """A plan from a :class:`Plan`, an inline string, a ``.yaml``/``.yml`` path or None."""
        if plan is None:
            return cls()
        if isinstance(plan, Plan):
            return plan
        text = str(plan)
        if isinstance(plan, Path) or text.endswith((".yaml", ".yml")):
            return cls.load(text)
        return cls.parse(text)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (the YAML form's content)."""
        return {
            "plan": {
                "default": self.default.to_plain(),
                "layers": {k: v.to_plain() for k, v in self.layers.items()},
            }
        }

    def to_yaml_text(self) -> str:
        """YAML text that :meth:`load` reads back to an equal plan."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def __str__(self) -> str:
        s = str(self.default)
        for k, v in self.layers.items():
            s += f";{k}:{v}"
        return s


def parse_orientation(text: str) -> str:
    """``weight`` or ``activation`` (also ``W``/``A``, any case); ValueError otherwise."""
    t = text.strip().lower()
    found = {"weight": "weight", "w": "weight", "activation": "activation", "a": "activation"}
    if t not in found:
        raise ValueError(f"orientation {text!r}: expected 'weight' or 'activation'")
    return found[t]


def _bare_series(part: str, text: str) -> None:
    """A plan part that is a bare series (``2:4``) names no operand: say how to write it."""
    if "=" in part:
        return
    try:
        TasdSeries.parse(part)
    except ValueError:
        return
    raise SpecError(
        f"plan {text!r}: {part!r} names no operand; did you mean 'W={part}' (weights) or "
        f"'A={part}' (activations)? (a plan is e.g. 'W=2:8+1:8,A=dense')"
    )


def _parse_assignments(body: str, text: str, base: LayerPlan) -> LayerPlan:
    vals: dict[str, Any] = {
        "weights": base.weights,
        "activations": base.activations,
        "orientation": base.orientation,
    }
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        if item.lower() == "dense":  # NAME:dense -> both operands dense
            vals = {**vals, "weights": TasdSeries(), "activations": TasdSeries()}
            continue
        key, sep, val = item.partition("=")
        k = key.strip().upper()
        if not sep or k not in ("W", "A", "O"):
            raise SpecError(
                f"plan {text!r}: {item!r} is not W=SERIES, A=SERIES or O=weight|activation "
                "(e.g. 'W=2:8+1:8,A=dense')"
            )
        try:
            if k == "O":
                vals["orientation"] = parse_orientation(val)
            else:
                vals["weights" if k == "W" else "activations"] = TasdSeries.parse(val)
        except ValueError as err:
            raise SpecError(f"plan {text!r}: {err}") from None
    return LayerPlan(**vals)
