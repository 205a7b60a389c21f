"""µP verified by training: the coordinate check and the learning-rate transfer check.

A lab trusts a µP table (``initlab.core.mup``) once two experiments agree with
the theory (Yang et al. 2022, "Tensor Programs V", arXiv 2203.03466):

- the **coordinate check** (§7 and Appendix D.1; the mup package's
  ``coord_check``): train the same spec at several widths for a few steps and
  record, per layer, the mean |x| of its output at steps t = 1..T (t = 1 the
  init, then one value after each update). Under µP every curve is flat in
  width; under the standard parametrization (SP) hidden and output sizes grow
  with width after the first update;
- the **learning-rate transfer check** (Figure 1): the training loss over a
  grid of learning rates at several widths. Under µP the best learning rate
  stays put as the width grows; under SP it drifts.

Both train with the numpy engine of ``initlab.core.training``, on synthetic
data that every width, parametrization and learning rate sees alike (stated
in each result's ``data``). The µP parametrization at a width is read from
:func:`initlab.core.mup.mup_table` (one source of truth); SP is the same init
scheme applied at that width itself (:func:`initlab.core.recommend.recommend`)
with one global learning rate and weight decay, no forward multipliers and the
readout not zeroed.

Widths: ``width_dim`` takes each value of ``widths``; every other dim listed in
``base_dims`` scales in proportion (base value × width / base width, which
must be an integer); the spec's other dims stay fixed. ``width_dim`` defaults
to ``d_model`` when the spec has it, else to the only dim of ``base_dims``
(else, with no ``base_dims``, to the spec's only dim).

Cost is estimated from the shapes before any work and refused over ``budget``
(:class:`~initlab.core.errors.LimitExceeded`); the training then runs while
holding ``work_slot()`` (a caller's turn to compute; none by default), so that
every refusal comes before waiting for a turn. Random streams: the teacher is
drawn from ``(seed)``, the batches of seed index s from ``(seed, s)`` and the
initial parameters from ``(seed, s, width)``, each a
``numpy.random.SeedSequence`` spawn key; parametrizations and learning rates
share the streams on purpose (common random numbers: the loss differences
across learning rates come from the learning rate alone), and adding a width
changes no other width's numbers. The same request gives the same numbers
with the same numpy build and BLAS thread count: float32 matrix products sum in
an order the thread count decides, and training amplifies the last bits (the
service runs one BLAS thread per worker). The module is pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Literal

import numpy as np

from initlab.core.errors import (
    FieldProblem,
    InvalidInput,
    LimitExceeded,
    Path,
    json_value,
)
from initlab.core.mup import MupSettings, MupTable, mup_table
from initlab.core.recommend import recommend, scheme_problems_at
from initlab.core.schemes import resolve_scheme
from initlab.core.spec import LinearSpec, Spec, expand
from initlab.core.training import (
    Loss,
    Network,
    Optimizer,
    Parametrization,
    RecordedOutput,
    TensorSetup,
    network_sizes,
)
from initlab.core.types import (
    Activation,
    ExpandedSpec,
    Recommendation,
    SchemeChoice,
)

ParametrizationName = Literal["sp", "mup"]
Verdict = Literal["flat", "grows", "shrinks", "undetermined"]

PARAMETRIZATIONS: tuple[str, ...] = ("sp", "mup")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
LOSSES: tuple[str, ...] = ("cross_entropy", "mse")
#: A coordinate-check curve is flat when |slope of log2 mean|x| vs log2 width|
#: stays below this at every step after the init.
FLAT_SLOPE = 0.1
#: The base init of both checks: variance 1/fan_in on every weight, biases 0,
#: the standard parametrization of Tensor Programs V (Yang et al. 2022, §2 and
#: Table 3's SP column), of which µP rescales the readout and the learning rates.
DEFAULT_INIT_SCHEME = SchemeChoice("lecun_normal")
#: The best learning rate transfers when it moves by at most this many grid
#: steps across the widths (a step being the grid's median log2 spacing).
TRANSFER_GRID_STEPS = 1
#: A training run has diverged when its loss exceeds this many times its loss
#: at the init (or leaves the floating-point range): it is never best.
DIVERGED_LOSS_RATIO = 100.0

#: Most widths, seeds, learning rates and steps one check may ask for.
MAX_WIDTHS = 16
MAX_SEEDS = 16
MAX_LRS = 32
MAX_STEPS = 10_000
MAX_BATCH_SIZE = 1024
MAX_WIDTH = 1 << 16

#: The default transfer check (see :func:`transfer_check`): about 12 s on one
#: core here (numpy 2.4, one OpenBLAS thread), and it shows the effect: over
#: seeds 0 to 3 the best learning rate moves by 4 grid steps under SP and by 1
#: under µP (the base width a step above the two wider ones).
DEFAULT_TRANSFER_WIDTHS = (32, 128, 512)
DEFAULT_TRANSFER_BASE_WIDTH = 32
DEFAULT_TRANSFER_STEPS = 100
DEFAULT_TRANSFER_BATCH_SIZE = 32
DEFAULT_TRANSFER_SEEDS = 2
#: log2 learning-rate grids of the default transfer check, per optimizer.
DEFAULT_LOG2_LRS: dict[str, tuple[int, ...]] = {
    "adam": tuple(range(-14, -3)),
    "adamw": tuple(range(-14, -3)),
    "sgd": tuple(range(-8, 3)),
}

#: The default spec: MLP 32 → w → w → 10 with ReLUs, a classifier.
DEFAULT_INPUT_SIZE = 32
DEFAULT_CLASSES = 10
DEFAULT_WIDTH_DIM = "w"

# --- cost model ---------------------------------------------------------------------
#: Work is counted in multiply-add equivalents: 1 is a float32 multiply-add of a
#: matrix product at a batch of 64 (about 30 ps on one core here: numpy 2.4, one
#: OpenBLAS thread); every other cost is what it takes here relative to that,
#: measured once with time.perf_counter and kept as constants.
WEIGHT_READ_COST = 15
"""Per weight per matrix product: reading the weight (small batches are
memory-bound: a batch of 8 costs about 85 ps per multiply-add)."""
UNIT_COST = 250
"""Per unit and example per pass: the bias, the record, sums and copies."""
NORM_COST = 500
"""Per normalized unit and example, forward and backward."""
ACTIVATION_COST: dict[str, int] = {
    "identity": 0,
    "relu": 230,
    "leaky_relu": 530,
    "elu": 1400,
    "selu": 1100,
    "gelu": 3300,
    "gelu_tanh": 5200,
    "silu": 2300,
    "mish": 3700,
    "tanh": 570,
    "sigmoid": 1900,
    "softplus": 2100,
    "softsign": 250,
}
"""Per unit and example: φ in the forward pass and φ' in the backward pass."""
OPTIMIZER_COST: dict[str, int] = {"sgd": 30, "adam": 120, "adamw": 130}
"""Per parameter per step: the update's passes over the tensor."""
TENSOR_STEP_COST = 1_500_000
"""Per parameter tensor per step: the fixed Python work of a small layer."""
RANDOM_NUMBER_COST = 500
"""Per random number drawn (initial parameters and data)."""
TABLE_ROW_COST = 5_000_000
"""Per row of a µP table or recommendation computed (Python work)."""
#: The default memory budget, bytes (the service's INITLAB_MEMORY_BUDGET).
DEFAULT_MEMORY_BUDGET = 512 * 1024 * 1024
_FLOAT_BYTES = 4
#: The default budget, in multiply-add equivalents: about a minute of one core
#: here (the default transfer check needs about a fifth of it).
DEFAULT_BUDGET = 2_000_000_000_000

