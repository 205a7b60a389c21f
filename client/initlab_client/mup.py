"""Typed views of the µP tables, and writers to JSON and CSV.

:class:`MupTable` is the answer of ``POST /v1/mup/table``: how a base (proxy)
model's tuned learning rate, weight decay, init and multipliers carry over to
wider (or deeper) targets, under µP (Yang et al. 2022, "Tensor Programs V",
arXiv 2203.03466, Tables 3 and 8) or a depth rule (depth-µP, CompleteP). It
holds one :class:`MupTarget` per target, each with one :class:`MupRow` per
parameter tensor and the optimizer's :class:`MupParamGroup`s. The service
does the arithmetic; these classes only read it.

:meth:`MupTable.to_json` writes the answer as the service sent it;
:meth:`MupTable.to_csv` writes one line per (target, parameter), for a
spreadsheet or a training script that reads per-tensor settings.

As every model of this client, each class reads the fields it knows, ignores
the others (a newer service never breaks an older client) and keeps the
whole JSON object in ``raw``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Union

from .errors import InvalidResponse
from .models import (
    _convert,
    _from_json,
    _integers,
    _mapping,
    _model,
    _optional,
    _raw,
    _strings,
    _tuple_of,
)

# A path, or a text file already open for writing.
Destination = Union[str, "os.PathLike[str]", IO[str]]

CSV_COLUMNS = (
    "target",
    "target_dims",
    "name",
    "shape",
    "layout",
    "class",
    "role",
    "width_dims",
    "m_in",
    "m_out",
    "lr",
    "lr_multiplier",
    "weight_decay",
    "init_std",
    "init_mean",
    "forward_multiplier",
    "depth_scaled",
    "tied_to",
    "init_distribution",
    "adam_eps",
    "residual_multiplier",
    "attention_scale",
    "output_multiplier",
    "mup_package_lr",
    "mup_package_weight_decay",
    "mup_package_init_std",
    "notes",
)

_optional_mapping = _optional(_mapping)


@dataclass(frozen=True)
class MupPackageValues:
    """What the microsoft/mup package would set for a tensor, where it differs.

    The package rescales some biases and tied embeddings by √m and takes the
    last width-like dim as fan_in, so a weight stored ``(in, out)`` gets the
    fan_out multiplier; the row's ``notes`` say why the values differ.
    """

    lr: float
    weight_decay: float
    init_std: float


@dataclass(frozen=True)
class MupRow:
    """One parameter tensor of a target: its width multipliers and settings.

    ``shape`` and ``base_shape`` are in PyTorch's layout (out, in) whatever
    ``layout`` says; ``width_dims`` names the width-like dims of the tensor,
    and ``m_in`` and ``m_out`` are the target/base multipliers of its fan_in
    and output dims (1.0 for a dim that does not scale). ``param_class`` is
    the answer's ``class`` (a Python keyword): ``matrix_like`` (two width-like
    dims), ``vector_like`` (one) or ``scalar_like`` (none); ``role`` is
    ``input``, ``hidden``, ``output``, ``bias``, ``norm`` or ``embedding``.
    ``lr`` is the tensor's learning rate (``lr_multiplier`` times the base's)
    and ``weight_decay`` the value to hand the optimizer; ``init_std`` and
    ``init_mean`` describe its initial values, drawn from
    ``init_distribution`` (``normal``, ``uniform``, ``truncated_normal``,
    ``orthogonal`` or ``constant`` for a zero or constant init; ``None`` from
    an older service that does not say), and ``forward_multiplier`` is the
    constant its output is multiplied by. ``depth_scaled`` says whether a
    depth rule changed it; ``mup_package`` is ``None`` unless the microsoft/mup
    package would set it differently.
    """

    name: str
    shape: tuple[int, ...] = _convert(_integers)
    base_shape: tuple[int, ...] = _convert(_integers)
    layout: str
    tied_to: str | None
    width_dims: tuple[str, ...] = _convert(_strings)
    m_in: float
    m_out: float
    param_class: str
    role: str
    lr: float
    lr_multiplier: float
    weight_decay: float
    init_std: float
    init_mean: float
    forward_multiplier: float
    depth_scaled: bool
    mup_package: MupPackageValues | None = _convert(_optional(_model(MupPackageValues)))
    notes: tuple[str, ...] = _convert(_strings)
    # Last, with a default, so that positional construction keeps working.
    init_distribution: str | None = None
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> MupRow:
        return _row(data, "parameter")


def _row(value: Any, where: str) -> MupRow:
    """A :class:`MupRow` from its JSON, whose ``class`` becomes ``param_class``.

    ``init_distribution`` came after the first µP tables, so a row from an
    older service may lack it: it then reads ``None`` instead of failing.
    """
    if not isinstance(value, Mapping):
        raise InvalidResponse(
            f"{where}: expected a JSON object, got {type(value).__name__}"
        )
    if "class" not in value:
        raise InvalidResponse(
            f"{where}: the answer has no 'class' field, which this client needs;"
            " is the base URL an initlab /v1 service?"
        )

    known = {
        **value,
        "param_class": value["class"],
        "init_distribution": value.get("init_distribution"),
    }
    row = _from_json(MupRow, known, where)

    return dataclasses.replace(row, raw=dict(value))


@dataclass(frozen=True)
class MupParamGroup:
    """One optimizer parameter group: the tensors that share lr, wd and ε.

    ``eps`` is Adam's ε (``None`` for SGD). The names are those of
    ``model.named_parameters()`` for a model built as the spec describes.
    """

    params: tuple[str, ...] = _convert(_strings)
    lr: float
    weight_decay: float
    eps: float | None


@dataclass(frozen=True)
class MupAttention:
    """The attention-logit scale of one attention layer of a target.

    µP scales the logits by 1/d_head instead of 1/√d_head (Yang et al. 2022,
    Tensor Programs V, §4), so ``scale`` depends on the base's head size.
    """

    layer: str
    d_head_base: int
    d_head: int
    scale: float


@dataclass(frozen=True)
class MupBase:
    """The base (proxy) model the table starts from: its dims and sizes."""

    dims: dict[str, int] = _convert(_mapping)
    parameter_count: int
    residual_branch_count: int


@dataclass(frozen=True)
class MupTarget:
    """One target model: its multipliers, one row per tensor, the param groups.

    ``width_multipliers`` maps each width dim to target/base;
    ``depth_multiplier`` is L_target / L_base over residual branch counts.
    ``output_multiplier`` is the readout's forward multiplier (``None``
    without a readout), ``attention_scale`` the logit scale common to every
    attention layer (``None`` when they differ or there is none; see
    ``attention``), ``residual_multiplier`` the branch output multiplier of
    the depth rule (1.0 without one) and ``adam_eps`` Adam's ε at this size
    (``None`` for SGD). ``parameters`` are in forward order.
    """

    dims: dict[str, int] = _convert(_mapping)
    parameter_count: int
    residual_branch_count: int
    width_multipliers: dict[str, float] = _convert(_mapping)
    depth_multiplier: float
    output_multiplier: float | None
    input_multiplier: float
    attention_scale: float | None
    attention: tuple[MupAttention, ...] = _convert(_tuple_of(_model(MupAttention)))
    residual_multiplier: float
    adam_eps: float | None
    parameters: tuple[MupRow, ...] = _convert(_tuple_of(_row))
    param_groups: tuple[MupParamGroup, ...] = _convert(_tuple_of(_model(MupParamGroup)))
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> MupTarget:
        return _from_json(cls, data, "target")

    def by_name(self, name: str) -> MupRow:
        """The row of the tensor called ``name``, a dotted path like ``fc2.weight``."""
        for row in self.parameters:
            if row.name == name:
                return row

        example = self.parameters[0].name if self.parameters else None
        raise KeyError(
            f"no parameter named {name!r} among {len(self.parameters)};"
            f" names are dotted paths like {example!r}"
        )


@dataclass(frozen=True)
class MupTable:
    """The answer of ``POST /v1/mup/table``.

    Every choice of the request comes back with its default filled in:
    ``form`` (``mup_package``, ``table3`` or ``practitioner``), ``optimizer``,
    the base's ``lr``, ``weight_decay`` and ``eps``, ``init`` (``{"std": ...}``
    or ``{"scheme": {...}}``), the zero inits, the tuned base multipliers,
    ``depth`` (``None`` or ``{"rule", "alpha"}``), ``width_dims`` and
    ``depth_dims`` (dim names) and ``width_dim``. ``base`` describes the base
    model, ``convention`` says in words how to read the numbers, and
    ``targets`` has one :class:`MupTarget` per requested target, in order.
    """

    form: str
    optimizer: str
    lr: float
    weight_decay: float
    eps: float
    weight_decay_convention: str
    init: dict[str, Any] = _convert(_mapping)
    readout_zero_init: bool
    query_zero_init: bool
    output_multiplier: float
    input_multiplier: float
    attention_multiplier: float
    depth: dict[str, Any] | None = _convert(_optional_mapping)
    width_dims: tuple[str, ...] = _convert(_strings)
    depth_dims: tuple[str, ...] = _convert(_strings)
    width_dim: str | None
    base: MupBase = _convert(_model(MupBase))
    convention: str
    notes: tuple[str, ...] = _convert(_strings)
    targets: tuple[MupTarget, ...] = _convert(_tuple_of(_model(MupTarget)))
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> MupTable:
        return _from_json(cls, data, "mup table")

    def to_json(self, destination: Destination, *, indent: int | None = None) -> None:
        """Write the answer as the service sent it, to a path or an open text file.

        With ``indent=None`` the bytes are the service's own (compact, keys in
        its order, non-ASCII escaped, one final newline); an ``indent`` makes
        it readable without changing a value. Floats keep every digit.
        """
        separators = (",", ":") if indent is None else None
        with _text_file(destination) as file:
            json.dump(self.raw, file, indent=indent, separators=separators)
            file.write("\n")

    def to_csv(self, destination: Destination) -> None:
        """Write one line per (target, parameter) to a path or an open text file.

        The columns are :data:`CSV_COLUMNS`: ``target`` is the target's index,
        ``target_dims`` its dims as compact JSON, ``shape`` like ``1024x256``
        (PyTorch's layout), ``width_dims`` joined by ``;``, numbers as
        ``repr`` (read back with ``float``, no digit lost), ``depth_scaled``
        ``true`` or ``false`` and ``tied_to`` empty when the tensor is not
        tied. Then what training needs besides the row's own settings: its
        ``init_distribution``, the target's ``adam_eps``,
        ``residual_multiplier``, ``attention_scale`` and ``output_multiplier``
        (repeated on each of its lines), the mup package's ``lr``,
        ``weight_decay`` and ``init_std`` where they differ, and the row's
        ``notes`` joined by ``"; "``. A value that is ``None`` is written
        empty. An open file should be opened with ``newline=""``, as the csv
        module asks.
        """
        with _text_file(destination) as file:
            writer = csv.writer(file)
            writer.writerow(CSV_COLUMNS)
            for index, target in enumerate(self.targets):
                dims = json.dumps(target.dims, separators=(",", ":"))
                for row in target.parameters:
                    writer.writerow(_csv_line(index, dims, target, row))


def _csv_line(index: int, dims: str, target: MupTarget, row: MupRow) -> list[str]:
    package = row.mup_package
    package_values = (
        (None, None, None)
        if package is None
        else (package.lr, package.weight_decay, package.init_std)
    )

    return [
        str(index),
        dims,
        row.name,
        "x".join(str(size) for size in row.shape),
        row.layout,
        row.param_class,
        row.role,
        ";".join(row.width_dims),
        _number(row.m_in),
        _number(row.m_out),
        _number(row.lr),
        _number(row.lr_multiplier),
        _number(row.weight_decay),
        _number(row.init_std),
        _number(row.init_mean),
        _number(row.forward_multiplier),
        "true" if row.depth_scaled else "false",
        row.tied_to or "",
        row.init_distribution or "",
        _optional_number(target.adam_eps),
        _number(target.residual_multiplier),
        _optional_number(target.attention_scale),
        _optional_number(target.output_multiplier),
        *(_optional_number(value) for value in package_values),
        "; ".join(row.notes),
    ]


def _number(value: float) -> str:
    """``repr``, the shortest text that reads back to the same double."""
    return repr(float(value))


def _optional_number(value: float | None) -> str:
    """:func:`_number`, or the empty string for ``None``."""
    return "" if value is None else _number(value)


@contextlib.contextmanager
def _text_file(destination: Destination) -> Iterator[IO[str]]:
    """An open text file: ``destination`` itself, or the path opened as UTF-8.

    A file opened here is closed on the way out; one handed in is left open.
    """
    if isinstance(destination, (str, os.PathLike)):
        with open(destination, "w", encoding="utf-8", newline="") as file:
            yield file
        return

    if not callable(getattr(destination, "write", None)):
        raise TypeError(
            "destination must be a path (str or pathlib.Path) or a text file"
            f" open for writing, got {type(destination).__name__}"
        )
    yield destination
