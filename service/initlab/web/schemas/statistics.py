"""Requests and responses of the init statistics and of the chart data.

``POST /v1/statistics`` takes a spec, the init to draw it with (a scheme as in
``/v1/recommendations``, with overrides) and how to measure it; it answers
with per-layer rows and a summary. ``GET /v1/visualizations/propagation`` and
``GET /v1/visualizations/phase-diagram`` take query parameters and answer with
series and grids ready to plot.

Bounds that depend on the server (the largest batch, the compute budget) are
configuration (:class:`initlab.web.config.StatisticsLimits`) and are checked
by the routes, which refuse with ``limit-exceeded``; the schemas check only
what holds everywhere (a batch is a positive integer).
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, fields, validate

from initlab.core.activations import ACTIVATION_NAMES, ACTIVATION_PARAMETERS
from initlab.core.errors import json_value
from initlab.core.schemes import OPTION_MAGNITUDE
from initlab.core.statistics import METHODS
from initlab.core.types import SchemeChoice
from initlab.web.schemas.catalog import ACTIVATION_PARAMETER_NAMES, QueryNumber
from initlab.web.schemas.recommendations import (
    AUTO_SCHEME,
    RESOLVED_SCHEME_COMPONENT,
    SCHEME_REQUEST_COMPONENT,
    OverrideResultSchema,
    OverridesField,
    ResolvedSchemeField,
    SchemeRequestField,
)
from initlab.web.schemas.spec import OneOfWithHint, StrictBoolean, StrictSchema

DEFAULT_METHOD = "both"
DEFAULT_BATCH_SIZE = 64
DEFAULT_SEEDS = 8
DEFAULT_SEED = 0
DEFAULT_SPATIAL_SIZE = 8
DEFAULT_SEQUENCE_LENGTH = 8
# The largest integer every JSON parser reads exactly (IEEE double).
MAX_SEED = 2**53 - 1
# Moments of larger inputs overflow the float32 arithmetic of the simulation.
MAX_INPUT_SECOND_MOMENT = 1e12

DEFAULT_CHART_SCHEMES = ("kaiming_normal", "xavier_normal")
DEFAULT_CHART_ACTIVATION = "relu"
DEFAULT_CHART_DEPTH = 20
DEFAULT_CHART_WIDTH = 256
DEFAULT_PHASE_ACTIVATION = "tanh"
DEFAULT_SIGMA_W2_RANGE = (0.25, 4.0)
DEFAULT_SIGMA_B2_RANGE = (0.0, 0.5)
DEFAULT_GRID_STEPS = 41


def _component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


class JsonNumber(fields.Float):
    """A finite JSON number: ``"1.5"`` and ``true`` are mistakes in a JSON body."""

    default_error_messages = {
        "invalid": "must be a JSON number; got {input}",
        "special": "must be a finite number; got {input}",
        "too_large": "must be a finite number; got {input}, which overflows a"
        " double-precision number",
    }

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=json_value(value))
        if isinstance(value, int):
            # An integer literal of 400 digits parses; as a double it is infinite.
            try:
                float(value)
            except OverflowError:
                raise self.make_error("too_large", input=json_value(value)) from None

        return super()._validated(value)


class JsonInteger(fields.Integer):
    """A JSON integer: ``64.0``, ``"64"`` and ``true`` are refused."""

    default_error_messages = {"invalid": "must be an integer; got {input}"}

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid", input=json_value(value))

        return value


def _at_least(minimum: int) -> validate.Range:
    return validate.Range(
        min=minimum, error=f"must be at least {minimum}; got {{input}}"
    )


# --- POST /v1/statistics ---------------------------------------------------------


class StatisticsInputSchema(StrictSchema):
    """The raw network input the statistics start from."""

    what = "statistics input"

    second_moment = JsonNumber(
        load_default=1.0,
        validate=validate.Range(
            min=0,
            max=MAX_INPUT_SECOND_MOMENT,
            min_inclusive=False,
            error="must be a number in (0, 1e12]; got {input}",
        ),
        metadata={
            "description": "E[x²] of the input features, q⁰ = ‖x‖²/n₀ (1.0 for"
            " standardized inputs).",
            "default": 1.0,
            "exclusiveMinimum": 0,
            "maximum": MAX_INPUT_SECOND_MOMENT,
        },
    )
    correlation = JsonNumber(
        load_default=None,
        allow_none=True,
        validate=validate.Range(
            min=-1, max=1, error="must be a number in [-1, 1]; got {input}"
        ),
        metadata={
            "description": "Correlation c⁰ = x_a·x_b/(‖x_a‖‖x_b‖) of a pair of"
            " inputs whose correlation is followed through the layers (the"
            " correlation map of Poole et al. 2016); null (the default) for"
            " inputs drawn independently, whose correlation is 0.",
            "default": None,
            "minimum": -1,
            "maximum": 1,
        },
    )


def _default_input() -> dict[str, Any]:
    return {"second_moment": 1.0, "correlation": None}


class StatisticsRequestSchema(StrictSchema):
    """Body of POST /v1/statistics, apart from the spec's own rules.

    ``spec`` is loaded by :func:`initlab.web.schemas.spec.load_spec`; here it
    only has to be present.
    """

    what = "statistics request"

    spec = fields.Raw(
        required=True,
        metadata={
            "description": "The architecture: named sizes and layers in forward order,"
            " as in /v1/recommendations.",
            "allOf": [_component("SpecSource")],
        },
    )
    init = SchemeRequestField(
        load_default=lambda: SchemeChoice(AUTO_SCHEME),
        metadata={
            "description": "How every parameter is drawn: a scheme as `scheme` in"
            " /v1/recommendations (a name, or an object with options); `auto`"
            " (the default) picks one per tensor.",
            "default": AUTO_SCHEME,
            "allOf": [_component(SCHEME_REQUEST_COMPONENT)],
        },
    )
    overrides = OverridesField(
        load_default=dict,
        metadata={
            "description": "Globs over parameter or layer names, each with the"
            " scheme for the tensors it matches, applied in order over `init` as"
            " in /v1/recommendations (the later match wins).",
            "type": "object",
            "additionalProperties": _component(SCHEME_REQUEST_COMPONENT),
        },
    )
    method = fields.String(
        load_default=DEFAULT_METHOD,
        validate=OneOfWithHint(METHODS, "method"),
        metadata={
            "description": "`analytic`: the infinite-width mean-field prediction"
            " only (always within budget); `monte_carlo`: finite-width networks"
            " drawn and run, mean ± SD over `seeds`; `both` (the default).",
            "default": DEFAULT_METHOD,
            "enum": list(METHODS),
        },
    )
    batch_size = JsonInteger(
        load_default=DEFAULT_BATCH_SIZE,
        validate=_at_least(1),
        metadata={
            "description": "Inputs per simulated network (Monte Carlo); at most"
            " INITLAB_MAX_BATCH_SIZE.",
            "default": DEFAULT_BATCH_SIZE,
            "minimum": 1,
        },
    )
    seeds = JsonInteger(
        load_default=DEFAULT_SEEDS,
        validate=_at_least(1),
        metadata={
            "description": "Independent networks drawn (Monte Carlo): the spread"
            " reported is over them; at most INITLAB_MAX_SEEDS.",
            "default": DEFAULT_SEEDS,
            "minimum": 1,
        },
    )
    seed = JsonInteger(
        load_default=DEFAULT_SEED,
        validate=validate.Range(
            min=0,
            max=MAX_SEED,
            error="must be an integer in [0, 2**53 - 1]; got {input}",
        ),
        metadata={
            "description": "Root of every random stream: the same seed gives the"
            " same numbers, bit for bit, on every run and worker.",
            "default": DEFAULT_SEED,
            "minimum": 0,
            "maximum": MAX_SEED,
        },
    )
    input = fields.Nested(
        StatisticsInputSchema,
        load_default=_default_input,
        metadata={"description": "The input the statistics start from."},
    )

    backward = StrictBoolean(
        load_default=True,
        metadata={
            "description": "Also follow the gradient backward (the default). Without"
            " it the Monte Carlo forward pass samples each Gaussian layer's"
            " pre-activations from their exact kernel instead of drawing its"
            " weights: much cheaper for wide layers.",
            "default": True,
        },
    )
    spatial_size = JsonInteger(
        load_default=DEFAULT_SPATIAL_SIZE,
        validate=_at_least(1),
        metadata={
            "description": "Side of the grid a conv net is simulated on (circular"
            " padding, per-location statistics); at most INITLAB_MAX_SPATIAL_SIZE.",
            "default": DEFAULT_SPATIAL_SIZE,
            "minimum": 1,
        },
    )
    sequence_length = JsonInteger(
        load_default=DEFAULT_SEQUENCE_LENGTH,
        validate=_at_least(1),
        metadata={
            "description": "Tokens per sequence for a network with attention or"
            " embeddings (the T of the attention model); at most"
            " INITLAB_MAX_SEQUENCE_LENGTH.",
            "default": DEFAULT_SEQUENCE_LENGTH,
            "minimum": 1,
        },
    )


def _value(description: str) -> fields.Float:
    """A computed number: null where it does not apply or is not finite."""
    return fields.Float(
        required=True, allow_none=True, metadata={"description": description}
    )


class StatisticsInputEchoSchema(Schema):
    """The input the statistics started from, defaults filled in."""

    second_moment = fields.Float(
        required=True, metadata={"description": "E[x²] of the input features."}
    )
    correlation = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "Correlation of the input pair; null when the inputs"
            " were drawn independently."
        },
    )


class CostSchema(Schema):
    """The Monte Carlo cost, estimated from the shapes before any work."""

    flops = fields.Integer(
        required=True,
        metadata={
            "description": "Floating-point operations of products, factorisations"
            " and elementwise work, over every seed."
        },
    )
    random_numbers = fields.Integer(
        required=True,
        metadata={"description": "Random numbers drawn, over every seed."},
    )
    work = fields.Integer(
        required=True,
        metadata={
            "description": "flops + random_numbers × random_number_flops: the"
            " flop-equivalents held against compute_budget."
        },
    )
    random_number_flops = fields.Integer(
        required=True,
        metadata={
            "description": "What one random number costs, in flops of a float32"
            " matrix product (measured on the service's reference machine)."
        },
    )
    peak_bytes = fields.Integer(
        required=True,
        metadata={
            "description": "Largest working memory at once, in bytes; it grows"
            " with the batch, not with the seeds."
        },
    )
    compute_budget = fields.Integer(
        required=True,
        metadata={
            "description": "The server's limit on `work` (INITLAB_COMPUTE_BUDGET)."
        },
    )
    memory_budget = fields.Integer(
        required=True,
        metadata={
            "description": "The server's limit on `peak_bytes` (INITLAB_MEMORY_BUDGET)."
        },
    )


# What each analytic value is; a test keeps the keys equal to the fields of
# initlab.core.propagation.AnalyticLayer (beyond name, kind and width).
ANALYTIC_VALUES: dict[str, str] = {
    "second_moment": "E[h²]: of the pre-activation h = Wx + b for a dense row, of"
    " the block's output otherwise.",
    "mean": "E[h], over units and inputs.",
    "variance": "Var[h] = E[h²] − E[h]².",
    "post_activation_second_moment": "E[φ(h)²] (equal to second_moment where no"
    " activation follows).",
    "post_activation_mean": "E[φ(h)].",
    "correlation": "Correlation of h between the two inputs of the pair (the"
    " correlation map, Poole et al. 2016); null where h is 0.",
    "chi_1": "χ₁ = σ_w²·E[φ'(h)²] at this layer (Schoenholz et al. 2017): below 1"
    " the gradient shrinks through the layer, above 1 it grows; null off dense"
    " rows.",
    "excess_kurtosis": "E[h⁴]/E[h²]² − 3 over units: 0 where h is Gaussian at"
    " infinite width, null where it is not predicted.",
    "saturation_fraction": "Fraction of pre-activations where a bounded"
    " activation (tanh, sigmoid, softsign) is saturated, |φ'(h)| < 1% of its"
    " largest value; null for other activations.",
    "gradient_second_moment": "E[(∂L/∂h)²] per example (per location for a"
    " conv), for a loss whose gradient at the output has second moment 1.",
    "input_gradient_second_moment": "E[(∂L/∂x)²] at the row's input.",
    "gradient_ratio": "input_gradient_second_moment over the gradient second"
    " moment at φ(h): χ₁·n_out/n_in for a dense row.",
    "weight_gradient_second_moment": "Second moment of a weight's gradient"
    " entries, E[δ²]·E[x²].",
    "bias_gradient_second_moment": "Second moment of a bias's gradient entries;"
    " null without bias.",
    "sigma_w2": "σ_w² = E[W²]·fan_in of a dense row's weights.",
    "sigma_b2": "σ_b² = E[b²] of a dense row's bias (0 without one).",
}

# What each Monte Carlo statistic is; a test keeps the keys equal to
# initlab.core.statistics.MONTE_CARLO_STATISTICS.
MONTE_CARLO_VALUES: dict[str, str] = {
    "second_moment": "E[h²] of the row's values, over examples, positions and units.",
    "mean": "E[h].",
    "variance": "Var[h].",
    "excess_kurtosis": "E[(h − E h)⁴]/Var[h]² − 3: 0 for a Gaussian; finite width"
    " makes it positive.",
    "post_activation_second_moment": "E[φ(h)²].",
    "post_activation_mean": "E[φ(h)].",
    "correlation": "Mean cosine between the values of the two inputs of each pair.",
    "dead_fraction": "Fraction of units whose φ' is 0 on every input of the"
    " batch (ReLU family).",
    "saturation_fraction": "Fraction of pre-activations where a bounded"
    " activation is saturated, |φ'(h)| < 1% of its largest value.",
    "gradient_second_moment": "E[(∂L/∂h)²] per example and position.",
    "input_gradient_second_moment": "E[(∂L/∂x)²] at the row's input.",
    "weight_gradient_second_moment": "Mean square of the weight gradient's"
    " per-example, per-position contributions.",
    "bias_gradient_second_moment": "Mean square of the bias gradient's"
    " per-example contributions.",
    "gradient_ratio": "For a top-level dense layer: its input gradient second"
    " moment over its output's, per network (compare expected_gradient_ratio).",
}

AnalyticValuesSchema = Schema.from_dict(
    {name: _value(text) for name, text in ANALYTIC_VALUES.items()},
    name="AnalyticValuesSchema",
)
"""The infinite-width prediction at one row."""


class EstimateSchema(Schema):
    """A Monte Carlo statistic over the networks drawn."""

    mean = _value("Mean over the networks (seeds).")
    sd = _value("Standard deviation over the networks (ddof 1; 0 for one seed).")
    standard_error = _value("sd/√seeds: the uncertainty of the mean.")


def _estimate(description: str) -> fields.Nested:
    return fields.Nested(
        EstimateSchema,
        required=True,
        allow_none=True,
        metadata={"description": description + " Null where it does not apply."},
    )


MonteCarloValuesSchema = Schema.from_dict(
    {name: _estimate(text) for name, text in MONTE_CARLO_VALUES.items()},
    name="MonteCarloValuesSchema",
)
"""The finite-width measurement at one row: each statistic's mean ± SD."""