_TEACHER_STREAM = 0
_DATA_STREAM = 1
_INIT_STREAM = 2


# --- results ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingCost:
    """Work a check needs, estimated from shapes before any work.

    ``multiply_adds`` counts the matrix products of every forward and backward
    pass; ``other`` the elementwise work, weight reads, optimizer updates and
    per-step overhead in multiply-add equivalents; ``random_numbers`` the
    initial parameters and data drawn; ``table_rows`` the µP and
    recommendation rows computed; ``runs`` the networks trained;
    ``peak_bytes`` the working memory of the widest network. :attr:`work`
    folds them into multiply-add equivalents, the figure held against the
    budget.
    """

    multiply_adds: int
    other: int
    random_numbers: int
    table_rows: int
    runs: int
    peak_bytes: int

    @property
    def work(self) -> int:
        return (
            self.multiply_adds
            + self.other
            + RANDOM_NUMBER_COST * self.random_numbers
            + TABLE_ROW_COST * self.table_rows
        )


@dataclass(frozen=True)
class CoordLayer:
    """One recorded output of the coordinate check, under one parametrization.

    ``mean[i][j]`` is the mean over seeds of mean |x| at step ``steps[i]`` and
    width ``widths[j]``; ``sd`` its SD over seeds (ddof 1; 0 with one seed).
    ``slopes[i]`` is the least-squares slope of log2 mean against log2 width
    at step i (None where a mean is 0, as a zero readout's at t = 1, or not
    finite). ``verdict``: ``flat`` when |slope| < 0.1 at every step after the
    init, else ``grows``/``shrinks`` by the sign of the largest |slope|
    (``largest_slope`` at ``largest_slope_step``); ``undetermined`` when no
    step after the init has a slope.
    """

    name: str
    kind: Literal["linear", "residual"]
    role: str
    mean: tuple[tuple[float, ...], ...]
    sd: tuple[tuple[float, ...], ...]
    slopes: tuple[float | None, ...]
    verdict: Verdict
    largest_slope: float | None
    largest_slope_step: int | None


@dataclass(frozen=True)
class CoordParametrization:
    """The coordinate check of one parametrization: every recorded output in
    forward order, whether every hidden one is flat, and a one-line summary."""

    name: ParametrizationName
    layers: tuple[CoordLayer, ...]
    hidden_flat: bool
    summary: str

    def layer(self, name: str) -> CoordLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


@dataclass(frozen=True)
class CoordCheckResult:
    """The coordinate check: per parametrization, per layer, per step and width.

    ``steps`` are the t values (t = 1 the init, then one after each update;
    ``len(steps)`` values in all, as the mup package counts them); ``dims``
    the spec's dims at each width.
    """

    widths: tuple[int, ...]
    width_dim: str
    dims: tuple[dict[str, int], ...]
    steps: tuple[int, ...]
    optimizer: Optimizer
    lr: float
    weight_decay: float
    batch_size: int
    seeds: int
    seed: int
    loss: Loss
    init_scheme: SchemeChoice
    readout_zero_init: bool
    parametrizations: tuple[CoordParametrization, ...]
    data: str
    cost: TrainingCost
    notes: tuple[str, ...]

    def parametrization(self, name: str) -> CoordParametrization:
        for entry in self.parametrizations:
            if entry.name == name:
                return entry
        raise KeyError(name)


@dataclass(frozen=True)
class TransferCurve:
    """The final training loss at one width over the learning-rate grid.

    ``losses[k]`` is the mean over seeds of the final loss at ``lrs[k]`` (None
    when a seed's loss left the floating-point range: diverged), ``sd`` its SD
    over seeds; ``best_index`` the grid index of the lowest loss.
    """

    width: int
    losses: tuple[float | None, ...]
    sd: tuple[float | None, ...]
    best_index: int | None
    best_lr: float | None


@dataclass(frozen=True)
class TransferParametrization:
    """One parametrization's curves, the drift of its best learning rate across
    widths (max − min of the best grid index, and in log2 units), its verdict
    (``transfers`` when the drift is at most one grid step, else ``drifts``;
    ``undetermined`` when a width has no finite loss) and a summary."""

    name: ParametrizationName
    curves: tuple[TransferCurve, ...]
    drift: int | None
    drift_log2: float | None
    verdict: Literal["transfers", "drifts", "undetermined"]
    summary: str

    def curve(self, width: int) -> TransferCurve:
        for curve in self.curves:
            if curve.width == width:
                return curve
        raise KeyError(width)


@dataclass(frozen=True)
class TransferCheckResult:
    """The learning-rate transfer check.

    The final loss of a run is the mean of its last ``loss_window`` training
    losses (each the loss of that step's batch before its update), averaged
    over seeds.
    """

    widths: tuple[int, ...]
    width_dim: str
    dims: tuple[dict[str, int], ...]
    lrs: tuple[float, ...]
    log2_lrs: tuple[float, ...]
    optimizer: Optimizer
    weight_decay: float
    steps: int
    loss_window: int
    batch_size: int
    seeds: int
    seed: int
    loss: Loss
    init_scheme: SchemeChoice
    readout_zero_init: bool
    parametrizations: tuple[TransferParametrization, ...]
    verdict: str
    data: str
    cost: TrainingCost
    notes: tuple[str, ...]

    def parametrization(self, name: str) -> TransferParametrization:
        for entry in self.parametrizations:
            if entry.name == name:
                return entry
        raise KeyError(name)


# --- the default spec ----------------------------------------------------------------


def default_mlp_spec() -> Spec:
    """MLP 32 → w → w → 10 with ReLUs (tests/fixtures/mup/coord-mlp.spec.json)."""
    relu = Activation("relu")
    return Spec(
        dims={
            "d_in": DEFAULT_INPUT_SIZE,
            DEFAULT_WIDTH_DIM: DEFAULT_TRANSFER_BASE_WIDTH,
            "n_out": DEFAULT_CLASSES,
        },
        layers=(
            LinearSpec(
                name="fc1",
                in_features="d_in",
                out_features=DEFAULT_WIDTH_DIM,
                activation=relu,
            ),
            LinearSpec(
                name="fc2",
                in_features=DEFAULT_WIDTH_DIM,
                out_features=DEFAULT_WIDTH_DIM,
                activation=relu,
            ),
            LinearSpec(
                name="readout", in_features=DEFAULT_WIDTH_DIM, out_features="n_out"
            ),
        ),
    )


# --- widths and parametrizations ---------------------------------------------------


