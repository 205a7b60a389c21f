"""What the command line reads: option values and the spec to send.

The option types turn text into the values the client's methods take
(``KEY=VALUE`` options, ``DIM=SIZE`` dim overrides, lists of widths or
learning rates, finite numbers) and refuse anything else as a usage error,
which exits 2 with the option named. :func:`read_spec` reads SPEC, a spec
file or standard input, and sees a Hugging Face ``config.json`` for what it
is.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from .._extras import install_command
from ..errors import SpecFileError
from ..spec import (
    YAML_SUFFIXES,
    NotYAML,
    Spec,
    _parse_json,
    _parse_yaml,
    load_spec,
    read_config,
)

STDIN = "-"


def json_or_text(text: str) -> Any:
    """``text`` read as a JSON value (``1.5``, ``true``, ``null``, ``[1, 2]``), else
    the text itself, so that ``mode=fan_out`` needs no quotes."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def scheme_value(text: str) -> str | dict[str, Any]:
    """A scheme as the service reads it: a name, or a JSON object with a name."""
    if not text.lstrip().startswith("{"):
        return text

    value = json.loads(text)  # ValueError: the caller names the option.
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")

    return value


class FiniteFloat(click.ParamType):
    """A finite number: JSON, and so the service, has no NaN or infinity."""

    name = "number"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, float):
            return value
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number; write one such as 0.001", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not finite; give a finite number", param, ctx)

        return number