class StatisticsLayerSchema(Schema):
    """One point of the network, in forward order."""

    name = fields.String(
        required=True,
        metadata={
            "description": "The layer's dotted name; a projection of an attention"
            " block or gated MLP adds `.q`, `.gate`, ...; an attention block's"
            " mixed values carry the block's name; a residual group's output the"
            " group's."
        },
    )
    kind = fields.String(
        required=True,
        metadata={
            "description": "`dense` (linear or conv layer, or a projection),"
            " `embedding` (the summed tables), `norm`, `attention` (the mixed"
            " values softmax(QKᵀ/√d)·V) or `residual` (a group's output).",
            "enum": ["dense", "embedding", "norm", "attention", "residual"],
        },
    )
    width = fields.Integer(
        required=True, metadata={"description": "Features (or channels) of the row."}
    )
    activation = fields.String(
        required=True,
        metadata={
            "description": "The activation φ applied after a dense row; `identity`"
            " elsewhere."
        },
    )
    top_level = fields.Boolean(
        required=True,
        metadata={
            "description": "A block of the network itself (not inside a residual"
            " group, attention block or gated MLP): the rows the summary reads."
        },
    )
    sampling = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "How the simulation drew a dense row: `kernel` (exact"
            " Gaussian pre-activations from the previous layer's Gram matrix, no"
            " weights drawn) or `weights`; null for other rows or without Monte"
            " Carlo.",
            "enum": ["kernel", "weights", None],
        },
    )
    expected_gradient_ratio = _value(
        "The analytic gradient ratio χ₁·n_out/n_in of a dense row, against which"
        " the measured `monte_carlo.gradient_ratio` is read."
    )
    analytic = fields.Nested(
        AnalyticValuesSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "The infinite-width prediction; null for method"
            " `monte_carlo`."
        },
    )
    monte_carlo = fields.Nested(
        MonteCarloValuesSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "The finite-width measurement; null for method `analytic`."
        },
    )


