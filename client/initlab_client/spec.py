"""Architecture specs: read from files, or described by the model they come from.

A spec is plain JSON data (``{"dims": {...}, "layers": [...]}``), so the
client posts whatever mapping it is given. :func:`load_spec` reads one from a
JSON file, or from a YAML file when PyYAML is installed (the ``yaml`` extra).
:class:`Spec` is such a mapping that can also stand for a spec the service
builds: a Hugging Face config, a torchvision architecture or a preset, which
every endpoint taking a spec resolves in its place.
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

from . import layers as _layers
from ._extras import install_command
from ._json import MAX_DEPTH, BadNesting, NotJSON, json_ready
from .errors import SpecFileError

YAML_SUFFIXES = (".yaml", ".yml")
# A spec file is sent as a member of the request body, one level down, and
# the service reads MAX_DEPTH levels of the body.
FILE_MAX_DEPTH = MAX_DEPTH - 1

# A config.json given as its contents, or as the path of the file.
ConfigSource = Union[Mapping[str, Any], str, "os.PathLike[str]"]


class Spec(dict):  # type: ignore[type-arg]
    """A spec as a ``dict``, so every method that takes a spec takes it unchanged.

    Besides a spec written out (:meth:`load`), a ``Spec`` may describe a model
    for the service to build the spec of, wherever a spec is expected:
    :meth:`from_hf_config` (``{"import": {"format": "huggingface", ...}}``),
    :meth:`from_torchvision` (``{"import": {"format": "torchvision", ...}}``)
    and :meth:`preset` (``{"preset": {"name": ..., ...}}``). Nothing is sent
    until the spec is used; :meth:`Client.import_spec
    <initlab_client.Client.import_spec>` and :meth:`Client.expand_preset
    <initlab_client.Client.expand_preset>` show the spec the service builds.
    """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"

    @classmethod
    def build(
        cls, layers: Iterable[Mapping[str, Any]], dims: Mapping[str, int] | None = None
    ) -> Spec:
        """The spec of ``layers`` (see :mod:`initlab_client.layers`) and ``dims``."""
        return cls(_layers.spec(layers, dims))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Spec:
        """The spec in ``path``, read and checked as :func:`load_spec` does."""
        return cls(load_spec(path))

    @classmethod
    def from_hf_config(cls, config: ConfigSource, head: str = "default") -> Spec:
        """The spec of a Hugging Face model, from its ``config.json``.

        ``config`` is the config as a mapping, or the path of the file (read
        as JSON now, so the spec carries its contents). ``head`` is
        ``"default"`` (the model as commonly counted), ``"none"``, ``"lm"``,
        ``"pooler"`` or ``"classifier"``. Raises ``FileNotFoundError`` for a
        path that does not exist and :class:`SpecFileError` for a file that
        is not a JSON object.
        """
        imported = {
            "format": "huggingface",
            "config": read_config(config),
            "head": head,
        }

        return cls({"import": imported})

    @classmethod
    def from_torchvision(cls, arch: str, **options: Any) -> Spec:
        """The spec of ``torchvision.models.<arch>(**options)``.

        ``arch`` is a ResNet such as ``"resnet50"`` or ``"resnext50_32x4d"``;
        ``options`` are the constructor's (``num_classes``, ``groups``,
        ``width_per_group``, ``zero_init_residual``).
        """
        imported = {
            "format": "torchvision",
            "arch": arch,
            "options": json_integers(options),
        }

        return cls({"import": imported})

    @classmethod
    def preset(cls, name: str, /, **params: Any) -> Spec:
        """The spec a preset builds: ``mlp``, ``resnet`` or ``transformer``.

        ``params`` are the preset's parameters; those left out take its
        defaults (:meth:`Client.presets <initlab_client.Client.presets>` lists
        them).
        """
        return cls({"preset": {"name": name, **json_integers(params)}})


def json_integers(value: Any) -> Any:
    """``value`` with every integer a plain ``int`` (numpy's included), for JSON.

    ``operator.index`` turns any integer type into ``int`` without importing
    numpy, whose integers ``json`` cannot write; mappings, lists and tuples
    are converted entry by entry (a tuple becomes a list, as JSON writes it).
    Booleans and every other value stay as they are, for the service to name.
    """
    return _integers(value, 1)


def _integers(value: Any, depth: int) -> Any:
    # Past the depth the service reads, values go as they are: the request's
    # own check refuses them, naming the place (and a list inside itself).
    if isinstance(value, bool) or depth > MAX_DEPTH:
        return value
    if isinstance(value, numbers.Integral):
        return operator.index(value)
    if isinstance(value, Mapping):
        return {key: _integers(each, depth + 1) for key, each in value.items()}
    if isinstance(value, (list, tuple)):
        return [_integers(each, depth + 1) for each in value]

    return value


def read_config(config: ConfigSource) -> dict[str, Any]:
    """A model config as a ``dict``: a deep copy of a mapping with every integer
    a plain ``int`` (numpy's included), or a JSON file read.

    Raises ``FileNotFoundError`` (an ``OSError``) when the file cannot be
    read, :class:`SpecFileError` when it is not a JSON object, and
    ``TypeError`` for a value that is neither a mapping nor a path.
    """
    if isinstance(config, Mapping):
        return json_integers(config)
    if not isinstance(config, (str, os.PathLike)):
        raise TypeError(
            "config must be a model config as a mapping, or the path of its"
            f" config.json; got {type(config).__name__}"
        )

    path = Path(config)
    data = _parse_json(path.read_text(encoding="utf-8-sig"), path)
    if not isinstance(data, dict):
        raise SpecFileError(
            f"{path}: a model config must be a JSON object such as"
            f' {{"model_type": "gpt2", ...}}, got {type(data).__name__}'
        )

    return data


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the spec in ``path``: YAML for ``.yaml``/``.yml``, JSON otherwise.

    The file is read as the service reads a body: strict JSON (no NaN or
    Infinity, no key twice in one object), UTF-8 with or without a byte-order
    mark. YAML is read as plain data: an alias (``*name``) is refused before
    any value is built, since nested aliases expand exponentially, and so is
    a key that is a list or a mapping. Raises
    :class:`~initlab_client.errors.SpecFileError` when the file is empty,
    does not parse, holds a value JSON cannot (a YAML date), an alias or such
    a key, or is not an object; ``OSError`` when it cannot be read, and
    ``ImportError`` for a YAML file without PyYAML.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise SpecFileError(
            f"{path} is empty; a spec is an object with 'dims' and 'layers'"
            " (see examples/*.spec.json)"
        )
    if path.suffix.lower() in YAML_SUFFIXES:
        spec = _parse_yaml(text, path)
    else:
        spec = _parse_json(text, path)

    if not isinstance(spec, dict):
        raise SpecFileError(
            f"{path}: a spec must be an object with 'dims' and 'layers',"
            f" got {type(spec).__name__}"
        )

    return spec


def _parse_json(text: str, path: Path) -> Any:
    try:
        data = json.loads(
            text,
            object_pairs_hook=_object_without_repeats,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as error:
        raise SpecFileError(
            f"{path}: not valid JSON at line {error.lineno}, column {error.colno}:"
            f" {error.msg}"
        ) from error
    except _StrictJSONError as error:
        raise SpecFileError(f"{path}: {error}") from None
    except RecursionError:
        raise SpecFileError(
            f"{path}: arrays and objects nest too deeply to parse; a spec nests"
            " a few levels (see examples/*.spec.json)"
        ) from None

    try:
        return json_ready(data, max_depth=FILE_MAX_DEPTH)
    except NotJSON as error:
        raise SpecFileError(f"{path}: {error}") from None


class NotYAML(SpecFileError):
    """Text that does not parse as YAML at all (as opposed to YAML refused)."""


class _StrictJSONError(ValueError):
    """JSON that Python reads but the service refuses (NaN, a repeated key)."""


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _StrictJSONError(
                f'the key "{key}" appears twice in one object; keep one'
            )
        data[key] = value

    return data


def _no_constant(name: str) -> Any:
    raise _StrictJSONError(
        f"{name} is not a JSON number (JSON has no NaN or infinity); give a"
        " finite number"
    )


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _StrictJSONError(
            f"{text} is too large for a JSON number (it reads as infinity);"
            " give a finite number"
        )

    return number


def _place(mark: Any) -> str:
    """Where a YAML mark is, counted from 1 as editors count."""
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _parse_yaml(text: str, path: Path) -> Any:
    try:
        import yaml
    except ImportError as error:
        raise ImportError(
            f"{path} is YAML, which needs PyYAML: {install_command('yaml')}, or"
            " convert the spec to JSON"
        ) from error

    class StrictLoader(yaml.SafeLoader):
        """YAML's safe subset without aliases, non-scalar keys or a key twice.

        An alias is refused as the parser meets it, before any value is
        built: expanded, a few hundred bytes of nested aliases stand for
        billions of values ("billion laughs"), and an alias inside its own
        anchor for a value that contains itself, neither of which JSON holds.
        """

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                alias = self.peek_event()
                raise SpecFileError(
                    f"{path}: {_place(alias.start_mark)}: YAML aliases"
                    f" (*{alias.anchor}) are not read in a spec file; write the"
                    " value out"
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    kind = (
                        "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                    )
                    raise SpecFileError(
                        f"{path}: {_place(key_node.start_mark)}: this mapping"
                        f" key is a {kind}; the keys of a spec are names (JSON"
                        " keys are strings): write a name"
                    )
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise SpecFileError(
                        f"{path}: the key {key!r} appears twice in one mapping"
                        f" (line {key_node.start_mark.line + 1}); keep one"
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    try:
        data = yaml.load(text, Loader=StrictLoader)  # A SafeLoader: no tags.
    except yaml.YAMLError as error:
        raise NotYAML(f"{path}: not valid YAML: {error}") from error
    except RecursionError:
        raise SpecFileError(f"{path}: mappings and lists nest too deeply") from None

    try:
        return json_ready(data, max_depth=FILE_MAX_DEPTH)
    except BadNesting as error:
        raise SpecFileError(f"{path}: {error}") from None
    except NotJSON as error:
        raise SpecFileError(
            f"{path}: {error} (YAML reads some unquoted values, such as"
            " 2024-01-01 or .nan, as dates or special numbers; quote them or"
            " write a number)"
        ) from None