@dataclass(frozen=True)
class _Setup:
    """A check's spec at every width, with what every run needs."""

    spec: Spec
    base_dims: dict[str, int]
    width_dim: str
    scaled: tuple[str, ...]
    widths: tuple[int, ...]
    dims: tuple[dict[str, int], ...]
    expanded: tuple[ExpandedSpec, ...]
    input_size: int
    output_size: int
    loss: Loss


def _resolve_setup(
    spec: Spec,
    base_dims: Mapping[str, int],
    widths: Sequence[int],
    width_dim: str | None,
    loss: str | None,
) -> _Setup:
    """Check the widths and expand the spec at each one (no training yet)."""
    spec_dims = dict(spec.dims)
    unknown = [name for name in base_dims if name not in spec_dims]
    if unknown:
        raise InvalidInput(
            [
                FieldProblem(
                    ("base_dims", name),
                    f"{json_value(name)} is not a dim of the spec; its dims are:"
                    f" {', '.join(spec_dims) or 'none'}",
                    value=name,
                )
                for name in unknown
            ]
        )
    for name, value in base_dims.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput.at(
                ("base_dims", name),
                f"base dim {name} must be a positive integer; got {json_value(value)}",
                value=value,
            )
    base = {**spec_dims, **base_dims}
    width_dim = _resolve_width_dim(spec_dims, base_dims, width_dim)
    widths = _checked_widths(widths)

    scaled = tuple(dict.fromkeys([width_dim, *base_dims]))
    base_width = base[width_dim]
    dims = []
    problems = []
    for index, width in enumerate(widths):
        at = dict(base)
        for name in scaled:
            size, remainder = divmod(base[name] * width, base_width)
            if remainder:
                problems.append(
                    FieldProblem(
                        ("widths", index),
                        f"at {width_dim} = {width}, {name} would be"
                        f" {base[name]}·{width}/{base_width} ="
                        f" {base[name] * width / base_width:g}, not an integer;"
                        f" choose widths that scale {name} to whole sizes (multiples"
                        f" of {base_width // math.gcd(base_width, base[name])})",
                        value=width,
                    )
                )
            at[name] = size
        dims.append(at)
    if problems:
        raise InvalidInput(problems)

    expanded = []
    for index, at in enumerate(dims):
        try:
            one = expand(dataclasses.replace(spec, dims=at))
        except InvalidInput as error:
            raise InvalidInput(
                [
                    FieldProblem(
                        ("widths", index),
                        f"at {width_dim} = {widths[index]} the spec breaks a rule at"
                        f" /spec/{'/'.join(str(p) for p in problem.path)}:"
                        f" {problem.message}",
                        problem.value,
                    )
                    for problem in error.problems
                ]
            ) from None
        expanded.append(one)
    first = network_sizes(expanded[0])
    for index, one in enumerate(expanded[1:], start=1):
        input_size, output_size = network_sizes(one)
        if input_size != first[0] or output_size != first[1]:
            raise InvalidInput.at(
                ("widths", index),
                f"the network's input or output size changes with {width_dim}"
                f" ({first[0]}→{first[1]} at {widths[0]}, {input_size}→"
                f"{output_size} at {widths[index]}); the checks feed every width"
                " the same data, so the input and the readout's output must not"
                " scale: keep their dims out of base_dims",
                value=widths[index],
            )

    return _Setup(
        spec=spec,
        base_dims=dict(base_dims),
        width_dim=width_dim,
        scaled=scaled,
        widths=widths,
        dims=tuple(dims),
        expanded=tuple(expanded),
        input_size=first[0],
        output_size=first[1],
        loss=_resolve_loss(loss, first[1]),
    )


def _resolve_width_dim(
    spec_dims: Mapping[str, int], base_dims: Mapping[str, int], width_dim: str | None
) -> str:
    """``width_dim`` as given; else ``d_model`` when the spec has it; else the
    only dim of ``base_dims``; else, with no base_dims, the spec's only dim."""
    if width_dim is not None:
        if width_dim not in spec_dims:
            raise InvalidInput.at(
                ("width_dim",),
                f"{json_value(width_dim)} is not a dim of the spec; its dims are:"
                f" {', '.join(spec_dims) or 'none'}",
                value=width_dim,
                allowed=", ".join(spec_dims),
            )
        return width_dim
    if "d_model" in spec_dims:
        return "d_model"
    if len(base_dims) == 1:
        return next(iter(base_dims))
    if not base_dims and len(spec_dims) == 1:
        return next(iter(spec_dims))

    raise InvalidInput.at(
        ("width_dim",),
        "the spec has no d_model and base_dims names"
        f" {len(base_dims)} dims ({', '.join(base_dims) or 'none'}) of the spec's"
        f" {len(spec_dims)}, so the width to vary is ambiguous; name it with"
        " width_dim",
        allowed=", ".join(spec_dims),
    )