class KeyValue(click.ParamType):
    """``KEY=VALUE``, the value read as JSON where it parses (else as text)."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        key, sign, text = value.partition("=")
        if not sign or not key:
            self.fail(
                f"{value!r} is not KEY=VALUE; write it such as mode=fan_out or"
                " gain=1.5",
                param,
                ctx,
            )

        return key.strip(), json_or_text(text)


class Override(click.ParamType):
    """``GLOB=SCHEME``: a glob over parameter or layer names and a scheme for them.

    The scheme is a name (``fc=torch_default``) or a JSON object with its
    options (``'fc={"name": "normal", "std": 0.01}'``).
    """

    name = "GLOB=SCHEME"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        glob, sign, text = value.partition("=")
        if not sign or not glob or not text:
            self.fail(
                f"{value!r} is not GLOB=SCHEME; write it such as"
                " 'h.*.attn.o.weight=gpt2' or 'fc=torch_default'",
                param,
                ctx,
            )
        try:
            return glob, scheme_value(text)
        except ValueError as error:
            self.fail(
                f"{value!r}: the scheme must be a name or a JSON object such as"
                f' {{"name": "normal", "std": 0.01}} ({error})',
                param,
                ctx,
            )


class SchemeParam(click.ParamType):
    """A scheme: a name, or a JSON object with its name and options."""

    name = "SCHEME"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return scheme_value(value)
        except ValueError as error:
            self.fail(
                f"{value!r} must be a scheme name such as lecun_normal, or a JSON"
                f' object such as {{"name": "normal", "std": 0.02}} ({error})',
                param,
                ctx,
            )


class DimSizes(click.ParamType):
    """``DIM=SIZE[,DIM=SIZE...]``: dim overrides such as ``d_model=1024,d_ff=4096``."""

    name = "DIM=SIZE[,...]"

    def convert(self, value: Any, param: Any, ctx: Any) -> dict[str, int]:
        if isinstance(value, dict):
            return value

        sizes: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            dim, sign, size = item.partition("=")
            if not sign or not dim.strip():
                self.fail(
                    f"{item!r} is not DIM=SIZE; write it such as d_model=1024",
                    param,
                    ctx,
                )
            sizes[dim.strip()] = _integer(
                size, f"dim {dim.strip()!r}", self, param, ctx
            )

        return sizes


class Widths(click.ParamType):
    """``N,N,...`` or ``DIM=N,N,...``: sizes of one width dim, that dim named in
    front (which ``dim_required`` makes necessary)."""

    def __init__(self, dim_required: bool = False) -> None:
        self.dim_required = dim_required
        self.name = "DIM=N,N,..." if dim_required else "[DIM=]N,N,..."

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[str | None, list[int]]:
        if isinstance(value, tuple):
            return value

        dim, sign, sizes = value.rpartition("=")
        dim = dim.strip()
        if (sign or self.dim_required) and not dim:
            self.fail(
                f"{value!r}: name the dim the sizes are of, as in d_model=256,512",
                param,
                ctx,
            )
        widths = [
            _integer(size, "a width", self, param, ctx)
            for size in sizes.split(",")
            if size.strip()
        ]
        if not widths:
            self.fail(
                f"{value!r} has no width; write them such as 64,256,1024", param, ctx
            )

        return (dim or None, widths)


class Numbers(click.ParamType):
    """``X,X,...``: finite numbers such as learning rates ``1e-3,3e-3,1e-2``."""

    name = "X,X,..."

    def convert(self, value: Any, param: Any, ctx: Any) -> list[float]:
        if isinstance(value, list):
            return value

        numbers = [
            FiniteFloat().convert(text.strip(), param, ctx)
            for text in value.split(",")
            if text.strip()
        ]
        if not numbers:
            self.fail(
                f"{value!r} has no number; write them such as 1e-3,1e-2", param, ctx
            )

        return numbers


def _integer(text: str, what: str, kind: click.ParamType, param: Any, ctx: Any) -> int:
    try:
        return int(text.strip())
    except ValueError:
        kind.fail(
            f"{what} must be a whole number such as 1024; got {text.strip()!r}",
            param,
            ctx,
        )


def scheme_with_options(scheme: Any, options: Sequence[tuple[str, Any]]) -> Any:
    """``scheme`` with the ``--option KEY=VALUE`` pairs: ``{"name": ..., key: value}``.

    Without options a scheme name goes as the name, as the client sends it.
    """
    if not options:
        return scheme

    resolved = {"name": scheme} if isinstance(scheme, str) else dict(scheme)
    resolved.update(options)

    return resolved


def read_spec(
    source: str | None,
    preset: str | None = None,
    params: Sequence[tuple[str, Any]] = (),
) -> dict[str, Any]:
    """The spec to send: from ``source`` (a path, or ``-`` for standard input),
    or the preset ``preset`` built with ``params``.

    A JSON object with ``model_type`` and no ``layers`` is a Hugging Face
    ``config.json``: it becomes :meth:`Spec.from_hf_config`, which the
    service builds into a spec. Raises :class:`click.UsageError` (exit 2)
    when neither or both sources are given, and :class:`click.BadParameter`
    for a file that cannot be read or parsed.
    """
    if preset is not None:
        if source is not None:
            raise click.UsageError(
                f"give SPEC or --preset, not both (got {source!r} and"
                f" --preset {preset})"
            )
        return Spec.preset(preset, **dict(params))
    if params:
        raise click.UsageError(
            "--param sets a preset's parameters; add --preset NAME (mlp, resnet,"
            " transformer) or drop --param"
        )
    if source is None:
        raise click.UsageError(
            "missing SPEC: give a spec file (JSON or YAML), '-' to read one from"
            " standard input, or --preset NAME"
        )

    data = _from_stdin("SPEC") if source == STDIN else _from_file(source)
    if "model_type" in data and "layers" not in data:
        return Spec.from_hf_config(data)

    return data


def _from_file(source: str) -> dict[str, Any]:
    with _file_errors(source, "SPEC"):
        return load_spec(source)


@contextlib.contextmanager
def _file_errors(source: str, hint: str) -> Iterator[None]:
    """Turn what reading ``source`` raises into a usage error naming the file."""
    try:
        yield
    except FileNotFoundError:
        raise click.BadParameter(
            f"no file {source!r}; give the path of a spec (.json, .yaml) or of a"
            " Hugging Face config.json, or '-' for standard input",
            param_hint=hint,
        ) from None
    except OSError as error:
        raise click.BadParameter(
            f"cannot read {source!r}: {error.strerror or error}",
            param_hint=hint,
        ) from None
    except UnicodeDecodeError as error:
        raise click.BadParameter(
            f"{source!r} is not UTF-8 text ({error.reason} at byte {error.start});"
            " give a JSON or YAML file",
            param_hint=hint,
        ) from None
    except (SpecFileError, ImportError) as error:
        raise click.BadParameter(str(error), param_hint=hint) from None


def _from_stdin(hint: str) -> dict[str, Any]:
    """A JSON object from standard input, else YAML when PyYAML is installed.

    Read as strictly as a spec file (:func:`~initlab_client.load_spec`): no
    key twice, no NaN, and YAML values JSON cannot hold refused by name.
    """
    text = sys.stdin.read().lstrip("\ufeff")
    if not text.strip():
        raise click.BadParameter(
            "standard input is empty; pipe a spec (JSON or YAML) or a"
            " config.json into it, or give a file instead of '-'",
            param_hint=hint,
        )
    try:
        data = _parse_json(text, Path("<stdin>"))
    except SpecFileError as json_error:
        if text.lstrip().startswith(("{", "[")):
            raise click.BadParameter(str(json_error), param_hint=hint) from None
        try:
            data = _parse_yaml(text, Path("<stdin>"))
        except ImportError:
            raise click.BadParameter(
                f"{json_error}; YAML needs PyYAML: {install_command('yaml')}",
                param_hint=hint,
            ) from None
        except NotYAML as yaml_error:
            raise click.BadParameter(
                f"standard input is neither JSON nor YAML: {yaml_error}",
                param_hint=hint,
            ) from None
        except SpecFileError as yaml_error:  # YAML, but not a spec's (an alias).
            raise click.BadParameter(str(yaml_error), param_hint=hint) from None
    if not isinstance(data, dict):
        raise click.BadParameter(
            "standard input must hold an object (a spec with 'dims' and 'layers',"
            f" or a config.json); got {type(data).__name__}",
            param_hint=hint,
        )

    return data


def looks_like_file(source: str) -> bool:
    """Whether ``initlab import SOURCE`` names a file rather than an architecture."""
    if source == STDIN:
        return True
    path = Path(source)

    return path.exists() or path.suffix.lower() in (".json", *YAML_SUFFIXES)


def read_model_config(source: str) -> dict[str, Any]:
    """A Hugging Face ``config.json`` from a path or ``-`` (standard input)."""
    if source == STDIN:
        return _from_stdin("CONFIG")

    with _file_errors(source, "CONFIG"):
        return read_config(source)
