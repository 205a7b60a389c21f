"""Typed views of the init statistics and of the chart data.

:class:`Statistics` is the answer of ``POST /v1/statistics``: one
:class:`StatisticsLayer` per point of the network, each with its
infinite-width prediction (:class:`AnalyticValues`) and its finite-width
measurement (:class:`MonteCarloValues`, mean ± SD over the networks drawn),
and a :class:`StatisticsSummary` with the verdicts and the phase.
:class:`PropagationChart` and :class:`PhaseDiagram` are the chart data of
``GET /v1/visualizations/propagation`` and ``/phase-diagram``.

As every model of this client, each class reads the fields it knows, ignores
the others (a newer service never breaks an older client) and keeps the
whole JSON object in ``raw``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import (
    OverrideResult,
    _convert,
    _from_json,
    _mapping,
    _model,
    _optional,
    _raw,
    _strings,
    _tuple_of,
)

_numbers = _tuple_of(lambda value, where: value)
_integers = _tuple_of(lambda value, where: int(value))
_grid = _tuple_of(_numbers)
_words = _tuple_of(_strings)
_optional_mapping = _optional(_mapping)


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo statistic over the networks drawn: mean, SD, and SD/√seeds."""

    mean: float | None
    sd: float | None
    standard_error: float | None


@dataclass(frozen=True)
class AnalyticValues:
    """The infinite-width (mean-field) prediction at one row.

    For a dense row ``second_moment``, ``mean`` and ``variance`` are those of
    the pre-activation h = Wx + b; ``chi_1`` is σ_w²·E[φ'(h)²]; gradients are
    per example. ``None`` where a value does not apply or overflowed.
    """

    second_moment: float | None
    mean: float | None
    variance: float | None
    post_activation_second_moment: float | None
    post_activation_mean: float | None
    correlation: float | None
    chi_1: float | None
    excess_kurtosis: float | None
    saturation_fraction: float | None
    gradient_second_moment: float | None
    input_gradient_second_moment: float | None
    gradient_ratio: float | None
    weight_gradient_second_moment: float | None
    bias_gradient_second_moment: float | None
    sigma_w2: float | None
    sigma_b2: float | None


_estimate = _optional(_model(Estimate))


@dataclass(frozen=True)
class MonteCarloValues:
    """The finite-width measurement at one row: each statistic's :class:`Estimate`.

    ``None`` for a statistic that does not apply to the row (saturation of a
    ReLU, gradients of a forward-only run).
    """

    second_moment: Estimate | None = _convert(_estimate)
    mean: Estimate | None = _convert(_estimate)
    variance: Estimate | None = _convert(_estimate)
    excess_kurtosis: Estimate | None = _convert(_estimate)
    post_activation_second_moment: Estimate | None = _convert(_estimate)
    post_activation_mean: Estimate | None = _convert(_estimate)
    correlation: Estimate | None = _convert(_estimate)
    dead_fraction: Estimate | None = _convert(_estimate)
    saturation_fraction: Estimate | None = _convert(_estimate)
    gradient_second_moment: Estimate | None = _convert(_estimate)
    input_gradient_second_moment: Estimate | None = _convert(_estimate)
    weight_gradient_second_moment: Estimate | None = _convert(_estimate)
    bias_gradient_second_moment: Estimate | None = _convert(_estimate)
    gradient_ratio: Estimate | None = _convert(_estimate)


@dataclass(frozen=True)
class StatisticsLayer:
    """One point of the network, in forward order, with both engines' values.

    ``kind`` is ``dense``, ``embedding``, ``norm``, ``attention`` or
    ``residual``; ``analytic`` is ``None`` for the Monte Carlo method and
    ``monte_carlo`` for the analytic one.
    """

    name: str
    kind: str
    width: int
    activation: str
    top_level: bool
    sampling: str | None
    expected_gradient_ratio: float | None
    analytic: AnalyticValues | None = _convert(_optional(_model(AnalyticValues)))
    monte_carlo: MonteCarloValues | None = _convert(_optional(_model(MonteCarloValues)))
    raw: dict[str, Any] = _raw()