def _checked_widths(widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(widths)
    for index, width in enumerate(widths):
        if isinstance(width, bool) or not isinstance(width, int | np.integer):
            raise InvalidInput.at(
                ("widths", index),
                f"a width must be an integer; got {json_value(width)}",
                value=width,
            )
        if not 1 <= width <= MAX_WIDTH:
            raise InvalidInput.at(
                ("widths", index),
                f"a width must lie in [1, {MAX_WIDTH}]; got {width}",
                value=int(width),
            )
    widths = tuple(int(width) for width in widths)
    if len(set(widths)) < 2 or len(set(widths)) != len(widths):
        raise InvalidInput.at(
            ("widths",),
            "give at least two different widths, each once (a slope or a drift"
            f" needs two); got {json_value(list(widths))}",
            value=list(widths),
        )
    if len(widths) > MAX_WIDTHS:
        raise InvalidInput.at(
            ("widths",),
            f"at most {MAX_WIDTHS} widths; got {len(widths)}",
            value=len(widths),
        )

    return widths


def _resolve_loss(loss: str | None, output_size: int) -> Loss:
    """Cross-entropy for a classifier (two or more outputs), else mse."""
    if loss is None:
        return "cross_entropy" if output_size >= 2 else "mse"
    if loss not in LOSSES:
        raise InvalidInput.at(
            ("loss",),
            f"loss must be one of {', '.join(LOSSES)}; got {json_value(loss)}",
            value=loss,
            allowed=", ".join(LOSSES),
        )
    if loss == "cross_entropy" and output_size < 2:
        raise InvalidInput.at(
            ("loss",),
            "cross_entropy needs two or more outputs (classes); the spec's output"
            f" has {output_size}: use mse",
            value=loss,
        )

    return loss


def _standard_bounds(row: Recommendation) -> tuple[float, float] | None:
    """A truncated normal's cut in sampler stds about its centre (α, β)."""
    if row.truncation is None:
        return None
    centre = float(row.options.get("mean", 0.0))
    sampler = row.truncation.sampler_std

    return (
        (row.truncation.lower - centre) / sampler,
        (row.truncation.upper - centre) / sampler,
    )


class _Parametrizations:
    """The µP tables and SP recommendations behind every run of a check."""

    def __init__(
        self,
        setup: _Setup,
        optimizer: Optimizer,
        weight_decay: float,
        init_scheme: SchemeChoice,
        readout_zero_init: bool,
        lr: float,
    ) -> None:
        self.setup = setup
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.init_scheme = init_scheme
        self.readout_zero_init = readout_zero_init
        self.tables: dict[float, MupTable] = {}
        self.recommendations: dict[int, tuple[Recommendation, ...]] = {}
        base = expand(
            dataclasses.replace(setup.spec, dims={**setup.spec.dims, **setup.base_dims})
        )
        try:
            base_rows = recommend(base, init_scheme).parameters
        except InvalidInput as error:
            raise scheme_problems_at(error, "init_scheme") from None
        self.base_truncation = {row.name: _standard_bounds(row) for row in base_rows}
        target = self.table(lr).targets[0]
        self.roles = {row.name: row.role for row in target.parameters}

    def table(self, lr: float) -> MupTable:
        table = self.tables.get(lr)
        if table is None:
            settings = MupSettings(
                optimizer=self.optimizer,
                lr=lr,
                weight_decay=self.weight_decay,
                init_std=None,
                init_scheme=self.init_scheme,
                readout_zero_init=self.readout_zero_init,
                width_dims=tuple(
                    name for name in self.setup.scaled if name in self.setup.spec.dims
                ),
            )
            targets = [
                {name: dims[name] for name in self.setup.scaled}
                for dims in self.setup.dims
            ]
            try:
                table = mup_table(
                    self.setup.spec, self.setup.base_dims, targets, settings
                )
            except InvalidInput as error:
                raise _from_table(error) from None
            self.tables[lr] = table

        return table

    def get(self, name: str, index: int, lr: float) -> Parametrization:
        if name == "mup":
            target = self.table(lr).targets[index]
            tensors = {
                row.name: TensorSetup(
                    init_mean=row.init_mean,
                    init_std=row.init_std,
                    distribution=row.init_distribution,
                    lr=row.lr,
                    weight_decay=row.weight_decay,
                    forward_multiplier=row.forward_multiplier,
                    truncation=self.base_truncation.get(row.name),
                )
                for row in target.parameters
            }
            return Parametrization(
                tensors,
                residual_multiplier=target.residual_multiplier,
                optimizer=self.optimizer,
                eps=target.adam_eps if target.adam_eps is not None else 1e-8,
            )

        rows = self.recommendations.get(index)
        if rows is None:
            expanded = self.setup.expanded[index]
            try:
                rows = recommend(expanded, self.init_scheme).parameters
            except InvalidInput as error:
                raise scheme_problems_at(error, "init_scheme") from None
            self.recommendations[index] = rows
        tensors = {
            row.name: TensorSetup(
                init_mean=row.mean,
                init_std=row.std,
                distribution=row.distribution,
                lr=lr,
                weight_decay=self.weight_decay,
                truncation=_standard_bounds(row),
            )
            for row in rows
        }
        return Parametrization(tensors, optimizer=self.optimizer)

    def role(self, output: RecordedOutput) -> str:
        if output.kind == "residual" or output.weight is None:
            return "hidden"
        role = self.roles.get(output.weight, "hidden")

        return role if role in ("input", "hidden", "output") else "hidden"


def _from_table(error: InvalidInput) -> InvalidInput:
    """A µP table's problems, pointed at this request's fields."""
    problems = []
    for problem in error.problems:
        path = problem.path
        if path[:1] == ("targets",) and len(path) >= 2:
            path = ("widths", path[1])
        problems.append(
            FieldProblem(
                path, f"µP table: {problem.message}", problem.value, problem.allowed
            )
        )
    if isinstance(error, LimitExceeded):
        return LimitExceeded(problems, limit=error.limit, limit_value=error.limit_value)

    return InvalidInput(problems)


# --- data ---------------------------------------------------------------------------


class _Task:
    """Synthetic data: x ~ N(0, 1) and a fixed random linear teacher.

    The teacher T has entries N(0, 1/d_in), so its outputs xT have unit
    variance; classification labels are argmax(xT), mse targets xT. Batches are
    drawn per seed index, the same for every width, parametrization and
    learning rate.
    """

    def __init__(self, setup: _Setup, seed: int, batch_size: int, steps: int) -> None:
        self.setup = setup
        self.seed = seed
        self.batch_size = batch_size
        self.steps = steps
        rng = np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(_TEACHER_STREAM,))
        )
        self.teacher = rng.standard_normal(
            (setup.input_size, setup.output_size)
        ) / math.sqrt(setup.input_size)

    def batches(self, seed_index: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The ``steps`` batches of seed index ``seed_index``, drawn afresh from
        their stream at every call (kept nowhere, so memory does not grow with
        the steps)."""
        rng = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(_DATA_STREAM, seed_index))
        )
        for _ in range(self.steps):
            x = rng.standard_normal(
                (self.batch_size, self.setup.input_size), dtype=np.float32
            )
            outputs = x.astype(np.float64) @ self.teacher
            if self.setup.loss == "cross_entropy":
                yield x, np.argmax(outputs, axis=1)
            else:
                yield x, outputs.astype(np.float32)

    def description(self) -> str:
        size = self.setup.input_size
        target = (
            "labels argmax(xT) over the"
            f" {self.setup.output_size} outputs, loss cross-entropy"
            if self.setup.loss == "cross_entropy"
            else "targets xT, loss mse (½‖f − xT‖², mean over the batch)"
        )
        return (
            f"Synthetic: inputs x ~ N(0, 1) of size {size}, a fixed random"
            f" linear teacher T with entries N(0, 1/{size})"
            f" drawn from seed {self.seed}, {target}; a fresh batch of"
            f" {self.batch_size} at every step, the same sequence of batches for"
            " every width, parametrization and learning rate."
        )


def _init_seed(seed: int, seed_index: int, width: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(_INIT_STREAM, seed_index, width))


# --- cost ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """What one example costs in one network: matrix products, elementwise work
    forward and backward (multiply-add equivalents), and the tensors."""

    products: int
    forward: int
    backward: int
    parameters: int
    tensors: int
    kept: int


def _shape(expanded: ExpandedSpec) -> _Shape:
    products = 0
    forward = 0
    backward = 0
    kept = 0
    for tensor in expanded.parameters:
        if tensor.tensor != "weight":
            continue
        if tensor.kind == "linear":
            products += tensor.in_features * tensor.out_features
            units = tensor.out_features
            forward += UNIT_COST * units
            backward += UNIT_COST * units
            kept += tensor.in_features + 2 * units
        else:
            units = tensor.in_features
            forward += NORM_COST * units // 2
            backward += NORM_COST * units // 2
            kept += 3 * units
        backward += ACTIVATION_COST.get(tensor.activation.name, 0) * units

    return _Shape(
        products=products,
        forward=forward,
        backward=backward,
        parameters=sum(tensor.numel for tensor in expanded.parameters),
        tensors=len(expanded.parameters),
        kept=kept,
    )


def _estimate(
    setup: _Setup,
    *,
    optimizer: str,
    widths: int,
    seeds: int,
    lrs: int,
    parametrizations: int,
    batch_size: int,
    forwards: int,
    updates: int,
) -> TrainingCost:
    """Work of training the first ``widths`` widths: ``forwards`` forward passes
    and ``updates`` backward passes and optimizer steps per run.

    A forward pass costs B·(products + elementwise) + products weight reads; a
    backward pass twice the products (input and weight gradients) and their
    reads; an update the optimizer's passes over every parameter; each pass a
    fixed cost per tensor. Each run draws its parameters and its batches. The
    peak memory is the widest network's: its tensors, gradients and optimizer
    state, and the forward pass kept for the backward pass.
    """
    multiply_adds = 0
    other = 0
    random_numbers = 0
    rows = 0
    peak = 0
    runs = seeds * lrs * parametrizations
    state = 1 if optimizer == "sgd" else 3
    for expanded in setup.expanded[:widths]:
        shape = _shape(expanded)
        multiply_adds += runs * batch_size * shape.products * (forwards + 2 * updates)
        per_run = (
            forwards * batch_size * shape.forward
            + updates * batch_size * shape.backward
            + (forwards + 2 * updates) * WEIGHT_READ_COST * shape.products
            + updates * OPTIMIZER_COST[optimizer] * shape.parameters
            + (forwards + updates) * TENSOR_STEP_COST * shape.tensors
        )
        other += runs * per_run
        random_numbers += runs * (
            shape.parameters + forwards * batch_size * setup.input_size
        )
        rows += shape.tensors * (lrs + 2)
        peak = max(
            peak,
            _FLOAT_BYTES
            * (
                (2 + state) * shape.parameters
                + 2 * batch_size * shape.kept
                + batch_size * (setup.input_size + setup.output_size)
            ),
        )

    return TrainingCost(
        multiply_adds=int(multiply_adds),
        other=int(other),
        random_numbers=int(random_numbers),
        table_rows=int(rows),
        runs=int(runs * widths),
        peak_bytes=int(peak),
    )


@dataclass(frozen=True)
class _Knob:
    """One request field a refusal may suggest lowering."""

    path: Path
    label: Callable[[int], str]
    value: int
    lowest: int
    cost_at: Callable[[int], TrainingCost]


def _check_budget(
    cost: TrainingCost, budget: float, memory_budget: float, knobs: Sequence[_Knob]
) -> None:
    """Refuse a check over ``budget`` or ``memory_budget``, listing every single
    change that brings it within both.

    As the statistics refusal does: the estimates over their limits, and each
    field lowered alone to the largest value that fits, pointing at the first
    one listed.
    """
    over_compute = cost.work > budget
    over_memory = cost.peak_bytes > memory_budget
    if not over_compute and not over_memory:
        return

    def fits(candidate: TrainingCost) -> bool:
        return candidate.work <= budget and candidate.peak_bytes <= memory_budget

    fixes: list[tuple[Path, str]] = []
    for knob in knobs:
        if knob.value <= knob.lowest or not fits(knob.cost_at(knob.lowest)):
            continue
        low, high = knob.lowest, knob.value - 1
        while low < high:
            middle = (low + high + 1) // 2
            if fits(knob.cost_at(middle)):
                low = middle
            else:
                high = middle - 1
        fixes.append((knob.path, knob.label(low)))
    stated = []
    if over_compute:
        stated.append(
            f"the training is estimated at {cost.work:.3g} multiply-add equivalents"
            f" ({cost.runs} networks trained: {cost.multiply_adds:.3g} multiply-adds"
            f" of matrix products, {cost.other:.3g} of other work,"
            f" {cost.random_numbers:.3g} random numbers at {RANDOM_NUMBER_COST}"
            f" each, {cost.table_rows} table rows at {TABLE_ROW_COST:.3g} each),"
            f" over the limit compute_budget = {budget:.3g}"
        )
    if over_memory:
        stated.append(
            f"the widest network needs about {cost.peak_bytes:.3g} bytes (its"
            " tensors, gradients and optimizer state, and one batch's forward"
            f" pass), over the limit memory_budget = {memory_budget:.3g}"
        )
    if fixes:
        path = fixes[0][0]
        advice = "any one of these brings it within budget: " + "; ".join(
            change for _, change in fixes
        )
    else:
        path = ("widths",)
        advice = (
            "no single change fits: ask for narrower widths, fewer steps and fewer"
            " seeds together"
        )
    raise LimitExceeded(
        [
            # No value: the answer quotes what was sent at ``path``; the
            # estimates are in the message.
            FieldProblem(path, "; ".join([*stated, advice]))
        ],
        limit="compute_budget" if over_compute else "memory_budget",
        limit_value=budget if over_compute else memory_budget,
    )


# --- training runs ------------------------------------------------------------------


def _mean_and_sd(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD (ddof 1; 0 for one value) over axis 0."""
    with np.errstate(invalid="ignore", over="ignore"):
        mean = values.mean(axis=0)
        if values.shape[0] < 2:
            return mean, np.zeros_like(mean)
        return mean, values.std(axis=0, ddof=1)


def _slope(widths: Sequence[int], values: Sequence[float]) -> float | None:
    """Least-squares slope of log2(value) against log2(width); None where a
    value is 0 or not finite."""
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values <= 0.0):
        return None
    x = np.log2(np.asarray(widths, dtype=np.float64))
    y = np.log2(values)
    x_centred = x - x.mean()

    return float(np.dot(x_centred, y - y.mean()) / np.dot(x_centred, x_centred))


