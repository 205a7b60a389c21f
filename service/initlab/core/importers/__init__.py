"""Specs from real models: Hugging Face configs, torchvision architectures, presets.

Each importer turns a model's public description into a spec in the spec
language (plain JSON data, ``{"dims": {...}, "layers": [...]}``), so everything
that takes a spec (recommendations, statistics, µP tables) takes the model.

The specs use one vocabulary of dim names across model types, so the same
target (``{"d_model": 2048, "d_ff": 8192}``) means the same thing for every
model: ``vocab``, ``n_positions``, ``d_model``, ``d_ff``, ``n_layer``,
``n_heads``, ``n_kv_heads``, ``d_head`` (only where a model sets it apart from
``d_model/n_heads``), and for convolutional nets ``width`` (the base channel
count), ``width_per_group``, ``groups`` and one ``blocks_<stage>`` per stage.

Errors are :class:`~initlab.core.errors.InvalidInput` with paths relative to
the import object (``("config", "n_embd")``), so the web layer can point at
``/import/config/n_embd`` or ``/spec/import/config/n_embd``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The dims a user scales, by their role; the values of an import's
#: ``scale_dims`` name the spec dims that play them.
SCALE_ROLES: tuple[str, ...] = ("d_model", "d_ff", "n_heads", "d_head", "n_layer")


@dataclass(frozen=True)
class ImportedSpec:
    """A spec built from a model description.

    ``spec`` is spec-language JSON data. ``source`` says what it was built
    from (``"huggingface:gpt2"``, ``"torchvision:resnet50"``,
    ``"preset:transformer"``). ``scale_dims`` gives the sizes a user would
    scale (keys from :data:`SCALE_ROLES` and, for conv nets, ``width``), with
    their values; a key whose size is derived rather than a dim of the spec
    (``d_head`` = d_model/n_heads) is listed in ``derived_dims``. ``notes``
    say what was approximated or chosen (the head, a naming difference).
    """

    spec: dict[str, Any]
    source: str
    scale_dims: dict[str, int] = field(default_factory=dict)
    derived_dims: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


IMPORT_FORMATS: tuple[str, ...] = ("huggingface", "torchvision")


def import_model(source: Mapping[str, Any]) -> ImportedSpec:
    """The spec of a model description: ``{"format": "huggingface", "config":
    {...}, "head": ...}`` or ``{"format": "torchvision", "arch": ..., "options":
    {...}}``, already checked for its shape (the web schema does that).

    Raises :class:`~initlab.core.errors.InvalidInput` with paths relative to
    ``source``.
    """
    from initlab.core.importers.huggingface import import_huggingface
    from initlab.core.importers.torchvision import import_torchvision

    if source["format"] == "huggingface":
        return import_huggingface(source["config"], source.get("head", "default"))

    return import_torchvision(source["arch"], source.get("options", {}))


def preset_spec(name: str, params: Mapping[str, Any]) -> ImportedSpec:
    """The spec a preset builds from ``params`` (errors at ``("params", name)``)."""
    from initlab.core.importers.presets import expand_preset

    return expand_preset(name, params)