@dataclass(frozen=True)
class Trend:
    """A verdict on one series: ``vanishing``, ``stable`` or ``exploding``.

    ``ratio`` is the last layer's value over the first's, ``growth_factor``
    the geometric mean change per layer, ``crossing_layer`` the first layer
    beyond 10× or 0.1× (``None`` when none is), ``reason`` the sentence.
    """

    verdict: str
    ratio: float | None
    growth_factor: float | None
    crossing_layer: str | None
    crossing_index: int | None
    reason: str


@dataclass(frozen=True)
class Phase:
    """The mean-field phase of a homogeneous stack (``homogeneous``), or why not.

    ``phase`` is ``ordered``, ``chaotic`` or ``critical``; ``q_star``, ``chi_1``
    and the depth scales ``xi_q``, ``xi_c``, ``xi_grad`` are ``None`` where
    undefined or infinite.
    """

    homogeneous: bool
    reason: str
    phase: str | None
    activation: dict[str, Any] | None = _convert(_optional_mapping)
    sigma_w2: float | None
    sigma_b2: float | None
    q_star: float | None
    c_star: float | None
    chi_1: float | None
    xi_q: float | None
    xi_c: float | None
    xi_grad: float | None


_trend = _model(Trend)


@dataclass(frozen=True)
class StatisticsSummary:
    """Forward and backward verdicts and the phase; ``source`` says what they read."""

    forward: Trend = _convert(_trend)
    backward: Trend | None = _convert(_optional(_trend))
    phase: Phase = _convert(_model(Phase))
    source: str


@dataclass(frozen=True)
class Cost:
    """A Monte Carlo cost, estimated from the shapes before any work.

    ``work`` = ``flops`` + ``random_numbers`` × ``random_number_flops`` is held
    against ``compute_budget``, ``peak_bytes`` against ``memory_budget``.
    """

    flops: int
    random_numbers: int
    work: int
    random_number_flops: int
    peak_bytes: int
    compute_budget: int
    memory_budget: int


_cost = _optional(_model(Cost))


@dataclass(frozen=True)
class Statistics:
    """The answer of ``POST /v1/statistics``.

    ``init`` is the resolved scheme (post it again to get the same answer),
    ``cost`` the Monte Carlo estimate (``None`` for the analytic method) and
    ``numpy_version`` the numpy whose generators drew the numbers.
    """

    method: str
    init: dict[str, Any] = _convert(_mapping)
    overrides: tuple[OverrideResult, ...] = _convert(_tuple_of(_model(OverrideResult)))
    seed: int
    seeds: int
    batch_size: int
    backward: bool
    spatial_size: int
    sequence_length: int
    input: dict[str, Any] = _convert(_mapping)
    numpy_version: str
    cost: Cost | None = _convert(_cost)
    layers: tuple[StatisticsLayer, ...] = _convert(_tuple_of(_model(StatisticsLayer)))
    summary: StatisticsSummary = _convert(_model(StatisticsSummary))
    attention_model: str | None
    monte_carlo_model: str | None
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> Statistics:
        return _from_json(cls, data, "statistics")

    def layer(self, name: str) -> StatisticsLayer:
        """The row called ``name`` (a layer's dotted name, ``h.0.attn.q``)."""
        for layer in self.layers:
            if layer.name == name:
                return layer

        example = self.layers[0].name if self.layers else None
        raise KeyError(
            f"no row named {name!r} among {len(self.layers)}; names are dotted"
            f" layer names like {example!r}"
        )


@dataclass(frozen=True)
class Axis:
    """An axis of a chart: what it shows, its unit and the suggested scale."""

    label: str
    unit: str
    scale: str


@dataclass(frozen=True)
class Band:
    """A Monte Carlo band, one value per x: mean, SD, mean − SD and mean + SD."""

    mean: tuple[float | None, ...] = _convert(_numbers)
    sd: tuple[float | None, ...] = _convert(_numbers)
    lower: tuple[float | None, ...] = _convert(_numbers)
    upper: tuple[float | None, ...] = _convert(_numbers)