class TrendSchema(Schema):
    """How one series of second moments moves through the top-level layers."""

    verdict = fields.String(
        required=True,
        metadata={
            "description": "`exploding` when the last layer's value is over 10× the"
            " first's, `vanishing` under 0.1×, `stable` otherwise (backward:"
            " from the output end).",
            "enum": ["vanishing", "stable", "exploding"],
        },
    )
    ratio = _value("The last layer's value over the first's.")
    growth_factor = _value(
        "ratio^(1/(L−1)): the geometric mean change per layer; null for one layer."
    )
    crossing_layer = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The first layer, in the direction the signal travels,"
            " beyond 10× or 0.1× the first's value; null when none is."
        },
    )
    crossing_index = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "crossing_layer's 1-based position among the layers of"
            " the series."
        },
    )
    reason = fields.String(
        required=True, metadata={"description": "The verdict in one sentence."}
    )


class ActivationEchoField(fields.Field):
    """An activation as ``{"name": ..., <parameter>: <value>}``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any):
        if value is None:
            return None

        return {"name": value.name, **dict(value.params)}


class PhaseSchema(Schema):
    """The mean-field phase of a homogeneous stack, or why there is none."""

    homogeneous = fields.Boolean(
        required=True,
        metadata={
            "description": "Whether the network is a stack of dense layers whose"
            " hidden layers share φ, σ_w² and σ_b²; the values below are null"
            " otherwise."
        },
    )
    reason = fields.String(
        required=True,
        metadata={"description": "Why there is a phase, or why there is none."},
    )
    phase = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "`ordered` (χ₁ < 1: gradients vanish, inputs"
            " converge), `chaotic` (χ₁ > 1: gradients explode, inputs"
            " decorrelate) or `critical` (χ₁ = 1, the edge of chaos: within"
            " 1e-6 of 1, the accuracy of a σ_w² given to 7 significant digits;"
            " ξ_c and ξ_∇ are then null, infinite).",
            "enum": ["ordered", "chaotic", "critical", None],
        },
    )
    activation = ActivationEchoField(
        required=True,
        metadata={
            "description": "The hidden layers' φ, with its parameters.",
            "type": ["object", "null"],
        },
    )
    sigma_w2 = _value("The hidden layers' σ_w² = E[W²]·fan_in.")
    sigma_b2 = _value("The hidden layers' σ_b² = E[b²].")
    q_star = _value(
        "Fixed point q* of the length map reached from the input; 0 when it"
        " collapses, null when it diverges."
    )
    c_star = _value("Stable fixed point c* of the correlation map.")
    chi_1 = _value("χ₁ at q*.")
    xi_q = _value("Depth scale ξ_q = −1/ln χ_q of the length map; null if infinite.")
    xi_c = _value(
        "Depth scale ξ_c = −1/ln χ_c of correlations: how many layers two inputs"
        " stay distinguishable; null if infinite."
    )
    xi_grad = _value(
        "Gradient depth scale ξ_∇ = −1/ln χ₁ (negative when gradients grow);"
        " null if infinite."
    )


class StatisticsSummarySchema(Schema):
    """The verdicts and the phase."""

    forward = fields.Nested(
        TrendSchema,
        required=True,
        metadata={"description": "The forward second moment's verdict."},
    )
    backward = fields.Nested(
        TrendSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "The gradient second moment's verdict; null when the"
            " gradient was not followed."
        },
    )
    phase = fields.Nested(
        PhaseSchema,
        required=True,
        metadata={"description": "The phase of a homogeneous stack."},
    )
    source = fields.String(
        required=True,
        metadata={
            "description": "Which values the verdicts read: the analytic ones when"
            " computed, else the Monte Carlo means.",
            "enum": ["analytic", "monte_carlo"],
        },
    )


class StatisticsResponseSchema(Schema):
    """Response of POST /v1/statistics."""

    method = fields.String(
        required=True,
        metadata={"description": "The method used.", "enum": list(METHODS)},
    )
    init = ResolvedSchemeField(
        required=True,
        metadata={
            "description": "The init, every option filled in; it can be posted"
            " again as `init`.",
            "allOf": [_component(RESOLVED_SCHEME_COMPONENT)],
        },
    )
    overrides = fields.List(
        fields.Nested(OverrideResultSchema),
        required=True,
        metadata={"description": "The overrides in the order given."},
    )
    seed = fields.Integer(
        required=True,
        metadata={"description": "The seed every random stream derives from."},
    )
    seeds = fields.Integer(
        required=True, metadata={"description": "Networks drawn (Monte Carlo)."}
    )
    batch_size = fields.Integer(
        required=True, metadata={"description": "Inputs per network (Monte Carlo)."}
    )
    backward = fields.Boolean(
        required=True, metadata={"description": "Whether gradients were followed."}
    )
    spatial_size = fields.Integer(
        required=True,
        metadata={"description": "Side of a conv net's simulated grid."},
    )
    sequence_length = fields.Integer(
        required=True,
        metadata={"description": "Tokens per sequence (attention, embeddings)."},
    )
    input = fields.Nested(
        StatisticsInputEchoSchema,
        required=True,
        metadata={"description": "The input the statistics started from."},
    )
    numpy_version = fields.String(
        required=True,
        metadata={
            "description": "The numpy whose generators drew the numbers: the same"
            " seed gives the same numbers on the same numpy."
        },
    )
    cost = fields.Nested(
        CostSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "The Monte Carlo cost estimated before any work; null"
            " for method `analytic`, which draws nothing."
        },
    )
    layers = fields.List(
        fields.Nested(StatisticsLayerSchema),
        required=True,
        metadata={
            "description": "Every point of the network in forward order; a"
            " residual group's norm, branch and shortcut rows precede its"
            " output's row."
        },
    )
    summary = fields.Nested(
        StatisticsSummarySchema,
        required=True,
        metadata={"description": "Forward and backward verdicts and the phase."},
    )
    attention_model = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The model of attention at init behind the analytic"
            " values; null without attention."
        },
    )
    monte_carlo_model = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "What the simulation draws and measures (batch layout,"
            " conv grid, norms, gradients); null without Monte Carlo."
        },
    )
    notes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "What a careful user should know, one sentence each."},
    )


# --- GET /v1/visualizations/... ---------------------------------------------------


class AxisSchema(Schema):
    """An axis of a chart."""

    label = fields.String(required=True, metadata={"description": "What it shows."})
    unit = fields.String(required=True, metadata={"description": "Its unit."})
    scale = fields.String(
        required=True,
        metadata={
            "description": "The suggested scale: `log` when the values plotted on"
            " it are all positive and span more than 10×.",
            "enum": ["linear", "log"],
        },
    )


class BandSchema(Schema):
    """A Monte Carlo band: mean ± SD over the networks drawn, one value per x."""

    mean = fields.List(
        fields.Float(allow_none=True),
        required=True,
        metadata={"description": "Mean over the networks, per layer."},
    )
    sd = fields.List(
        fields.Float(allow_none=True),
        required=True,
        metadata={"description": "SD over the networks, per layer."},
    )
    lower = fields.List(
        fields.Float(allow_none=True),
        required=True,
        metadata={"description": "mean − sd, per layer."},
    )
    upper = fields.List(
        fields.Float(allow_none=True),
        required=True,
        metadata={"description": "mean + sd, per layer."},
    )


class SeriesSchema(Schema):
    """One curve: a scheme, a direction, the analytic line and the Monte Carlo band."""

    scheme = ResolvedSchemeField(
        required=True,
        metadata={
            "description": "The scheme, every option filled in.",
            "allOf": [_component(RESOLVED_SCHEME_COMPONENT)],
        },
    )
    direction = fields.String(
        required=True,
        metadata={
            "description": "`forward`: E[h²] of the pre-activation (plot on"
            " forward_axis); `backward`: E[(∂L/∂h)²] (plot on backward_axis).",
            "enum": ["forward", "backward"],
        },
    )
    label = fields.String(
        required=True, metadata={"description": "A legend entry for the curve."}
    )
    analytic = fields.List(
        fields.Float(allow_none=True),
        required=True,
        allow_none=True,
        metadata={
            "description": "The infinite-width line, one value per x; null for"
            " method `monte_carlo`, and for a scheme whose signal passes the"
            " mean-field integrals' range (a note names it; its verdicts then"
            " read the Monte Carlo means)."
        },
    )
    monte_carlo = fields.Nested(
        BandSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The finite-width band; null for method `analytic`."},
    )


class SchemeVerdictSchema(Schema):
    """What the chart's network does under one scheme."""

    scheme = ResolvedSchemeField(
        required=True,
        metadata={
            "description": "The scheme, every option filled in.",
            "allOf": [_component(RESOLVED_SCHEME_COMPONENT)],
        },
    )
    forward = fields.Nested(
        TrendSchema, required=True, metadata={"description": "The forward verdict."}
    )
    backward = fields.Nested(
        TrendSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The backward verdict."},
    )
    phase = fields.Nested(
        PhaseSchema,
        required=True,
        metadata={"description": "The phase of the stack under this scheme."},
    )


