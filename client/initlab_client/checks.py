"""Typed views of the µP verification: the coordinate and transfer checks.

A µP table is a claim that can be tested by training (Yang et al. 2022,
"Tensor Programs V", arXiv 2203.03466). :class:`CoordCheck` is the answer of
``POST /v1/mup/coord-check`` (§7 and Appendix D.1): the mean |x| of every
layer's output at each step and width, under the standard parametrization
(SP) and µP, with the slope against width and a verdict per layer.
:class:`TransferCheck` is the answer of ``POST /v1/mup/transfer-check``
(Figure 1): the final training loss over a learning-rate grid at each width,
the best learning rate per width and how far it drifts. The service trains;
these classes only read what it found.

As every model of this client, each class reads the fields it knows, ignores
the others (a newer service never breaks an older client) and keeps the
whole JSON object in ``raw``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import InvalidResponse
from .models import (
    _convert,
    _from_json,
    _integers,
    _mapping,
    _model,
    _raw,
    _strings,
    _tuple_of,
)

Check = TypeVar("Check")

# Values of a series, kept as sent: null is a diverged run or an undefined slope.
_numbers = _tuple_of(lambda value, where: value)
_grid = _tuple_of(_numbers)
_dims_per_width = _tuple_of(_mapping)


@dataclass(frozen=True)
class TrainingCost:
    """The work of a check, estimated from the shapes before any training.

    ``multiply_adds`` counts the matrix products of every forward and backward
    pass, ``other`` the elementwise and optimizer work (in multiply-adds),
    ``random_numbers`` the parameters and data drawn, ``table_rows`` the µP
    and init rows computed, ``runs`` the networks trained and ``peak_bytes``
    the working memory of the widest one. ``work`` folds them into
    multiply-add equivalents, the figure the answer's ``budget`` bounds.
    """

    multiply_adds: int
    other: int
    random_numbers: int
    table_rows: int
    runs: int
    peak_bytes: int
    work: int


@dataclass(frozen=True)
class CheckAxis:
    """A chart axis of a check: its label and scale (``linear``, ``log2``, ``log``)."""

    label: str
    scale: str


def _axes(value: Any, where: str) -> dict[str, CheckAxis]:
    """The ``axes`` object, ``{"x": {...}, "y": {...}}``, each a :class:`CheckAxis`."""
    axes = _mapping(value, where)

    return {
        name: _from_json(CheckAxis, axis, f"{where}.{name}")
        for name, axis in axes.items()
    }


def _check(cls: type[Check], data: Any, where: str) -> Check:
    """A check's answer, read with ``dims`` and ``axes`` optional.

    The contract does not require those two members (the service sends
    both), so an answer without them reads as no dims and no axes instead of
    failing.
    """
    if not isinstance(data, Mapping):
        raise InvalidResponse(
            f"{where}: expected a JSON object, got {type(data).__name__}"
        )

    known = {**data, "dims": data.get("dims", []), "axes": data.get("axes", {})}
    check = _from_json(cls, known, where)

    return dataclasses.replace(check, raw=dict(data))


@dataclass(frozen=True)
class CoordLayer:
    """One layer's output through the first steps of training, at every width.

    ``mean[i][j]`` is the mean over seeds of mean |x| of the layer's output at
    step ``steps[i]`` of the check and width ``widths[j]``; ``sd`` its SD over
    seeds (0 with one seed). ``slopes[i]`` is the least-squares slope of log2
    mean |x| against log2 width at step i (``None`` where a mean is 0, as a
    zero-initialized readout's at t = 1, or a run diverged). ``verdict`` is
    ``flat`` when |slope| < 0.1 at every step after the init, else ``grows``
    or ``shrinks`` by the sign of ``largest_slope`` (the slope of largest
    size, at step ``largest_slope_step``), or ``undetermined`` when no step
    after the init has a slope. ``kind`` is ``linear`` or ``residual``;
    ``role`` is the µP role of the layer (``input``, ``hidden``, ``output``).
    """

    name: str
    kind: str
    role: str
    mean: tuple[tuple[float | None, ...], ...] = _convert(_grid)
    sd: tuple[tuple[float | None, ...], ...] = _convert(_grid)
    slopes: tuple[float | None, ...] = _convert(_numbers)
    verdict: str
    largest_slope: float | None
    largest_slope_step: int | None
    raw: dict[str, Any] = _raw()


@dataclass(frozen=True)
class CoordParametrization:
    """The coordinate check of one parametrization, ``sp`` or ``mup``.

    ``layers`` are in forward order; ``hidden_flat`` says whether every
    hidden layer is flat, and ``summary`` says it in one sentence.
    """

    name: str
    hidden_flat: bool
    summary: str
    layers: tuple[CoordLayer, ...] = _convert(_tuple_of(_model(CoordLayer)))
    raw: dict[str, Any] = _raw()

    def layer(self, name: str) -> CoordLayer:
        """The layer called ``name``, a dotted layer name like ``fc2``."""
        for layer in self.layers:
            if layer.name == name:
                return layer

        names = ", ".join(layer.name for layer in self.layers)
        raise KeyError(f"no layer named {name!r} under {self.name}; layers: {names}")


def _parametrization(entries: tuple[Any, ...], name: str) -> Any:
    """The entry of ``entries`` called ``name``, or a KeyError listing the names."""
    for entry in entries:
        if entry.name == name:
            return entry

    names = ", ".join(entry.name for entry in entries) or "none"
    raise KeyError(
        f"no parametrization named {name!r} in this check; it has {names}"
        " (ask for sp, mup or both with parametrizations=)"
    )


@dataclass(frozen=True)
class CoordCheck:
    """The answer of ``POST /v1/mup/coord-check``.

    ``widths`` are the values ``width_dim`` took and ``dims`` the spec's dims
    at each width; ``steps`` the t values recorded (t = 1 is the init, then
    one after each update, as the mup package's ``coord_check`` counts).
    Every training choice comes back with its default filled in:
    ``optimizer``, the base ``lr``, ``weight_decay``, ``batch_size``,
    ``seeds``, ``seed``, ``loss``, ``init_scheme`` (the resolved scheme) and
    ``readout_zero_init``. ``data`` describes the synthetic task, ``cost``
    the estimated work and ``budget`` the most the service allows;
    ``axes`` (``x``, ``y``) label the chart. ``parametrizations`` holds one
    :class:`CoordParametrization` per parametrization asked for, in order.
    """

    widths: tuple[int, ...] = _convert(_integers)
    width_dim: str
    dims: tuple[dict[str, int], ...] = _convert(_dims_per_width)
    steps: tuple[int, ...] = _convert(_integers)
    optimizer: str
    lr: float
    weight_decay: float
    batch_size: int
    seeds: int
    seed: int
    loss: str
    init_scheme: dict[str, Any] = _convert(_mapping)
    readout_zero_init: bool
    parametrizations: tuple[CoordParametrization, ...] = _convert(
        _tuple_of(_model(CoordParametrization))
    )
    data: str
    cost: TrainingCost = _convert(_model(TrainingCost))
    budget: float
    axes: dict[str, CheckAxis] = _convert(_axes)
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> CoordCheck:
        return _check(cls, data, "coordinate check")

    def parametrization(self, name: str) -> CoordParametrization:
        """The check under ``name``: ``"sp"`` or ``"mup"``."""
        return _parametrization(self.parametrizations, name)


@dataclass(frozen=True)
class TransferCurve:
    """The final training loss at one width over the learning-rate grid.

    ``losses[k]`` is the mean over seeds of the final loss at the check's
    ``lrs[k]`` (``None`` when a run diverged), ``sd`` its SD over seeds;
    ``best_index`` is the grid index of the lowest loss and ``best_lr`` its
    learning rate (both ``None`` when every run diverged).
    """

    width: int
    losses: tuple[float | None, ...] = _convert(_numbers)
    sd: tuple[float | None, ...] = _convert(_numbers)
    best_index: int | None
    best_lr: float | None
    raw: dict[str, Any] = _raw()


@dataclass(frozen=True)
class TransferParametrization:
    """The transfer check of one parametrization, ``sp`` or ``mup``.

    ``curves`` has one :class:`TransferCurve` per width, in order. ``drift``
    is how many grid steps the best learning rate moves across the widths
    (largest best index minus smallest) and ``drift_log2`` the same in log2
    units; ``verdict`` is ``transfers`` when the drift is at most one grid
    step, ``drifts`` otherwise and ``undetermined`` when a width has no
    finite loss (then the drifts are ``None``).
    """

    name: str
    curves: tuple[TransferCurve, ...] = _convert(_tuple_of(_model(TransferCurve)))
    drift: int | None
    drift_log2: float | None
    verdict: str
    summary: str
    raw: dict[str, Any] = _raw()

    def curve(self, width: int) -> TransferCurve:
        """The curve at ``width``, one of the check's widths."""
        for curve in self.curves:
            if curve.width == width:
                return curve

        widths = ", ".join(str(curve.width) for curve in self.curves)
        raise KeyError(
            f"no curve at width {width!r} under {self.name}; widths: {widths}"
        )


@dataclass(frozen=True)
class TransferCheck:
    """The answer of ``POST /v1/mup/transfer-check``.

    ``lrs`` is the grid of base learning rates (``log2_lrs`` their log2, the
    chart's x), ``steps`` the updates per run and ``loss_window`` how many of
    the last training losses the final loss averages. ``verdict`` compares
    the parametrizations in one sentence. The other fields are those of
    :class:`CoordCheck`: ``widths``, ``width_dim``, ``dims``, the echoed
    training choices, ``data``, ``cost``, ``budget``, ``axes`` and ``notes``
    (a best learning rate at the edge of the grid is noted there).
    """

    widths: tuple[int, ...] = _convert(_integers)
    width_dim: str
    dims: tuple[dict[str, int], ...] = _convert(_dims_per_width)
    lrs: tuple[float, ...] = _convert(_numbers)
    log2_lrs: tuple[float, ...] = _convert(_numbers)
    steps: int
    loss_window: int
    optimizer: str
    weight_decay: float
    batch_size: int
    seeds: int
    seed: int
    loss: str
    init_scheme: dict[str, Any] = _convert(_mapping)
    readout_zero_init: bool
    verdict: str
    parametrizations: tuple[TransferParametrization, ...] = _convert(
        _tuple_of(_model(TransferParametrization))
    )
    data: str
    cost: TrainingCost = _convert(_model(TrainingCost))
    budget: float
    axes: dict[str, CheckAxis] = _convert(_axes)
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> TransferCheck:
        return _check(cls, data, "transfer check")

    def parametrization(self, name: str) -> TransferParametrization:
        """The check under ``name``: ``"sp"`` or ``"mup"``."""
        return _parametrization(self.parametrizations, name)