@dataclass(frozen=True)
class Series:
    """One curve: a scheme and a direction, its analytic line and its band."""

    scheme: dict[str, Any] = _convert(_mapping)
    direction: str
    label: str
    analytic: tuple[float | None, ...] | None = _convert(_optional(_numbers))
    monte_carlo: Band | None = _convert(_optional(_model(Band)))


@dataclass(frozen=True)
class SchemeVerdict:
    """What the chart's network does under one scheme."""

    scheme: dict[str, Any] = _convert(_mapping)
    forward: Trend = _convert(_trend)
    backward: Trend | None = _convert(_optional(_trend))
    phase: Phase = _convert(_model(Phase))


_axis = _model(Axis)


@dataclass(frozen=True)
class PropagationChart:
    """The answer of ``GET /v1/visualizations/propagation``.

    ``x`` is the layer (1 … depth); ``series`` holds, for each scheme in the
    order asked, its forward then its backward curve; plot forward curves on
    ``forward_axis`` and backward ones on ``backward_axis``.
    """

    activation: dict[str, Any] = _convert(_mapping)
    depth: int
    width: int
    sigma_b2: float
    method: str
    input_second_moment: float
    seed: int
    seeds: int
    batch_size: int
    numpy_version: str
    cost: Cost | None = _convert(_cost)
    x: tuple[int, ...] = _convert(_integers)
    x_axis: Axis = _convert(_axis)
    forward_axis: Axis = _convert(_axis)
    backward_axis: Axis = _convert(_axis)
    series: tuple[Series, ...] = _convert(_tuple_of(_model(Series)))
    verdicts: tuple[SchemeVerdict, ...] = _convert(_tuple_of(_model(SchemeVerdict)))
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> PropagationChart:
        return _from_json(cls, data, "propagation chart")

    def curve(self, scheme: str, direction: str = "forward") -> Series:
        """The series of scheme ``scheme`` (its name) in ``direction``."""
        for series in self.series:
            if series.scheme.get("name") == scheme and series.direction == direction:
                return series

        names = sorted({series.scheme.get("name") for series in self.series})
        raise KeyError(
            f"no {direction} series for {scheme!r}; the chart has {', '.join(names)}"
        )


@dataclass(frozen=True)
class EdgePoint:
    """A point of the edge of chaos: χ₁ = 1 at the fixed point q*."""

    sigma_b2: float
    sigma_w2: float
    q_star: float | None


@dataclass(frozen=True)
class PhaseDiagram:
    """The answer of ``GET /v1/visualizations/phase-diagram``.

    Grids are indexed ``[i][j]``: i over ``sigma_b2`` (rows), j over
    ``sigma_w2`` (columns); ``None`` where a value is undefined or infinite.
    ``edge`` is the edge of chaos for every σ_b² of the grid that has one.
    """

    activation: dict[str, Any] = _convert(_mapping)
    q_input: float
    sigma_w2: tuple[float, ...] = _convert(_numbers)
    sigma_b2: tuple[float, ...] = _convert(_numbers)
    chi_1: tuple[tuple[float, ...], ...] = _convert(_grid)
    q_star: tuple[tuple[float | None, ...], ...] = _convert(_grid)
    c_star: tuple[tuple[float | None, ...], ...] = _convert(_grid)
    xi_c: tuple[tuple[float | None, ...], ...] = _convert(_grid)
    phase: tuple[tuple[str, ...], ...] = _convert(_words)
    edge: tuple[EdgePoint, ...] = _convert(_tuple_of(_model(EdgePoint)))
    x_axis: Axis = _convert(_axis)
    y_axis: Axis = _convert(_axis)
    notes: tuple[str, ...] = _convert(_strings)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: Any) -> PhaseDiagram:
        return _from_json(cls, data, "phase diagram")