class PropagationChartSchema(Schema):
    """Response of GET /v1/visualizations/propagation."""

    activation = ActivationEchoField(
        required=True,
        metadata={
            "description": "The activation of every layer, with its parameters.",
            "type": "object",
        },
    )
    depth = fields.Integer(required=True, metadata={"description": "Layers."})
    width = fields.Integer(
        required=True, metadata={"description": "Units of every layer and input."}
    )
    sigma_b2 = fields.Float(
        required=True,
        metadata={"description": "σ_b², for the schemes that draw biases from it."},
    )
    method = fields.String(
        required=True,
        metadata={"description": "The method used.", "enum": list(METHODS)},
    )
    input_second_moment = fields.Float(
        required=True, metadata={"description": "E[x²] of the input features."}
    )
    seed = fields.Integer(
        required=True,
        metadata={"description": "The seed every random stream derives from."},
    )
    seeds = fields.Integer(
        required=True, metadata={"description": "Networks drawn per scheme."}
    )
    batch_size = fields.Integer(
        required=True, metadata={"description": "Inputs per network."}
    )
    numpy_version = fields.String(
        required=True,
        metadata={"description": "The numpy whose generators drew the numbers."},
    )
    cost = fields.Nested(
        CostSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "The Monte Carlo cost of every scheme together, checked"
            " before any work; null for method `analytic`."
        },
    )
    x = fields.List(
        fields.Integer(),
        required=True,
        metadata={"description": "The layers, 1 … depth: the x of every series."},
    )
    x_axis = fields.Nested(
        AxisSchema, required=True, metadata={"description": "The x axis."}
    )
    forward_axis = fields.Nested(
        AxisSchema,
        required=True,
        metadata={"description": "The y axis of the forward series."},
    )
    backward_axis = fields.Nested(
        AxisSchema,
        required=True,
        metadata={"description": "The y axis of the backward series."},
    )
    series = fields.List(
        fields.Nested(SeriesSchema),
        required=True,
        metadata={
            "description": "For each scheme in the order asked, its forward then"
            " its backward series."
        },
    )
    verdicts = fields.List(
        fields.Nested(SchemeVerdictSchema),
        required=True,
        metadata={"description": "For each scheme, the verdicts and the phase."},
    )
    notes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "What a careful user should know, one sentence each."},
    )


