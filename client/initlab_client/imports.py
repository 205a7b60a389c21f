"""Typed views of the specs the service builds from real models and presets.

:class:`ImportedSpec` is the answer of ``POST /v1/specs/import`` (a Hugging
Face config or a torchvision architecture) and of ``POST /v1/specs/expand``
(a preset): the spec, where it came from, its parameter count (to compare with
the real model's) and the dims a user scales. :class:`Preset` and
:class:`PresetParameter` are the entries of ``GET /v1/presets``.

As every model of this client, each class reads the fields it knows, ignores
the others (a newer service never breaks an older client) and, where it has
one, keeps the whole JSON object in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidResponse
from .models import (
    _convert,
    _from_json,
    _frozen,
    _mapping,
    _optional,
    _raw,
    _strings,
    _tuple_of,
)

# Members of a preset parameter that the contract leaves out when they do not
# apply: bounds for integers, choices for strings, lengths for lists.
PARAMETER_BOUNDS = ("minimum", "maximum", "choices", "min_items", "max_items")


@dataclass(frozen=True)
class ImportedSpec:
    """A spec the service built, with what to check it against and what to scale.

    ``spec`` is spec-language data, ready for any method that takes a spec.
    ``source`` says what it was built from (``"huggingface:gpt2"``,
    ``"torchvision:resnet50"``, ``"preset:transformer"``);
    ``parameter_count`` counts scalar parameters with tied tensors once, as
    the real model's ``sum(p.numel() for p in model.parameters())`` does.
    ``scale_dims`` maps the sizes a user scales (``d_model``, ``d_ff``,
    ``n_heads``, ``d_head``, ``n_layer``; ``width`` for a ResNet) to their
    values, with the same names for every model type; those listed in
    ``derived_dims`` (``d_head`` = d_model/n_heads) are not dims of the spec,
    so a µP target changes them through the others. ``notes`` say what was
    chosen or approximated (the head, how names map to the library's).
    """

    spec: dict[str, Any] = _convert(_mapping)
    source: str
    parameter_count: int
    residual_branch_count: int
    scale_dims: dict[str, int] = _convert(_mapping)
    derived_dims: tuple[str, ...] = _convert(_strings)
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> ImportedSpec:
        return _from_json(cls, data, "imported spec")


@dataclass(frozen=True)
class PresetParameter:
    """One parameter of a preset: its type, default and the values it accepts.

    ``type`` is ``integer``, ``integer_list``, ``boolean``, ``string`` or
    ``activation``; ``default`` ``None`` means derived from the others (the
    ``description`` says how) or off. ``allowed`` says in words what is
    accepted. ``minimum`` and ``maximum`` bound an integer or each entry of an
    integer list, whose length lies in [``min_items``, ``max_items``];
    ``choices`` lists the only values a string, integer or activation name
    may take. Each of these five is ``None`` where it does not apply.
    """

    name: str
    type: str
    default: Any = _convert(_frozen)
    allowed: str
    description: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[Any, ...] | None = field(
        default=None, metadata={"convert": _optional(_frozen)}
    )
    min_items: int | None = None
    max_items: int | None = None


def _parameter(value: Any, where: str) -> PresetParameter:
    """A :class:`PresetParameter` from its JSON, absent bounds read as ``None``."""
    if not isinstance(value, Mapping):
        raise InvalidResponse(
            f"{where}: expected a JSON object, got {type(value).__name__}"
        )

    return _from_json(
        PresetParameter,
        {**{name: None for name in PARAMETER_BOUNDS}, **value},
        where,
    )


@dataclass(frozen=True)
class Preset:
    """A preset of ``GET /v1/presets``: what it builds and its parameters, in order.

    Post its name and any of its parameters with :meth:`Client.expand_preset
    <initlab_client.Client.expand_preset>`, or use :meth:`Spec.preset
    <initlab_client.Spec.preset>` wherever a spec is taken.
    """

    name: str
    description: str
    parameters: tuple[PresetParameter, ...] = _convert(_tuple_of(_parameter))
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> Preset:
        return _from_json(cls, data, "preset")

    def parameter(self, name: str) -> PresetParameter:
        """The parameter called ``name``, such as ``"d_model"``."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter

        names = ", ".join(parameter.name for parameter in self.parameters)
        raise KeyError(
            f"preset {self.name!r} has no parameter {name!r}; it has {names}"
        )
