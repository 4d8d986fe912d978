"""Typed Timeloop-style mappings.

A :class:`Mapping` has one :class:`LevelMapping` per storage level of the architecture, outermost
first. Each gives the temporal loops at that level (factor per dimension, permutation inner to
outer, as Timeloop writes it), the spatial loops that distribute work over the fan-out *below*
that level (``split``: the first ``split`` dimensions of the spatial permutation go to X, the rest
to Y, as Timeloop), and which tensors the level keeps or bypasses.

Timeloop's virtual ``inter_<Container>_spatial`` targets are folded into the storage level just
above the container by the loader.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LevelMapping(_Frozen):
    """Loops and dataspace choices at one storage level.

    Attributes:
        target: level name.
        temporal: dimension -> temporal factor at this level (missing = 1).
        temporal_permutation: dimensions inner to outer (missing dimensions are appended
            outermost in problem order, as Timeloop pads them).
        spatial: dimension -> spatial factor over the fan-out below this level (missing = 1).
        spatial_permutation: dimensions inner to outer.
        split: spatial dimensions [0, split) of the permutation go to X, the rest to Y.
        keep: tensors this level holds; ``None`` = whatever the architecture lets it keep.
        bypass: tensors that skip this level.
        stream: tensors this level passes through while bypassing them (the Sparseloop 2022
            artifact's ``stream:`` lists; counted only under the ``sparseloop-2022`` conventions).
        no_link_transfer / no_multicast / no_temporal_reuse: tensors for which Timeloop's
            mapping directives of the same names (``no_multicast_no_reduction`` for the second)
            switch off link transfers and multicast across this level's fan-out, and the reuse
            of this level's tile between iterations.
    """

    target: str
    temporal: dict[str, int] = Field(default_factory=dict)
    temporal_permutation: tuple[str, ...] = ()
    spatial: dict[str, int] = Field(default_factory=dict)
    spatial_permutation: tuple[str, ...] = ()
    split: int | None = None
    keep: tuple[str, ...] | None = None
    bypass: tuple[str, ...] = ()
    stream: tuple[str, ...] = ()
    no_link_transfer: tuple[str, ...] = ()
    no_multicast: tuple[str, ...] = ()
    no_temporal_reuse: tuple[str, ...] = ()

    def temporal_factor(self, dim: str) -> int:
        """Temporal factor of ``dim`` here (1 when absent)."""
        return self.temporal.get(dim, 1)

    def spatial_factor(self, dim: str) -> int:
        """Spatial factor of ``dim`` here (1 when absent)."""
        return self.spatial.get(dim, 1)

    @property
    def spatial_total(self) -> int:
        """Product of all spatial factors (instances used below this level)."""
        return math.prod(self.spatial.values()) if self.spatial else 1

    def keeps(self, tensor: str) -> bool | None:
        """True/False when the mapping says; ``None`` when it leaves it to the architecture."""
        if tensor in self.bypass:
            return False
        if self.keep is not None:
            return tensor in self.keep
        return None


class Mapping(_Frozen):
    """A whole mapping: one :class:`LevelMapping` per architecture level, outermost first."""

    levels: tuple[LevelMapping, ...]
    source: str | None = None
    locations: dict[str, tuple[int, str]] = Field(default_factory=dict)
    """Level name -> (line, key path) of the entry that defines it in ``source`` (for messages)."""

    def level(self, name: str) -> LevelMapping:
        """The level mapping for ``name``."""
        for lm in self.levels:
            if lm.target == name:
                return lm
        raise KeyError(f"mapping has no level {name!r}")

    def total_factor(self, dim: str) -> int:
        """Product of every temporal and spatial factor of ``dim`` over all levels."""
        return math.prod(lm.temporal_factor(dim) * lm.spatial_factor(dim) for lm in self.levels)