def _grid(description: str, items: fields.Field | None = None) -> fields.List:
    cell = items or fields.Float(allow_none=True)
    return fields.List(
        fields.List(cell),
        required=True,
        metadata={
            "description": description + " Indexed [i][j]: i over sigma_b2 (rows,"
            " the y axis), j over sigma_w2 (columns, the x axis)."
        },
    )


class EdgePointSchema(Schema):
    """A point of the edge of chaos."""

    sigma_b2 = fields.Float(required=True, metadata={"description": "σ_b²."})
    sigma_w2 = fields.Float(
        required=True, metadata={"description": "σ_w² where χ₁ = 1 at q*."}
    )
    q_star = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "q* on the edge; null where it is not defined."},
    )


class PhaseDiagramChartSchema(Schema):
    """Response of GET /v1/visualizations/phase-diagram."""

    activation = ActivationEchoField(
        required=True,
        metadata={
            "description": "The activation of the stack, with its parameters.",
            "type": "object",
        },
    )
    q_input = fields.Float(
        required=True,
        metadata={
            "description": "The first layer's pre-activation second moment, where"
            " the length map starts."
        },
    )
    sigma_w2 = fields.List(
        fields.Float(),
        required=True,
        metadata={"description": "The σ_w² of the columns, evenly spaced."},
    )
    sigma_b2 = fields.List(
        fields.Float(),
        required=True,
        metadata={"description": "The σ_b² of the rows, evenly spaced."},
    )
    chi_1 = _grid("χ₁ at the fixed point q*.")
    q_star = _grid("The fixed point q*; null where the length map diverges.")
    c_star = _grid("The correlation fixed point c*; null where undefined.")
    xi_c = _grid("The correlation depth scale ξ_c; null where infinite.")
    phase = _grid(
        "`ordered`, `chaotic` or `critical`.",
        fields.String(metadata={"enum": ["ordered", "chaotic", "critical"]}),
    )
    edge = fields.List(
        fields.Nested(EdgePointSchema),
        required=True,
        metadata={
            "description": "The edge of chaos σ_w²(σ_b²) for every σ_b² of the grid"
            " that has one, in σ_b² order: the line to draw over the grids."
        },
    )
    x_axis = fields.Nested(
        AxisSchema, required=True, metadata={"description": "The x axis (σ_w²)."}
    )
    y_axis = fields.Nested(
        AxisSchema, required=True, metadata={"description": "The y axis (σ_b²)."}
    )
    notes = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "What a careful user should know, one sentence each."},
    )