def _check_common(
    *,
    optimizer: str,
    lr_values: Sequence[float],
    weight_decay: float,
    steps: int,
    min_steps: int,
    batch_size: int,
    seeds: int,
    seed: int,
    parametrizations: Sequence[str],
) -> tuple[str, ...]:
    problems = []
    if optimizer not in OPTIMIZERS:
        problems.append(
            FieldProblem(
                ("optimizer",),
                f"optimizer must be one of {', '.join(OPTIMIZERS)}; got"
                f" {json_value(optimizer)}",
                value=optimizer,
                allowed=", ".join(OPTIMIZERS),
            )
        )
    for index, lr in enumerate(lr_values):
        if isinstance(lr, bool) or not (
            isinstance(lr, int | float) and math.isfinite(lr) and 0.0 < lr <= 1e6
        ):
            problems.append(
                FieldProblem(
                    ("lrs", index) if len(lr_values) > 1 else ("lr",),
                    f"a learning rate must lie in (0, 1e6]; got {json_value(lr)}",
                    value=lr,
                )
            )
    if not (math.isfinite(weight_decay) and 0.0 <= weight_decay <= 1e6):
        problems.append(
            FieldProblem(
                ("weight_decay",),
                f"weight_decay must lie in [0, 1e6]; got {json_value(weight_decay)}",
                value=weight_decay,
            )
        )
    for name, value, lowest, highest in (
        ("steps", steps, min_steps, MAX_STEPS),
        ("batch_size", batch_size, 1, MAX_BATCH_SIZE),
        ("seeds", seeds, 1, MAX_SEEDS),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(
                FieldProblem((name,), f"{name} must be an integer", value=value)
            )
        elif not lowest <= value <= highest:
            problems.append(
                FieldProblem(
                    (name,),
                    f"{name} must lie in [{lowest}, {highest}]; got {value}",
                    value=value,
                )
            )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.append(
            FieldProblem(
                ("seed",), f"seed must be an integer ≥ 0; got {json_value(seed)}"
            )
        )
    names = tuple(parametrizations)
    if (
        not names
        or len(set(names)) != len(names)
        or any(name not in PARAMETRIZATIONS for name in names)
    ):
        problems.append(
            FieldProblem(
                ("parametrizations",),
                "parametrizations must name sp and/or mup, each once; got"
                f" {json_value(list(names))}",
                value=list(names),
                allowed=", ".join(PARAMETRIZATIONS),
            )
        )
    if problems:
        raise InvalidInput(problems)

    return names


# --- the coordinate check -------------------------------------------------------------


def coord_check(
    spec: Spec,
    *,
    base_dims: Mapping[str, int],
    widths: Sequence[int],
    width_dim: str | None = None,
    optimizer: Optimizer = "adam",
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    steps: int = 4,
    batch_size: int = 64,
    seeds: int = 3,
    seed: int = 0,
    parametrizations: Sequence[ParametrizationName] = PARAMETRIZATIONS,
    readout_zero_init: bool = False,
    init_scheme: SchemeChoice | None = None,
    loss: Loss | None = None,
    budget: float = DEFAULT_BUDGET,
    memory_budget: float = DEFAULT_MEMORY_BUDGET,
    work_slot: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> CoordCheckResult:
    """The coordinate check of ``spec`` across ``widths`` (Tensor Programs V, §7).

    For each parametrization, width and seed: train ``steps`` forward passes,
    updating after every one but the last, and record the mean |x| of every
    linear layer's output (after its forward multiplier and bias, before its
    activation) and every residual group's output at each step t = 1..steps
    (t = 1 is the init), as the mup package's ``get_coord_data`` records them.
    Then, per layer and step, the mean and SD over seeds at each width and the
    slope of log2 mean against log2 width, with the verdicts (see
    :class:`CoordLayer`). ``lr`` and ``weight_decay`` are the base model's (µP
    rescales them per tensor; SP uses them everywhere).

    Raises :class:`InvalidInput` for a request it cannot run and
    :class:`LimitExceeded` when the estimated work is over ``budget`` or the
    widest network's memory over ``memory_budget`` (bytes).
    """
    init_scheme = resolve_scheme(init_scheme or DEFAULT_INIT_SCHEME, ("init_scheme",))
    names = _check_common(
        optimizer=optimizer,
        lr_values=(lr,),
        weight_decay=weight_decay,
        steps=steps,
        min_steps=2,
        batch_size=batch_size,
        seeds=seeds,
        seed=seed,
        parametrizations=parametrizations,
    )
    setup = _resolve_setup(spec, base_dims, widths, width_dim, loss)

    def cost_at(**changes: int) -> TrainingCost:
        arguments = {
            "widths": len(setup.widths),
            "seeds": seeds,
            "lrs": 1,
            "parametrizations": len(names),
            "batch_size": batch_size,
            "forwards": steps,
            "updates": steps - 1,
        }
        arguments.update(changes)
        return _estimate(setup, optimizer=optimizer, **arguments)

    cost = cost_at()
    _check_budget(
        cost,
        budget,
        memory_budget,
        _knobs(cost_at, seeds=seeds, steps=steps, batch_size=batch_size, setup=setup),
    )
    with work_slot():
        tables = _Parametrizations(
            setup, optimizer, weight_decay, init_scheme, readout_zero_init, lr
        )
        task = _Task(setup, seed, batch_size, steps)

        results = []
        for name in names:
            records: dict[str, np.ndarray] = {}
            recorded: tuple[RecordedOutput, ...] = ()
            for width_index, width in enumerate(setup.widths):
                parametrization = tables.get(name, width_index, lr)
                for seed_index in range(seeds):
                    network = Network(
                        setup.expanded[width_index],
                        parametrization,
                        _init_seed(seed, seed_index, width),
                    )
                    recorded = network.recorded
                    run = _recorded_run(
                        network, task.batches(seed_index), setup.loss, steps
                    )
                    for key, values in run.items():
                        table = records.setdefault(
                            key, np.zeros((seeds, steps, len(setup.widths)))
                        )
                        table[seed_index, :, width_index] = values
            results.append(
                _coord_parametrization(name, recorded, records, setup, tables)
            )

    return CoordCheckResult(
        widths=setup.widths,
        width_dim=setup.width_dim,
        dims=setup.dims,
        steps=tuple(range(1, steps + 1)),
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        seeds=seeds,
        seed=seed,
        loss=setup.loss,
        init_scheme=init_scheme,
        readout_zero_init=readout_zero_init,
        parametrizations=tuple(results),
        data=task.description(),
        cost=cost,
        notes=_coord_notes(results, steps),
    )


def _recorded_run(
    network: Network,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    loss: Loss,
    steps: int,
) -> dict[str, list[float]]:
    """Every recorded mean |x| at each of the ``steps`` batches, updating after
    every batch but the last (a diverged run records ∞ or NaN and goes on)."""
    records: dict[str, list[float]] = {}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step, (x, y) in enumerate(batches):
            result = network.loss_and_gradients(x, y, loss, record=True)
            for key, value in result.records.items():
                records.setdefault(key, []).append(value)
            if step < steps - 1:
                network.step(result.gradients)

    return records


def _knobs(
    cost_at: Callable[..., TrainingCost],
    *,
    seeds: int,
    steps: int,
    batch_size: int,
    setup: _Setup,
    lrs: int | None = None,
    transfer: bool = False,
) -> list[_Knob]:
    """The single changes a refusal may suggest."""
    step_changes = (
        (lambda n: {"forwards": n, "updates": n})
        if transfer
        else (lambda n: {"forwards": n, "updates": n - 1})
    )
    knobs = [
        _Knob(
            ("seeds",),
            lambda n: f"at most {_count(n, 'seed')} (you asked for {seeds})",
            seeds,
            1,
            lambda n: cost_at(seeds=n),
        ),
        _Knob(
            ("steps",),
            lambda n: f"at most {_count(n, 'step')} (you asked for {steps})",
            steps,
            1 if transfer else 2,
            lambda n: cost_at(**step_changes(n)),
        ),
        _Knob(
            ("batch_size",),
            lambda n: f"a batch of at most {n} (you asked for {batch_size})",
            batch_size,
            1,
            lambda n: cost_at(batch_size=n),
        ),
    ]
    if lrs is not None:
        knobs.append(
            _Knob(
                ("lrs",),
                lambda n: f"at most {n} learning rates (you asked for {lrs})",
                lrs,
                2,
                lambda n: cost_at(lrs=n),
            )
        )
    order = sorted(range(len(setup.widths)), key=lambda i: setup.widths[i])
    if order == list(range(len(setup.widths))):
        knobs.append(
            _Knob(
                ("widths",),
                lambda n: (
                    f"widths up to {setup.widths[n - 1]} (drop"
                    f" {', '.join(map(str, setup.widths[n:]))})"
                ),
                len(setup.widths),
                2,
                lambda n: cost_at(widths=n),
            )
        )

    return knobs


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def _coord_parametrization(
    name: str,
    recorded: Sequence[RecordedOutput],
    records: Mapping[str, np.ndarray],
    setup: _Setup,
    tables: _Parametrizations,
) -> CoordParametrization:
    layers = []
    for output in recorded:
        mean, sd = _mean_and_sd(records[output.name])
        slopes = tuple(_slope(setup.widths, row) for row in mean)
        after_init = [
            (abs(slope), slope, step)
            for step, slope in enumerate(slopes[1:], start=2)
            if slope is not None
        ]
        if not after_init:
            verdict: Verdict = "undetermined"
            largest, largest_step = None, None
        else:
            _, largest, largest_step = max(after_init, key=lambda item: item[0])
            if all(size < FLAT_SLOPE for size, _, _ in after_init):
                verdict = "flat"
            else:
                verdict = "grows" if largest > 0 else "shrinks"
        layers.append(
            CoordLayer(
                name=output.name,
                kind=output.kind,
                role=tables.role(output),
                mean=tuple(tuple(float(v) for v in row) for row in mean),
                sd=tuple(tuple(float(v) for v in row) for row in sd),
                slopes=slopes,
                verdict=verdict,
                largest_slope=largest,
                largest_slope_step=largest_step,
            )
        )
    hidden = [layer for layer in layers if layer.role == "hidden"]
    not_flat = [layer for layer in hidden if layer.verdict != "flat"]
    label = "µP" if name == "mup" else "SP"
    if not hidden:
        summary = f"{label}: the spec has no hidden layer to check."
    elif not not_flat:
        summary = (
            f"{label}: all hidden layers flat (|slope| < {FLAT_SLOPE:g} at t ≥ 2)."
        )
    else:
        listed = ", ".join(
            f"{layer.name} {layer.verdict}"
            + (
                f" (slope {layer.largest_slope:.3g} at t = {layer.largest_slope_step})"
                if layer.largest_slope is not None
                else ""
            )
            for layer in not_flat
        )
        summary = (
            f"{label}: {len(not_flat)} of {len(hidden)} hidden layers not flat:"
            f" {listed}."
        )

    return CoordParametrization(
        name=name,  # type: ignore[arg-type]
        layers=tuple(layers),
        hidden_flat=bool(hidden) and not not_flat,
        summary=summary,
    )


def _coord_notes(
    results: Sequence[CoordParametrization], steps: int
) -> tuple[str, ...]:
    notes = [
        f"t = 1 is the init and t = 2..{steps} follow one update each ({steps - 1}"
        " updates), as the mup package's coord_check counts; each value is mean |x|"
        " over the batch and units, averaged over seeds.",
        "Slopes are least-squares fits of log2(mean |x|) against log2(width);"
        f" flat means |slope| < {FLAT_SLOPE:g} at every t ≥ 2.",
    ]
    for result in results:
        for layer in result.layers:
            missing = [
                step
                for step, slope in enumerate(layer.slopes, start=1)
                if slope is None
            ]
            if missing:
                notes.append(
                    f"{result.name}: {layer.name} has no slope at t ="
                    f" {', '.join(map(str, missing))}: a mean |x| there is 0 (a"
                    " zero-initialized readout) or left the floating-point range."
                )

    return tuple(notes)


# --- the transfer check ------------------------------------------------------------


def transfer_check(
    spec: Spec | None = None,
    *,
    base_dims: Mapping[str, int] | None = None,
    widths: Sequence[int] = DEFAULT_TRANSFER_WIDTHS,
    width_dim: str | None = None,
    optimizer: Optimizer = "adam",
    lrs: Sequence[float] | None = None,
    weight_decay: float = 0.0,
    steps: int = DEFAULT_TRANSFER_STEPS,
    loss_window: int | None = None,
    batch_size: int = DEFAULT_TRANSFER_BATCH_SIZE,
    seeds: int = DEFAULT_TRANSFER_SEEDS,
    seed: int = 0,
    parametrizations: Sequence[ParametrizationName] = PARAMETRIZATIONS,
    readout_zero_init: bool = False,
    init_scheme: SchemeChoice | None = None,
    loss: Loss | None = None,
    budget: float = DEFAULT_BUDGET,
    memory_budget: float = DEFAULT_MEMORY_BUDGET,
    work_slot: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> TransferCheckResult:
    """The learning-rate transfer check (Tensor Programs V, Figure 1).

    Trains every (parametrization, width, learning rate, seed) for ``steps``
    updates and takes the final loss: the mean of the last ``loss_window``
    training losses (default a tenth of the steps), averaged over seeds. The
    best learning rate of a width is the grid point with the lowest final
    loss; its drift is how far (in grid steps) it moves across the widths.
    ``spec`` None is the MLP 32 → w → w → 10 with ReLUs of
    :func:`default_mlp_spec`, based at w = 32; ``lrs`` None is a grid of
    powers of two (:data:`DEFAULT_LOG2_LRS`) for the optimizer. ``lrs`` are the
    base model's learning rates: µP rescales them per tensor, SP uses each on
    every tensor.

    Raises :class:`InvalidInput` for a request it cannot run and
    :class:`LimitExceeded` when the estimated work is over ``budget`` or the
    widest network's memory over ``memory_budget`` (bytes).
    """
    init_scheme = resolve_scheme(init_scheme or DEFAULT_INIT_SCHEME, ("init_scheme",))
    if spec is None:
        spec = default_mlp_spec()
        if base_dims is None:
            base_dims = {DEFAULT_WIDTH_DIM: DEFAULT_TRANSFER_BASE_WIDTH}
    base_dims = dict(base_dims or {})
    if lrs is None:
        grid = DEFAULT_LOG2_LRS.get(optimizer, DEFAULT_LOG2_LRS["adam"])
        lrs = tuple(2.0**power for power in grid)
    lrs = tuple(lrs)
    names = _check_common(
        optimizer=optimizer,
        lr_values=lrs,
        weight_decay=weight_decay,
        steps=steps,
        min_steps=2,
        batch_size=batch_size,
        seeds=seeds,
        seed=seed,
        parametrizations=parametrizations,
    )
    lrs = _checked_lrs(lrs)
    if loss_window is None:
        loss_window = max(1, steps // 10)
    if isinstance(loss_window, bool) or not (
        isinstance(loss_window, int) and 1 <= loss_window <= steps
    ):
        raise InvalidInput.at(
            ("loss_window",),
            f"loss_window must be an integer in [1, steps = {steps}]; got"
            f" {json_value(loss_window)}",
            value=loss_window,
        )
    setup = _resolve_setup(spec, base_dims, widths, width_dim, loss)

    def cost_at(**changes: int) -> TrainingCost:
        arguments = {
            "widths": len(setup.widths),
            "seeds": seeds,
            "lrs": len(lrs),
            "parametrizations": len(names),
            "batch_size": batch_size,
            "forwards": steps,
            "updates": steps,
        }
        arguments.update(changes)
        return _estimate(setup, optimizer=optimizer, **arguments)

    cost = cost_at()
    _check_budget(
        cost,
        budget,
        memory_budget,
        _knobs(
            cost_at,
            seeds=seeds,
            steps=steps,
            batch_size=batch_size,
            setup=setup,
            lrs=len(lrs),
            transfer=True,
        ),
    )
    with work_slot():
        tables = _Parametrizations(
            setup, optimizer, weight_decay, init_scheme, readout_zero_init, lrs[0]
        )
        task = _Task(setup, seed, batch_size, steps)

        results = []
        for name in names:
            curves = []
            for width_index, width in enumerate(setup.widths):
                finals = np.zeros((seeds, len(lrs)))
                for lr_index, lr in enumerate(lrs):
                    parametrization = tables.get(name, width_index, lr)
                    for seed_index in range(seeds):
                        finals[seed_index, lr_index] = _final_loss(
                            setup.expanded[width_index],
                            parametrization,
                            _init_seed(seed, seed_index, width),
                            task.batches(seed_index),
                            setup.loss,
                            loss_window,
                        )
                curves.append(_transfer_curve(width, lrs, finals))
            results.append(_transfer_parametrization(name, curves, lrs))

    return TransferCheckResult(
        widths=setup.widths,
        width_dim=setup.width_dim,
        dims=setup.dims,
        lrs=lrs,
        log2_lrs=tuple(math.log2(lr) for lr in lrs),
        optimizer=optimizer,
        weight_decay=weight_decay,
        steps=steps,
        loss_window=loss_window,
        batch_size=batch_size,
        seeds=seeds,
        seed=seed,
        loss=setup.loss,
        init_scheme=init_scheme,
        readout_zero_init=readout_zero_init,
        parametrizations=tuple(results),
        verdict=_transfer_verdict(results, setup.widths),
        data=task.description(),
        cost=cost,
        notes=_transfer_notes(results, lrs, steps, loss_window),
    )


def _checked_lrs(lrs: Sequence[float]) -> tuple[float, ...]:
    if not 2 <= len(lrs) <= MAX_LRS:
        raise InvalidInput.at(
            ("lrs",),
            f"give between 2 and {MAX_LRS} learning rates; got {len(lrs)}",
            value=len(lrs),
        )
    values = tuple(float(lr) for lr in lrs)
    if any(
        later <= earlier for earlier, later in zip(values, values[1:], strict=False)
    ):
        raise InvalidInput.at(
            ("lrs",),
            "learning rates must be given in increasing order, each once (the"
            " drift is counted in grid steps)",
            value=list(values),
        )

    return values


def _final_loss(
    expanded: ExpandedSpec,
    parametrization: Parametrization,
    init_seed: np.random.SeedSequence,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    loss: Loss,
    loss_window: int,
) -> float:
    """Train one run and return the mean of its last ``loss_window`` losses;
    ∞ when it diverged: a loss left the floating-point range, or grew past
    :data:`DIVERGED_LOSS_RATIO` times the loss at the init (the run stops)."""
    network = Network(expanded, parametrization, init_seed)
    losses = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for x, y in batches:
            result = network.loss_and_gradients(x, y, loss)
            if not math.isfinite(result.loss) or (
                losses and result.loss > DIVERGED_LOSS_RATIO * max(losses[0], 1e-12)
            ):
                return math.inf
            losses.append(result.loss)
            network.step(result.gradients)

    return float(np.mean(losses[-loss_window:]))


def _transfer_curve(
    width: int, lrs: Sequence[float], finals: np.ndarray
) -> TransferCurve:
    mean, sd = _mean_and_sd(finals)
    finite = np.isfinite(mean)
    best = int(np.argmin(np.where(finite, mean, np.inf))) if finite.any() else None

    return TransferCurve(
        width=width,
        losses=tuple(
            float(v) if ok else None for v, ok in zip(mean, finite, strict=True)
        ),
        sd=tuple(float(v) if ok else None for v, ok in zip(sd, finite, strict=True)),
        best_index=best,
        best_lr=lrs[best] if best is not None else None,
    )


def _transfer_parametrization(
    name: str, curves: Sequence[TransferCurve], lrs: Sequence[float]
) -> TransferParametrization:
    label = "µP" if name == "mup" else "SP"
    indices = [curve.best_index for curve in curves]
    if any(index is None for index in indices):
        return TransferParametrization(
            name=name,  # type: ignore[arg-type]
            curves=tuple(curves),
            drift=None,
            drift_log2=None,
            verdict="undetermined",
            summary=f"{label}: every learning rate diverged at some width.",
        )

    drift = max(indices) - min(indices)
    logs = [math.log2(lrs[index]) for index in indices]
    drift_log2 = max(logs) - min(logs)
    # On an uneven grid a position says little: the drift is judged in log2,
    # against the grid's median spacing. A best rate at the edge of the grid
    # may lie beyond it, so nothing can be concluded.
    spacing = float(np.median(np.diff(np.log2(lrs))))
    verdict = (
        "transfers"
        if drift_log2 <= TRANSFER_GRID_STEPS * spacing * (1 + 1e-9)
        else "drifts"
    )
    if any(index in (0, len(lrs) - 1) for index in indices):
        verdict = "undetermined"
    path = ", ".join(f"{curve.best_lr:.3g} at {curve.width}" for curve in curves)
    conclusion = (
        f"it {verdict}"
        if verdict != "undetermined"
        else "undetermined: a best rate lies at the edge of the grid; extend it"
    )
    summary = (
        f"{label}: the best learning rate moves by {drift} grid"
        f" step{'s' if drift != 1 else ''} ({drift_log2:g} in log2, against a grid"
        f" spacing of {spacing:g}) across the widths ({path}): {conclusion}."
    )
    return TransferParametrization(
        name=name,  # type: ignore[arg-type]
        curves=tuple(curves),
        drift=drift,
        drift_log2=drift_log2,
        verdict=verdict,
        summary=summary,
    )


def _transfer_verdict(
    results: Sequence[TransferParametrization], widths: Sequence[int]
) -> str:
    parts = []
    for result in results:
        label = "µP" if result.name == "mup" else "SP"
        if result.drift is None:
            parts.append(f"{label} undetermined (a width diverged at every lr)")
        else:
            parts.append(
                f"{label} {result.verdict} (best lr moves {result.drift} grid"
                f" step{'s' if result.drift != 1 else ''})"
            )
    return (
        f"Across widths {min(widths)}–{max(widths)}: "
        + "; ".join(parts)
        + f". Transfer means a move of at most {TRANSFER_GRID_STEPS} grid step"
        " (in log2, against the grid's median spacing)."
    )


def _transfer_notes(
    results: Sequence[TransferParametrization],
    lrs: Sequence[float],
    steps: int,
    loss_window: int,
) -> tuple[str, ...]:
    notes = [
        f"Final loss: the mean of the last {loss_window} of {steps} training losses"
        " (each the loss of that step's batch before its update), averaged over"
        " seeds; a run whose loss leaves the floating-point range is diverged"
        " (null) and never best.",
    ]
    for result in results:
        for curve in result.curves:
            if curve.best_index in (0, len(lrs) - 1):
                notes.append(
                    f"{result.name} at width {curve.width}: the best learning rate"
                    f" {curve.best_lr:.3g} is at the edge of the grid; extend the"
                    " grid past it to be sure of the drift."
                )
    return tuple(notes)