# --- query parameters -------------------------------------------------------------

_QUERY_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


class QueryInteger(fields.Integer):
    """A query parameter holding one integer in decimal digits."""

    default_error_messages = {
        "invalid": "must be an integer written in decimal digits; got {input}",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> int:
        if not isinstance(value, str) or not _QUERY_INTEGER.fullmatch(value):
            raise self.make_error("invalid", input=json_value(value))

        return int(value)


class QuerySchemeList(fields.Field):
    """Scheme names separated by commas: ``kaiming_normal,xavier_normal``."""

    default_error_messages = {
        "invalid": "must be scheme names separated by commas, such as"
        " kaiming_normal,xavier_normal; got {input}",
        "repeated": "names {name} more than once; each scheme is one curve, so"
        " name each once",
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs
    ) -> tuple[str, ...]:
        names = tuple(name.strip() for name in str(value).split(","))
        if not all(names):
            raise self.make_error("invalid", input=json_value(value))
        repeated = next(
            (name for index, name in enumerate(names) if name in names[:index]), None
        )
        if repeated is not None:
            raise self.make_error("repeated", name=json_value(repeated))

        return names


class QuerySchema(StrictSchema):
    """Query parameters: an unknown one is refused naming the allowed ones."""

    what = "query"
    error_messages = {
        **StrictSchema.error_messages,
        "unknown": "unknown query parameter {input}; allowed parameters:"
        " {allowed}{hint}",
    }


def _activation_fields(default: str) -> dict[str, fields.Field]:
    """``activation`` and the parameters an activation may take."""
    described: dict[str, fields.Field] = {
        "activation": fields.String(
            load_default=default,
            validate=OneOfWithHint(ACTIVATION_NAMES, "activation"),
            metadata={
                "description": f"The activation φ of every layer (default {default}).",
                "default": default,
                "enum": list(ACTIVATION_NAMES),
            },
        )
    }
    for parameter in ACTIVATION_PARAMETER_NAMES:
        owners = [
            name
            for name in ACTIVATION_NAMES
            if parameter in ACTIVATION_PARAMETERS[name]
        ]
        described[parameter] = QueryNumber(
            metadata={
                "description": f"Parameter of {', '.join(owners)}, with `activation`"
                " naming it.",
            }
        )

    return described


def _query_integer(default: int, minimum: int, description: str) -> QueryInteger:
    return QueryInteger(
        load_default=default,
        validate=_at_least(minimum),
        metadata={"description": description, "default": default, "minimum": minimum},
    )


def _query_number(
    default: float,
    description: str,
    *,
    minimum: float = 0.0,
    exclusive: bool = False,
    maximum: float | None = None,
) -> QueryNumber:
    bound = "exclusiveMinimum" if exclusive else "minimum"
    metadata = {"description": description, "default": default, bound: minimum}
    if maximum is None:
        allowed = f"{'>' if exclusive else '≥'} {minimum:g}"
    else:
        # 1e6 as the scheme options write it, not 1e+06.
        top = f"{maximum:g}".replace("e+0", "e").replace("e+", "e")
        allowed = f"in {'(' if exclusive else '['}{minimum:g}, {top}]"
        metadata["maximum"] = maximum
    return QueryNumber(
        load_default=default,
        validate=validate.Range(
            min=minimum,
            min_inclusive=not exclusive,
            max=maximum,
            error=f"must be {allowed}; got {{input}}",
        ),
        metadata=metadata,
    )


PropagationQuerySchema = QuerySchema.from_dict(
    {
        **_activation_fields(DEFAULT_CHART_ACTIVATION),
        "schemes": QuerySchemeList(
            load_default=lambda: DEFAULT_CHART_SCHEMES,
            metadata={
                "description": "Scheme names to compare, separated by commas, each"
                " named once and taking its default options (sigma_b2 goes to"
                " mean_field); at most INITLAB_MAX_CHART_SCHEMES.",
                "default": ",".join(DEFAULT_CHART_SCHEMES),
                "type": "string",
            },
        ),
        "depth": _query_integer(
            DEFAULT_CHART_DEPTH,
            1,
            "Layers of the MLP; at most INITLAB_MAX_CHART_DEPTH.",
        ),
        "width": _query_integer(
            DEFAULT_CHART_WIDTH,
            1,
            "Units of every layer and of the input; at most INITLAB_MAX_CHART_WIDTH.",
        ),
        "sigma_b2": _query_number(
            0.0, "σ_b², the bias variance of the schemes that draw biases from it."
        ),
        "method": fields.String(
            load_default=DEFAULT_METHOD,
            validate=OneOfWithHint(METHODS, "method"),
            metadata={
                "description": "`analytic`, `monte_carlo` or `both` (the default).",
                "default": DEFAULT_METHOD,
                "enum": list(METHODS),
            },
        ),
        "batch_size": _query_integer(
            DEFAULT_BATCH_SIZE,
            1,
            "Inputs per simulated network; at most INITLAB_MAX_BATCH_SIZE.",
        ),
        "seeds": _query_integer(
            DEFAULT_SEEDS,
            1,
            "Networks drawn per scheme: the band is their mean ± SD; at most"
            " INITLAB_MAX_SEEDS.",
        ),
        "seed": QueryInteger(
            load_default=DEFAULT_SEED,
            validate=validate.Range(
                min=0,
                max=MAX_SEED,
                error="must be an integer in [0, 2**53 - 1]; got {input}",
            ),
            metadata={
                "description": "Root of every random stream.",
                "default": DEFAULT_SEED,
                "minimum": 0,
                "maximum": MAX_SEED,
            },
        ),
        "input_second_moment": QueryNumber(
            load_default=1.0,
            validate=validate.Range(
                min=0,
                max=MAX_INPUT_SECOND_MOMENT,
                min_inclusive=False,
                error="must be a number in (0, 1e12]; got {input}",
            ),
            metadata={
                "description": "E[x²] of the input features.",
                "default": 1.0,
                "exclusiveMinimum": 0,
                "maximum": MAX_INPUT_SECOND_MOMENT,
            },
        ),
    },
    name="PropagationQuerySchema",
)
"""Query parameters of GET /v1/visualizations/propagation."""


def _grid_fields(name: str, symbol: str, low: float, high: float) -> dict:
    """An axis of the phase diagram, bounded as mean_field's options are."""
    positive = name == "sigma_w2"
    return {
        f"{name}_min": _query_number(
            low,
            f"Smallest {symbol} of the grid.",
            exclusive=positive,
            maximum=OPTION_MAGNITUDE,
        ),
        f"{name}_max": _query_number(
            high,
            f"Largest {symbol} of the grid.",
            exclusive=positive,
            maximum=OPTION_MAGNITUDE,
        ),
        f"{name}_steps": _query_integer(
            DEFAULT_GRID_STEPS,
            1,
            f"Evenly spaced values of {symbol} from min to max; at most"
            " INITLAB_MAX_GRID_STEPS.",
        ),
    }


PhaseDiagramQuerySchema = QuerySchema.from_dict(
    {
        **_activation_fields(DEFAULT_PHASE_ACTIVATION),
        **_grid_fields("sigma_w2", "σ_w²", *DEFAULT_SIGMA_W2_RANGE),
        **_grid_fields("sigma_b2", "σ_b²", *DEFAULT_SIGMA_B2_RANGE),
        "q_input": _query_number(
            1.0,
            "The first layer's pre-activation second moment, where the length map"
            " starts (where several fixed points exist, the one it reaches).",
            exclusive=True,
        ),
    },
    name="PhaseDiagramQuerySchema",
)
"""Query parameters of GET /v1/visualizations/phase-diagram."""
