"""µP tables: per-parameter learning rates, inits and multipliers across widths.

A lab tunes a base (proxy) model and trains larger targets with the same
hyperparameters, rescaled per parameter tensor as the Maximal Update
Parametrization prescribes (Yang et al. 2022, "Tensor Programs V", arXiv
2203.03466, Tables 3 and 8). :func:`mup_table` turns a spec, the base model's
dims and the targets' dims into one row per parameter tensor per target.

How a tensor is classified follows the microsoft/mup package 1.0.0: an axis of
a tensor is *width-like* when its size differs between the base and a target
(``mup.infshape.zip_infshape``); a tensor with two width-like axes is
matrix-like, with one vector-like, with none scalar-like. The multipliers are
target size / base size per axis. Where the package reads a tensor wrongly the
service does not follow it and says so in the row's ``mup_package`` values and
the target's notes:

- the package takes the *last* width-like axis of the stored shape as fan_in
  (``InfShape.main``), so a weight stored (in, out), as Hugging Face GPT-2's
  Conv1D and Keras do, gets its fan_out multiplier; the service always uses the
  true fan_in multiplier;
- ``MuSharedReadout`` rescales a tied embedding by √m at ``set_base_shapes``;
- ``set_base_shapes`` rescales the readout bias by √m.

Depth (the repeat counts of residual stacks) is scaled only by an explicit rule:
depth-µP (Yang et al. 2023, "Tensor Programs VI", arXiv 2310.02244) or CompleteP
(Dey et al. 2025, arXiv 2505.01618, Table 1). The module is pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from initlab.core.errors import (
    FieldProblem,
    InvalidInput,
    LimitExceeded,
    Path,
    closest,
    json_value,
)
from initlab.core.recommend import recommend, scheme_problems_at
from initlab.core.spec import (
    NORM_KINDS,
    RepeatGroup,
    ResidualGroup,
    SequentialGroup,
    Spec,
    SpecLimits,
    expand,
    plan_tensor_count,
)
from initlab.core.types import (
    ExpandedSpec,
    LayerNode,
    ParameterTensor,
    ResidualNode,
    SchemeChoice,
    StructureNode,
)

Optimizer = Literal["sgd", "adam", "adamw"]
Form = Literal["mup_package", "table3", "practitioner"]
WeightDecayConvention = Literal["mup_package", "unscaled", "independent"]
DepthRuleName = Literal["completep", "depth_mup"]
ParamClass = Literal["matrix_like", "vector_like", "scalar_like"]
Role = Literal["input", "hidden", "output", "bias", "norm", "embedding"]

OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "sgd")
FORMS: tuple[str, ...] = ("mup_package", "table3", "practitioner")
WEIGHT_DECAY_CONVENTIONS: tuple[str, ...] = ("mup_package", "unscaled", "independent")
DEPTH_RULES: tuple[str, ...] = ("completep", "depth_mup")
#: The depth exponent α of each rule (branch multiplier L^-α); depth-µP is α = ½.
DEPTH_MUP_ALPHA = 0.5
COMPLETEP_ALPHA_RANGE = (0.5, 1.0)

_ADAM = ("adam", "adamw")


def _limit(default: int, description: str) -> int:
    return field(default=default, metadata={"description": description})


@dataclass(frozen=True)
class MupLimits:
    """How large a µP table request may be; each refusal names its limit."""

    max_mup_targets: int = _limit(
        64, "Most targets one µP table request may give (default 64)."
    )
    max_mup_rows: int = _limit(
        50_000,
        "Most rows (parameter tensors summed over the targets) one µP table may"
        " hold, counted before expanding (default 50000: about 2 s and 20 MB of JSON).",
    )
    training_budget: int = _limit(
        800_000_000_000,
        "Most training work one coordinate or transfer check may ask for, in"
        " multiply-add equivalents, estimated before any work (default 8e11:"
        " about 25 s of one core, so two at once on one core stay within the"
        " 60 s worker timeout; the default transfer check needs 7.5e11).",
    )


@dataclass(frozen=True)
class DepthRule:
    """A depth rule: residual branches × (L_base/L)^α, with its learning-rate rule."""

    rule: DepthRuleName
    alpha: float


@dataclass(frozen=True)
class MupSettings:
    """The base model's tuned hyperparameters and the conventions to answer in.

    ``init_std`` and ``init_scheme`` are exclusive: the base model's stds are
    either one std for every weight or those a scheme gives the base spec.
    """

    optimizer: Optimizer
    lr: float
    weight_decay: float = 0.0
    eps: float = 1e-8
    init_std: float | None = 0.02
    init_scheme: SchemeChoice | None = None
    readout_zero_init: bool = True
    query_zero_init: bool = False
    output_multiplier: float = 1.0
    input_multiplier: float = 1.0
    attention_multiplier: float = 1.0
    form: Form = "mup_package"
    weight_decay_convention: WeightDecayConvention = "mup_package"
    depth: DepthRule | None = None
    width_dims: tuple[str, ...] | None = None
    width_dim: str | None = None


@dataclass(frozen=True)
class PackageValues:
    """What the mup package 1.0.0 gives a tensor where that differs from the row."""

    lr: float
    weight_decay: float
    init_std: float


@dataclass(frozen=True)
class MupRow:
    """One parameter tensor of one target: its class, multipliers and values.

    ``m_in``/``m_out`` are the multipliers (target/base) of the tensor's true
    fan_in and fan_out axes (1 for a fixed axis or an absent one);
    ``forward_multiplier`` multiplies the tensor's product in the forward pass
    (``y = a·(W x) + b``: a bias is added after it). ``init_distribution`` is
    the base's (``normal`` for ``init_std``, the scheme's otherwise; a zero or
    constant init reads ``constant``).
    """

    name: str
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    layout: str
    tied_to: str | None
    width_dims: tuple[str, ...]
    m_in: float
    m_out: float
    param_class: ParamClass
    role: Role
    lr: float
    lr_multiplier: float
    weight_decay: float
    init_std: float
    init_mean: float
    init_distribution: str
    forward_multiplier: float
    depth_scaled: bool
    mup_package: PackageValues | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParamGroup:
    """Rows with the same optimizer settings, ready for a ``torch.optim`` group."""

    params: tuple[str, ...]
    lr: float
    weight_decay: float
    eps: float | None


@dataclass(frozen=True)
class AttentionScale:
    """The µP attention-logit scale of one attention layer of a target."""

    layer: str
    d_head_base: int
    d_head: int
    scale: float


@dataclass(frozen=True)
class MupTarget:
    """The µP table of one target."""

    dims: dict[str, int]
    parameter_count: int
    residual_branch_count: int
    width_multipliers: dict[str, float]
    depth_multiplier: float
    output_multiplier: float | None
    input_multiplier: float
    attention_scale: float | None
    attention: tuple[AttentionScale, ...]
    residual_multiplier: float
    adam_eps: float | None
    parameters: tuple[MupRow, ...]
    param_groups: tuple[ParamGroup, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class MupTable:
    """The answer: the resolved settings, the base model and one table per target."""

    settings: MupSettings
    width_dims: tuple[str, ...]
    depth_dims: tuple[str, ...]
    width_dim: str | None
    base_dims: dict[str, int]
    base_parameter_count: int
    base_residual_branch_count: int
    convention: str
    notes: tuple[str, ...]
    targets: tuple[MupTarget, ...]


# --- The per-tensor rules ---------------------------------------------------------


@dataclass(frozen=True)
class _Axes:
    """A tensor's width-like axes and multipliers, in PyTorch's shape order."""

    width_like: tuple[bool, ...]
    multipliers: tuple[float, ...]
    fan_in_axis: int | None
    fan_out_axis: int | None

    @property
    def ninf(self) -> int:
        return sum(self.width_like)

    def multiplier(self, axis: int | None) -> float:
        if axis is None or not self.width_like[axis]:
            return 1.0
        return self.multipliers[axis]

    @property
    def m_in(self) -> float:
        return self.multiplier(self.fan_in_axis)

    @property
    def m_out(self) -> float:
        return self.multiplier(self.fan_out_axis)

    @property
    def param_class(self) -> ParamClass:
        return ("scalar_like", "vector_like", "matrix_like")[min(self.ninf, 2)]

    @property
    def vector_multiplier(self) -> float:
        """The multiplier of a vector-like tensor's one width-like axis."""
        return next(
            (
                m
                for m, wide in zip(self.multipliers, self.width_like, strict=True)
                if wide
            ),
            1.0,
        )


def _fan_axes(tensor: ParameterTensor) -> tuple[int | None, int | None]:
    """The (fan_in, fan_out) axes of ``tensor`` in PyTorch's shape.

    Linear and conv weights are (out, in, ...), transposed convs (in, out, ...),
    embeddings (num_embeddings, embedding_dim): the lookup reads a one-hot of
    the vocabulary, so the vocabulary is its fan_in. Biases and norm parameters
    have only an output axis.
    """
    if tensor.tensor == "bias" or tensor.kind in NORM_KINDS:
        return None, 0
    if tensor.kind.startswith("conv_transpose") or tensor.kind == "embedding":
        return 0, 1
    return 1, 0


def _is_readout(tensor: ParameterTensor, axes: _Axes) -> bool:
    """Whether ``tensor`` belongs to the readout: the spec's last layer, when its
    output size does not scale (a last layer whose output grows with width is a
    hidden layer to µP)."""
    fan_out = axes.fan_out_axis
    return tensor.is_readout and not (fan_out is not None and axes.width_like[fan_out])


def _role(tensor: ParameterTensor, axes: _Axes) -> Role:
    if tensor.kind == "embedding":
        return "embedding"
    if tensor.kind in NORM_KINDS:
        return "norm"
    if tensor.tensor == "bias":
        return "bias"
    if _is_readout(tensor, axes):
        return "output"
    fan_in_wide = axes.fan_in_axis is not None and axes.width_like[axes.fan_in_axis]
    fan_out_wide = axes.fan_out_axis is not None and axes.width_like[axes.fan_out_axis]
    if fan_out_wide and not fan_in_wide:
        return "input"

    return "hidden"


def table8_init_std(std: float, param_class: ParamClass, m_in: float) -> float:
    """The init std of a tensor at the target, from the base model's ``std``.

    Tensor Programs V, Table 8 (Yang et al. 2022): init variance 1/fan_in for
    hidden (matrix-like) weights, so std/√m_in relative to the base; input
    weights, biases and output weights keep a width-constant init. As
    ``mup.init.normal_`` does (std/√width_mult on two width-like axes, std on
    fewer), but with the true fan_in.
    """
    if param_class == "matrix_like":
        return std / math.sqrt(m_in)

    return std


def table8_lr(
    lr: float, optimizer: Optimizer, param_class: ParamClass, axes: _Axes
) -> float:
    """The learning rate of a tensor at the target (width only).

    Tensor Programs V, Table 8: Adam scales a hidden weight's LR by 1/fan_in
    (η/m_in) and keeps every other LR; SGD scales a hidden weight's by
    fan_out/fan_in (η·m_out/m_in), a vector-like tensor's by its width (η·m)
    and keeps a scalar's. The mup package's MuAdam/MuSGD do the same
    (``mup.optim``), reading fan_in from the stored shape.
    """
    if optimizer in _ADAM:
        return lr / axes.m_in if param_class == "matrix_like" else lr
    if param_class == "matrix_like":
        return lr * axes.m_out / axes.m_in
    if param_class == "vector_like":
        return lr * axes.vector_multiplier

    return lr


def mup_package_weight_decay(
    weight_decay: float, optimizer: Optimizer, param_class: ParamClass, axes: _Axes
) -> float:
    """Weight decay as the mup package scales it: inversely to the width LR.

    ``mup.optim.MuAdam``/``MuAdamW`` multiply a matrix-like tensor's weight
    decay by its width multiplier (so lr·weight_decay stays constant);
    ``MuSGD`` divides a vector-like tensor's by m and multiplies a matrix-like
    one's by m_in/m_out.
    """
    if optimizer in _ADAM:
        return (
            weight_decay * axes.m_in if param_class == "matrix_like" else weight_decay
        )
    if param_class == "matrix_like":
        return weight_decay * axes.m_in / axes.m_out
    if param_class == "vector_like":
        return weight_decay / axes.vector_multiplier

    return weight_decay


def readout_multiplier(output_multiplier: float, m_in: float) -> float:
    """The readout's forward multiplier: α_output/m_in.

    Tensor Programs V, Table 8 (output weights × 1/fan_in in the forward pass);
    ``mup.MuReadout`` computes ``output_mult · x / width_mult``.
    """
    return output_multiplier / m_in


def attention_scale(
    attention_multiplier: float, d_head_base: int, d_head: int
) -> float:
    """The µP attention-logit scale α_attn·√d_head,base/d_head.

    µP scales attention logits by 1/d_head instead of 1/√d_head (Tensor
    Programs V, §4 and Appendix J.2); normalized by √d_head,base, so the base
    model keeps the 1/√d_head scale it was tuned with.
    """
    return attention_multiplier * math.sqrt(d_head_base) / d_head


def depth_branch_multiplier(alpha: float, m_depth: float) -> float:
    """The residual branch multiplier (L_base/L)^α of a depth rule.

    depth-µP: α = ½ (Yang et al. 2023, Tensor Programs VI, §3); CompleteP:
    α = 1 (Dey et al. 2025, Table 1), relative to the base depth.
    """
    return m_depth**-alpha


def depth_adam_lr_factor(alpha: float, m_depth: float) -> float:
    """The Adam LR factor m_L^(α−1) of the parameters inside residual blocks.

    Dey et al. 2025 (CompleteP), Table 1: hidden LR η·m_N⁻¹·m_L^(α−1); at
    α = ½ this is depth-µP's η/√L (Tensor Programs VI). SGD keeps its LR in
    depth at α = ½ (Tensor Programs VI, §3).
    """
    return m_depth ** (alpha - 1.0)


def depth_adam_eps(eps: float, alpha: float, m_width: float, m_depth: float) -> float:
    """Adam's ε under a depth rule: ε·m_N⁻¹·m_L^(−α).

    Dey et al. 2025 (CompleteP), Table 1, as its reference implementation
    (EleutherAI nanoGPT-mup, completep branch) applies it to every group.
    """
    return eps / m_width * m_depth**-alpha


# --- Entry point -------------------------------------------------------------------


def mup_table(
    spec: Spec,
    base_dims: Mapping[str, int],
    targets: Sequence[Mapping[str, int]],
    settings: MupSettings,
    spec_limits: SpecLimits | None = None,
    limits: MupLimits | None = None,
) -> MupTable:
    """The µP table of ``spec`` from the base dims to each target's dims.

    ``base_dims`` and each target are overrides of the spec's own dims. Raises
    :class:`LimitExceeded` before expanding anything when the request is over
    ``limits``, and :class:`InvalidInput` with paths relative to the request
    body (``("targets", 1, "d_ff")``) for every rule broken.
    """
    spec_limits = spec_limits or SpecLimits()
    limits = limits or MupLimits()

    return _TableBuilder(
        spec, base_dims, targets, settings, spec_limits, limits
    ).build()


class _TableBuilder:
    def __init__(
        self,
        spec: Spec,
        base_dims: Mapping[str, int],
        targets: Sequence[Mapping[str, int]],
        settings: MupSettings,
        spec_limits: SpecLimits,
        limits: MupLimits,
    ) -> None:
        self.spec = spec
        self.base_overrides = base_dims
        self.target_overrides = targets
        self.settings = settings
        self.spec_limits = spec_limits
        self.limits = limits
        self.problems: list[FieldProblem] = []

    def problem(self, path: Path, message: str, value=None, allowed=None) -> None:
        self.problems.append(FieldProblem(tuple(path), message, value, allowed))

    def raise_problems(self) -> None:
        """Raise every problem found so far, each once (targets repeat them)."""
        if self.problems:
            unique = {(p.path, p.message): p for p in self.problems}
            raise InvalidInput(list(unique.values()))

    # -- Dims --------------------------------------------------------------------

    def build(self) -> MupTable:
        self.check_target_count()
        spec_dims = dict(self.spec.dims)
        base = self.merged(spec_dims, self.base_overrides, ("base_dims",))
        targets = [
            self.merged(spec_dims, overrides, ("targets", index))
            for index, overrides in enumerate(self.target_overrides)
        ]
        self.raise_problems()

        self.depth_dims = _repeat_count_dims(self.spec.layers)
        self.width_dims = self.resolve_width_dims(spec_dims, base, targets)
        self.check_depth_changes(base, targets)
        self.raise_problems()
        self.width_dim = self.resolve_width_dim(spec_dims)
        self.check_practitioner_dim()
        self.raise_problems()

        self.check_rows(base, targets)
        self.base = self.expand_at(base, ("base_dims",))
        self.raise_problems()
        self.base_keys = _template_keys(self.base)
        self.base_by_key = {
            key: tensor
            for tensor, key in zip(self.base.parameters, self.base_keys, strict=True)
        }
        layouts = [
            self.layout_at(dims, ("targets", i)) for i, dims in enumerate(targets)
        ]
        self.raise_problems()

        self.width_like = self.width_like_axes(base, targets, layouts)
        self.base_init = self.base_inits()
        skeletons: dict[tuple, ExpandedSpec] = {self.depth_signature(base): self.base}
        tables = []
        for index, (dims, layout) in enumerate(zip(targets, layouts, strict=True)):
            signature = self.depth_signature(dims)
            if signature not in skeletons:
                skeletons[signature] = self.expand_at(dims, ("targets", index))
                self.raise_problems()
            tables.append(self.target_table(index, dims, skeletons[signature], layout))
        tables = tuple(tables)
        self.raise_problems()

        return MupTable(
            settings=self.settings,
            width_dims=self.width_dims,
            depth_dims=tuple(d for d in spec_dims if d in self.depth_dims),
            width_dim=self.width_dim,
            base_dims=self.base.dims,
            base_parameter_count=self.base.parameter_count,
            base_residual_branch_count=self.base.residual_branch_count,
            convention=self.convention(),
            notes=self.table_notes(),
            targets=tables,
        )

    def check_target_count(self) -> None:
        count = len(self.target_overrides)
        if count > self.limits.max_mup_targets:
            raise LimitExceeded(
                [
                    FieldProblem(
                        ("targets",),
                        f"{count} targets are more than the"
                        f" {self.limits.max_mup_targets} one table may hold (limit"
                        " max_mup_targets); split the targets over several requests",
                        value=count,
                        allowed=f"at most {self.limits.max_mup_targets} targets",
                    )
                ],
                limit="max_mup_targets",
                limit_value=self.limits.max_mup_targets,
            )

    def merged(
        self, spec_dims: dict[str, int], overrides: Mapping[str, int], path: Path
    ) -> dict[str, int]:
        merged = dict(spec_dims)
        for name, value in overrides.items():
            if name not in spec_dims:
                self.problem(
                    (*path, name),
                    _unknown_dim_message(name, spec_dims),
                    value=name,
                    allowed=f"one of the spec's dims: {', '.join(spec_dims)}",
                )
                continue
            merged[name] = value

        return merged

    def resolve_width_dims(
        self, spec_dims: dict[str, int], base: dict[str, int], targets: list[dict]
    ) -> tuple[str, ...]:
        changed = [
            name
            for name in spec_dims
            if name not in self.depth_dims
            and any(t[name] != base[name] for t in targets)
        ]
        declared = self.settings.width_dims
        if declared is None:
            return tuple(changed)

        for index, name in enumerate(declared):
            path = ("width_dims", index)
            if name not in spec_dims:
                self.problem(path, _unknown_dim_message(name, spec_dims), value=name)
            elif name in self.depth_dims:
                self.problem(
                    path,
                    f"{json_value(name)} is a repeat count (a depth), not a width;"
                    " remove it from width_dims and scale depth with the depth rule",
                    value=name,
                )
        for name in changed:
            if name not in declared:
                index = next(i for i, t in enumerate(targets) if t[name] != base[name])
                self.problem(
                    ("targets", index, name),
                    f"dim {json_value(name)} changes from {base[name]} in the base to"
                    f" {targets[index][name]} in target {index} but is not in"
                    " width_dims; add it to width_dims or keep it at"
                    f" {base[name]}",
                    value=targets[index][name],
                )

        return tuple(name for name in spec_dims if name in declared)

    def check_depth_changes(self, base: dict[str, int], targets: list[dict]) -> None:
        depth = self.settings.depth
        for index, target in enumerate(targets):
            for name in self.depth_dims:
                if target[name] == base[name] or depth is not None:
                    continue
                self.problem(
                    ("targets", index, name),
                    f"dim {json_value(name)} is a repeat count, so changing it from"
                    f" {base[name]} to {target[name]} changes the depth, which µP"
                    " alone does not scale; give a depth rule"
                    ' ("depth": {"rule": "completep"} or {"rule": "depth_mup"}) or'
                    f" keep {name} at {base[name]}",
                    value=target[name],
                    allowed=f"{base[name]} (the base's) without a depth rule",
                )
        if (
            depth is not None
            and depth.rule == "completep"
            and (self.settings.optimizer == "sgd")
        ):
            self.problem(
                ("depth", "rule"),
                'CompleteP is defined for Adam and AdamW; with "optimizer": "sgd" use'
                ' {"rule": "depth_mup"} (Tensor Programs VI) or choose adam/adamw',
                value="completep",
                allowed="depth_mup with sgd",
            )

    def resolve_width_dim(self, spec_dims: dict[str, int]) -> str | None:
        """The dim whose multiplier is m_d (practitioner) and m_N (CompleteP's ε).

        Default: ``d_model`` when the spec has it, else the only width dim;
        without either, a request that needs one is refused.
        """
        name = self.settings.width_dim
        if name is not None:
            if name not in spec_dims:
                self.problem(
                    ("width_dim",), _unknown_dim_message(name, spec_dims), value=name
                )
            elif name in self.depth_dims:
                self.problem(
                    ("width_dim",),
                    f"width_dim {json_value(name)} is a repeat count (a depth); name"
                    " the residual-stream width, such as d_model",
                    value=name,
                )
            return name
        if "d_model" in spec_dims and "d_model" not in self.depth_dims:
            return "d_model"
        if len(self.width_dims) == 1:
            return self.width_dims[0]
        needed = self.settings.form == "practitioner" or self.settings.depth is not None
        if needed and self.width_dims:
            field_name = "form" if self.settings.form == "practitioner" else "depth"
            self.problem(
                ("width_dim",),
                f"{field_name} needs one width multiplier m_d, and the spec has no"
                " d_model and several width dims; name the residual-stream width"
                f" with width_dim, one of: {', '.join(self.width_dims)}",
                allowed=", ".join(self.width_dims),
            )

        return None

    def check_practitioner_dim(self) -> None:
        """The practitioner form's one multiplier must come from a dim that scales."""
        if self.settings.form != "practitioner" or not self.width_dims:
            return
        if self.width_dim in self.width_dims or self.width_dim not in self.spec.dims:
            return
        self.problem(
            ("width_dim",),
            "the practitioner form scales every tensor by the one multiplier m_d of"
            f" width_dim, and {json_value(self.width_dim)} is not a width dim (no"
            " target changes it), which would leave every tensor unscaled; name one"
            f" of {', '.join(self.width_dims)}, or use form mup_package",
            value=self.width_dim,
            allowed=", ".join(self.width_dims),
        )

    def check_rows(self, base: dict[str, int], targets: list[dict]) -> None:
        """Refuse a table with more rows than allowed, before expanding anything."""
        total = 0
        for index, dims in enumerate([base, *targets]):
            path = ("targets", index - 1) if index else ("base_dims",)
            try:
                count = plan_tensor_count(
                    dataclasses.replace(self.spec, dims=dims), self.spec_limits
                )
            except LimitExceeded as error:
                raise LimitExceeded(
                    self.spec_problems(error, path, keep=True),
                    limit=error.limit,
                    limit_value=error.limit_value,
                ) from None
            except InvalidInput as error:
                self.spec_problems(error, path)
                continue
            total += count if index else 0
        if total > self.limits.max_mup_rows:
            raise LimitExceeded(
                [
                    FieldProblem(
                        ("targets",),
                        f"the targets expand to {total} parameter tensors in all, more"
                        f" than the {self.limits.max_mup_rows} rows one table may hold"
                        " (limit max_mup_rows); ask for fewer targets per request",
                        value=total,
                        allowed=f"at most {self.limits.max_mup_rows} rows",
                    )
                ],
                limit="max_mup_rows",
                limit_value=self.limits.max_mup_rows,
            )
        self.raise_problems()

    def expand_at(self, dims: dict[str, int], path: Path) -> ExpandedSpec:
        try:
            return expand(dataclasses.replace(self.spec, dims=dims), self.spec_limits)
        except LimitExceeded as error:
            raise error.prefixed("spec") from None
        except InvalidInput as error:
            self.spec_problems(error, path)
            return None  # type: ignore[return-value]

    def overrides_at(self, path: Path) -> Mapping[str, int] | None:
        """The dims given at ``path`` (the base's or a target's); ``None`` for the
        width dims doubled, which no request gives."""
        if path == ("base_dims",):
            return self.base_overrides
        if path[0] == "targets":
            return self.target_overrides[path[1]]
        return None

    def spec_problems(
        self, error: InvalidInput, path: Path, keep: bool = False
    ) -> list[FieldProblem]:
        """The spec's problems with the base's or a target's dims, at ``path``
        (the dims that caused them); added to the problems unless ``keep``."""
        if path == ("base_dims",):
            where = "the dims of the base"
        elif path == ("width_dims",):
            where = (
                "the declared width dims doubled (how the service finds the axes"
                " a width dim no target changes would size; give a target that"
                " changes them instead)"
            )
        else:
            where = f"the dims of target {path[1]}"
        overrides = self.overrides_at(path)
        found = []
        for problem in error.problems:
            is_dim = len(problem.path) == 2 and problem.path[0] == "dims"
            if overrides is not None and (
                not overrides or (is_dim and problem.path[1] not in overrides)
            ):
                # The spec's own dims break the rule (nothing given here
                # changed them): the problem is the spec's, where it lies.
                found.append(
                    FieldProblem(
                        ("spec", *problem.path),
                        problem.message,
                        problem.value,
                        problem.allowed,
                    )
                )
                continue
            if is_dim and path != ("width_dims",):
                found.append(
                    FieldProblem(
                        (*path, problem.path[1]),
                        problem.message,
                        problem.value,
                        problem.allowed,
                    )
                )
                continue
            pointer = "/spec/" + "/".join(str(part) for part in problem.path)
            found.append(
                FieldProblem(
                    path,
                    f"with {where}, the spec breaks a rule at {pointer}:"
                    f" {problem.message}",
                    problem.value,
                    problem.allowed,
                )
            )
        if not keep:
            self.problems.extend(found)

        return found

    # -- Classification ------------------------------------------------------------

    def depth_signature(self, dims: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(dims[name] for name in sorted(self.depth_dims))

    def layout_at(self, dims: dict[str, int], path: Path) -> _Layout:
        """Every tensor's shape and every attention layer's heads at ``dims``.

        Read from the spec expanded with every repeat count at 1, since copies
        of a repeat share their shapes: expanding a 32-layer model costs a
        layer's work. A spec that uses a repeat count as a size too is expanded
        whole.
        """
        reduced = dict(dims)
        for name in self.depth_dims:
            reduced[name] = 1
        small = self.expand_at(reduced, path)
        if small is None:
            return _Layout({}, {})
        layout = _Layout.of(small)
        if self.depth_dims and not self.reduced_is_exact:
            full = self.expand_at(dims, path)
            return _Layout.of(full) if full is not None else _Layout({}, {})

        return layout

    @functools.cached_property
    def reduced_is_exact(self) -> bool:
        """Whether shapes read with repeat counts at 1 match the base's own (they
        do unless a repeat count also sizes a tensor)."""
        reduced = {
            name: 1 if name in self.depth_dims else value
            for name, value in self.base.dims.items()
        }
        small = expand(dataclasses.replace(self.spec, dims=reduced), self.spec_limits)

        return _Layout.of(small).shapes == _Layout.of(self.base).shapes

    def width_like_axes(
        self, base: dict[str, int], targets: list[dict], layouts: list[_Layout]
    ) -> dict[tuple, tuple[bool, ...]]:
        """Per tensor template, which axes are width-like.

        An axis is width-like when its size differs between the base and any
        target (the mup package's rule, over all targets at once so every
        target reads the same classes), or between the base and the base with
        each declared width dim doubled (a declared width dim that no target
        changes: the package's ``delta`` model).
        """
        compared = list(layouts)
        declared_equal = [
            name
            for name in self.width_dims
            if all(target[name] == base[name] for target in targets)
        ]
        if declared_equal:
            delta = dict(base)
            for name in declared_equal:
                delta[name] = 2 * base[name]
            compared.append(self.layout_at(delta, ("width_dims",)))
            self.raise_problems()

        width_like = {
            key: (False,) * len(tensor.shape)
            for key, tensor in self.base_by_key.items()
        }
        for other in compared:
            for key, shape in other.shapes.items():
                base_tensor = self.base_by_key.get(key)
                if base_tensor is None:
                    continue
                width_like[key] = tuple(
                    wide or size != base_size
                    for wide, size, base_size in zip(
                        width_like[key], shape, base_tensor.shape, strict=True
                    )
                )

        return width_like

    def base_inits(self) -> dict[tuple, tuple[float, float, str]]:
        """The (mean, std, distribution) of every base tensor, by template."""
        settings = self.settings
        if settings.init_scheme is not None:
            try:
                result = recommend(
                    self.base, settings.init_scheme, (), self.spec_limits
                )
            except InvalidInput as error:
                raise scheme_problems_at(error, "init_scheme") from None
            return {
                key: (row.mean, row.std, row.distribution)
                for key, row in zip(self.base_keys, result.parameters, strict=True)
            }
        inits = {}
        for tensor, key in zip(self.base.parameters, self.base_keys, strict=True):
            if tensor.kind in NORM_KINDS:
                mean = 1.0 if tensor.tensor == "weight" else 0.0
                inits[key] = (mean, 0.0, "constant")
            elif tensor.tensor == "bias":
                inits[key] = (0.0, 0.0, "constant")
            else:
                inits[key] = (0.0, settings.init_std, "normal")

        return inits

    # -- One target ----------------------------------------------------------------

    def target_table(
        self, index: int, dims: dict[str, int], skeleton: ExpandedSpec, layout: _Layout
    ) -> MupTarget:
        """One target's table: ``skeleton`` is the spec expanded at the target's
        depth (its names and structure), ``layout`` the target's shapes."""
        settings = self.settings
        base_dims = self.base.dims
        width_multipliers = {
            name: dims[name] / base_dims[name] for name in self.width_dims
        }
        m_depth = (
            skeleton.residual_branch_count / self.base.residual_branch_count
            if self.base.residual_branch_count
            else 1.0
        )
        depth = settings.depth
        outside = _count_outside_residuals(skeleton)
        if depth is not None and outside != _count_outside_residuals(self.base):
            changed = [d for d in sorted(self.depth_dims) if dims[d] != base_dims[d]]
            where = (
                "this spec has none"
                if not self.base.residual_branch_count
                else (
                    f"changing {', '.join(changed)} adds or removes layers outside them"
                    f" ({_count_outside_residuals(self.base)} tensors outside residual"
                    f" groups in the base, {outside} in target {index})"
                )
            )
            self.problem(
                ("depth",)
                if not self.base.residual_branch_count
                else ("targets", index, changed[0]),
                f"the depth rules scale residual branches, and {where}; µP has no"
                " depth rule for stacked layers without a residual connection: keep"
                " their repeat counts equal",
                value=depth.rule,
            )
        alpha = depth.alpha if depth is not None else 0.0
        m_width = (
            dims[self.width_dim] / base_dims[self.width_dim] if self.width_dim else 1.0
        )
        notes: list[str] = []

        rows = []
        labels = _DimLabels(self.width_dims, base_dims, dims)
        self.shared_names = {
            tensor.tied_to for tensor in skeleton.parameters if tensor.tied_to
        }
        cache: dict[tuple, MupRow] = {}
        for tensor, key in zip(
            skeleton.parameters, _template_keys(skeleton), strict=True
        ):
            # Copies of a repeat share a row, except the copy that ends the
            # network (the readout).
            cache_key = (key, tensor.is_readout, tensor.name in self.shared_names)
            row = cache.get(cache_key)
            if row is None:
                row = self.row(
                    tensor,
                    key,
                    layout.shapes[key],
                    labels,
                    m_depth,
                    alpha,
                    m_width,
                    notes,
                    index,
                )
                cache[cache_key] = row
            elif row.name != tensor.name:
                row = dataclasses.replace(
                    row, name=tensor.name, tied_to=tensor.tied_to, layout=tensor.layout
                )
            rows.append(row)
        rows = tuple(_with_owner_values(rows))
        parameter_count = sum(
            math.prod(row.shape) for row in rows if row.tied_to is None
        )

        readout = next(
            (r for r in rows if r.role == "output" and r.name.endswith("weight")), None
        )
        adam_eps = None
        if settings.optimizer in _ADAM:
            adam_eps = (
                depth_adam_eps(settings.eps, alpha, m_width, m_depth)
                if depth is not None
                else settings.eps
            )
        attention = tuple(self.attention_scales(skeleton, layout))
        scales = {a.scale for a in attention}
        notes += self.target_notes(rows, dims, skeleton, m_depth)

        return MupTarget(
            dims=dict(dims),
            parameter_count=parameter_count,
            residual_branch_count=skeleton.residual_branch_count,
            width_multipliers=width_multipliers,
            depth_multiplier=m_depth,
            output_multiplier=readout.forward_multiplier if readout else None,
            input_multiplier=(
                1.0 if settings.form == "table3" else settings.input_multiplier
            ),
            attention_scale=scales.pop() if len(scales) == 1 else None,
            attention=attention,
            residual_multiplier=(
                depth_branch_multiplier(alpha, m_depth) if depth is not None else 1.0
            ),
            adam_eps=adam_eps,
            parameters=rows,
            param_groups=_param_groups(rows, adam_eps),
            notes=tuple(dict.fromkeys(notes)),
        )

    def row(
        self,
        tensor: ParameterTensor,
        key: tuple,
        shape: tuple[int, ...],
        labels: _DimLabels,
        m_depth: float,
        alpha: float,
        m_width: float,
        notes: list[str],
        index: int,
    ) -> MupRow:
        settings = self.settings
        base_shape = self.base_by_key[key].shape
        width_like = self.width_like[key]
        fan_in_axis, fan_out_axis = _fan_axes(tensor)
        axes = _Axes(
            width_like=width_like,
            multipliers=tuple(
                size / base_size
                for size, base_size in zip(shape, base_shape, strict=True)
            ),
            fan_in_axis=fan_in_axis,
            fan_out_axis=fan_out_axis,
        )
        param_class = axes.param_class
        role = _role(tensor, axes)
        if axes.ninf > 2:
            self.problem(
                ("targets", index),
                f"{tensor.name} has {axes.ninf} width-like axes (shape"
                f" {list(base_shape)} in the base, {list(shape)} here);"
                " µP defines at most two (fan_in and fan_out): keep the kernel or"
                " group sizes fixed",
                allowed="at most two width-like axes per tensor",
            )
        if (
            tensor.tensor == "weight"
            and role == "hidden"
            and param_class == "vector_like"
            and axes.fan_in_axis is not None
            and width_like[axes.fan_in_axis]
        ):
            fixed = shape[axes.fan_out_axis]
            fixed_dims = [
                name
                for name, value in self.base.dims.items()
                if value == fixed and name not in self.width_dims
            ]
            if fixed_dims:
                fixed = f"{fixed} ({' or '.join(fixed_dims)})"
            fan_in = labels.label(base_shape[axes.fan_in_axis], shape[axes.fan_in_axis])
            self.problem(
                ("targets", index),
                f"{tensor.name} reads a width-like input ({fan_in})"
                f" but its output size {fixed} is the same in the base and every"
                " target, so it would be a second readout; if that size should grow"
                " with width (a d_ff, a head count), give it a different size in the"
                " targets or list it in width_dims; only the network's last layer is"
                " a readout",
                value=tensor.name,
            )

        scaling = axes
        if settings.form == "practitioner":
            scaling = dataclasses.replace(
                axes,
                multipliers=tuple(m_width if wide else 1.0 for wide in width_like),
            )
        base_mean, base_std, distribution = self.base_init[key]
        # A tied readout is the embedding's tensor: zeroing it would zero the
        # embedding, so readout_zero_init leaves it (a target note says so).
        zero = (
            _is_readout(tensor, axes)
            and settings.readout_zero_init
            and tensor.tied_to is None
        ) or (
            settings.query_zero_init
            and tensor.origin == "attention.q"
            and tensor.tensor == "weight"
        )
        init_std = 0.0 if zero else table8_init_std(base_std, param_class, scaling.m_in)
        init_mean = 0.0 if zero else base_mean
        if zero:
            distribution = "constant"
        forward = 1.0
        if role == "output":
            forward = readout_multiplier(settings.output_multiplier, scaling.m_in)
        elif role in ("input", "embedding"):
            forward = settings.input_multiplier
        lr = table8_lr(settings.lr, settings.optimizer, param_class, scaling)
        width_lr = lr
        depth_scaled = settings.depth is not None and tensor.residual is not None
        if depth_scaled and settings.optimizer in _ADAM:
            lr *= depth_adam_lr_factor(alpha, m_depth)
        table8_decay = mup_package_weight_decay(
            settings.weight_decay, settings.optimizer, param_class, scaling
        )
        absorbed = 1.0
        row_notes = []
        shared = tensor.tied_to is not None or tensor.name in self.shared_names
        if settings.form == "table3" and shared and forward != 1.0:
            row_notes.append(
                "This weight is shared by an embedding and the readout, so it cannot"
                " hold either use's multiplier (it would apply to both): table3 keeps"
                " this forward multiplier."
            )
        elif settings.form == "table3" and forward != 1.0:
            absorbed = forward if settings.optimizer in _ADAM else forward**2
            init_std *= forward
            init_mean *= forward
            lr *= absorbed
            forward = 1.0
        weight_decay = self.weight_decay(table8_decay, absorbed, lr)

        package = None
        if settings.form == "mup_package":
            package = self.package_values(
                tensor,
                axes,
                param_class,
                base_std,
                zero,
                width_lr,
                table8_decay,
                init_std,
            )
        if (
            settings.query_zero_init
            and tensor.origin == "attention.qkv"
            and (tensor.tensor == "weight")
        ):
            row_notes.append(
                "Fused qkv: zero only its query block (the first d_model output rows)"
                " to zero-initialize the query; the std given is for the key and"
                " value blocks."
            )
        moves_with_m = (
            param_class == "matrix_like"
            or role == "output"
            or (param_class == "vector_like" and settings.optimizer == "sgd")
        )
        if settings.form == "practitioner" and moves_with_m:
            true_m = (
                axes.m_in
                if param_class == "matrix_like" or role == "output"
                else axes.vector_multiplier
            )
            if not math.isclose(true_m, m_width, rel_tol=1e-12):
                row_notes.append(
                    f"The single multiplier m_d = {m_width:g} ({self.width_dim})"
                    f" stands in for this tensor's own {true_m:g}: exact only while"
                    " every width scales with d_model; the mup_package form uses each"
                    " dim's own."
                )
                notes.append(
                    "Some tensors scale by a multiplier other than m_d (see their"
                    " notes): the practitioner form is exact only while every width"
                    f" scales in proportion to {self.width_dim}."
                )

        return MupRow(
            name=tensor.name,
            shape=shape,
            base_shape=base_shape,
            layout=tensor.layout,
            tied_to=tensor.tied_to,
            width_dims=tuple(
                labels.label(base_size, size)
                for wide, size, base_size in zip(
                    width_like, shape, base_shape, strict=True
                )
                if wide
            ),
            m_in=axes.m_in,
            m_out=axes.m_out,
            param_class=param_class,
            role=role,
            lr=lr,
            lr_multiplier=lr / settings.lr,
            weight_decay=weight_decay,
            init_std=init_std,
            init_mean=init_mean,
            init_distribution=distribution,
            forward_multiplier=forward,
            depth_scaled=depth_scaled,
            mup_package=package,
            notes=tuple(row_notes),
        )

    def weight_decay(self, table8_decay: float, absorbed: float, lr: float) -> float:
        """A row's weight decay under the chosen convention.

        ``mup_package``: the package's width scaling (lr·wd constant across
        widths, as MuAdamW keeps it; a depth rule leaves it, as CompleteP's
        Table 1 does), divided by what Table 3 moved into the LR; ``unscaled``:
        the base value everywhere (nanoGPT-mup's master branch);
        ``independent``: lr·wd equal to the base's η·λ on every tensor, through
        depth rules too (weight decay independent of the LR, Wortsman et al.
        2023, arXiv 2309.14322).
        """
        settings = self.settings
        if settings.weight_decay_convention == "unscaled" or not settings.weight_decay:
            return settings.weight_decay
        if settings.weight_decay_convention == "independent":
            return settings.lr * settings.weight_decay / lr

        return table8_decay / absorbed

    def package_values(
        self,
        tensor: ParameterTensor,
        axes: _Axes,
        param_class: ParamClass,
        base_std: float,
        zero: bool,
        lr: float,
        weight_decay: float,
        init_std: float,
    ) -> PackageValues | None:
        """What the mup package gives where it reads the stored shape wrongly.

        The package sees the tensor as stored: a 2-D weight with layout
        ``in_out`` as (in, out), a transposed conv as (in, out, ...). Its fan_in
        is the last width-like axis (``InfShape.main``) for Adam and init, and
        axis 1 for MuSGD's fan_in/fan_out ratio. None where it agrees.
        """
        stored_width = axes.width_like
        stored_mult = axes.multipliers
        if tensor.layout == "in_out" and len(tensor.shape) == 2:
            stored_width = stored_width[::-1]
            stored_mult = stored_mult[::-1]
        wide = [i for i, w in enumerate(stored_width) if w]
        if len(wide) != 2:
            return None
        main = stored_mult[wide[-1]]
        settings = self.settings
        if settings.optimizer in _ADAM:
            package_lr = settings.lr / main
            package_decay = settings.weight_decay * main
        else:
            ratio = (stored_mult[1] if stored_width[1] else 1.0) / (
                stored_mult[0] if stored_width[0] else 1.0
            )
            package_lr = settings.lr / ratio
            package_decay = settings.weight_decay * ratio
        package_std = 0.0 if zero else base_std / math.sqrt(main)
        ours = (lr, weight_decay, init_std)
        theirs = (package_lr, package_decay, package_std)
        if all(
            math.isclose(a, b, rel_tol=1e-12) for a, b in zip(ours, theirs, strict=True)
        ):
            return None

        return PackageValues(
            lr=package_lr, weight_decay=package_decay, init_std=package_std
        )

    def attention_scales(
        self, skeleton: ExpandedSpec, layout: _Layout
    ) -> Iterator[AttentionScale]:
        base_heads = {
            node.path: node.heads
            for node in _layer_nodes(self.base.structure)
            if node.heads is not None
        }
        for node in _layer_nodes(skeleton.structure):
            if node.heads is None:
                continue
            d_head_base = base_heads[node.path][2]
            d_head = layout.heads[node.path][2]
            yield AttentionScale(
                layer=node.name,
                d_head_base=d_head_base,
                d_head=d_head,
                scale=attention_scale(
                    self.settings.attention_multiplier, d_head_base, d_head
                ),
            )

    # -- Notes -----------------------------------------------------------------------

    def target_notes(
        self,
        rows: tuple[MupRow, ...],
        dims: Mapping[str, int],
        target: ExpandedSpec,
        m_depth: float,
    ) -> list[str]:
        settings = self.settings
        notes = []
        if not any(row.role == "output" for row in rows):
            notes.append(
                "No readout: the spec's last layer does not map to a fixed size"
                " (classes, a vocabulary), so output_multiplier is null."
            )
        if dict(dims) == self.base.dims:
            notes.append("This target's dims equal the base's: every multiplier is 1.")
        differing = [row for row in rows if row.mup_package is not None]
        if differing:
            first = differing[0]
            notes.append(
                f"{len(differing)} tensors (first {first.name}, stored"
                f" {first.layout}) are read by the mup package with the wrong fan_in:"
                " it takes the last width-like axis of the stored shape, so it would"
                f" give {first.name} lr {first.mup_package.lr:.6g}, weight decay"
                f" {first.mup_package.weight_decay:.6g} and init std"
                f" {first.mup_package.init_std:.6g} where this table, dividing by the"
                f" true fan_in multiplier m_in = {first.m_in:g}, gives lr"
                f" {first.lr:.6g}, weight decay {first.weight_decay:.6g} and init std"
                f" {first.init_std:.6g}. Each such row's mup_package holds the"
                " package's values."
            )
        by_name = {row.name: row for row in rows}
        for row in rows:
            if row.role != "output" or row.tied_to is None:
                continue
            shared = by_name.get(row.tied_to)
            m = row.m_in
            if settings.readout_zero_init:
                notes.append(
                    f"readout_zero_init does not apply to {row.name}: it shares"
                    f" {row.tied_to}, which keeps its init (std {row.init_std:.6g})."
                )
            if shared is None or m == 1.0 or settings.form != "mup_package":
                continue
            notes.append(
                f"{row.name} shares {row.tied_to}: the mup package's MuSharedReadout"
                f" multiplies the shared weight by √m = {math.sqrt(m):.6g} when"
                " set_base_shapes rescales parameters, so an embedding drawn with"
                f" std {shared.init_std:.6g} before that call ends with std"
                f" {shared.init_std * math.sqrt(m):.6g}; this table keeps the"
                " embedding's init constant in width and applies 1/m to the logits"
                " only (the forward multiplier)."
            )
        readout_biases = self.readout_biases(target)
        readout_bias = [
            row for row in rows if row.role == "bias" and row.name in readout_biases
        ]
        for row in readout_bias:
            weight = next(
                (r for r in rows if r.role == "output" and r.name != row.name), None
            )
            if weight is None:
                continue
            m = weight.m_in
            if m == 1.0 or settings.form == "table3" or not row.init_std:
                continue
            notes.append(
                f"{row.name}: the mup package's set_base_shapes multiplies the"
                f" readout bias by √m = {math.sqrt(m):.6g} (a PyTorch-default bias"
                " U(±1/√fan_in) made width-constant); this table gives it the base's"
                f" init (std {row.init_std:.6g}), constant in width, added after the"
                " readout's forward multiplier as MuReadout does."
            )
        if settings.depth is not None:
            notes.append(
                f"Depth multiplier m_L = {m_depth:g} (residual branches"
                f" {target.residual_branch_count} vs {self.base.residual_branch_count}"
                " in the base): multiply every residual branch's output by the"
                " residual_multiplier; do not also scale inits by 1/√(2·n_layer) as"
                " GPT-2 does."
            )
        return notes

    def readout_biases(self, target: ExpandedSpec) -> set[str]:
        return {
            tensor.name
            for tensor in target.parameters
            if tensor.is_readout and tensor.tensor == "bias"
        }

    def table_notes(self) -> tuple[str, ...]:
        settings = self.settings
        notes = []
        if not self.width_dims:
            notes.append(
                "No dim differs between the base and the targets, so no axis is"
                " width-like and every multiplier is 1; list the dims that scale in"
                " width_dims to see their classes."
            )
        else:
            notes.append(
                "Width dims (their size differs between the base and a target, or"
                f" declared): {', '.join(self.width_dims)}."
            )
        if settings.depth is None:
            notes.append(
                "No depth rule: the base and the targets have the same repeat counts."
            )
        if settings.optimizer in _ADAM and settings.depth is None:
            notes.append(
                "Adam's ε is not scaled (as the mup package); with very wide hidden"
                " layers a smaller ε (ε/m_in) keeps updates from being damped."
            )
        if settings.depth is not None:
            notes.append(
                "With a depth rule, Adam's ε also scales with width (ε·m_N⁻¹, m_N the"
                f" multiplier of {self.width_dim}), as CompleteP prescribes, even for"
                " a target whose depth does not change."
            )
        if settings.optimizer == "sgd":
            notes.append(
                "eps is Adam's: with sgd it is not used, and param_groups carry eps"
                " null."
            )
        if not any(node.heads for node in _layer_nodes(self.base.structure)) and (
            settings.attention_multiplier != 1.0 or settings.query_zero_init
        ):
            notes.append(
                "The spec has no attention layer: attention_multiplier and"
                " query_zero_init change nothing."
            )
        if settings.init_scheme is not None:
            notes.append(
                f"Base stds from the {settings.init_scheme.name} scheme on the base"
                " spec; a hidden weight's std then scales as 1/√m_in, every other"
                " tensor's stays at its base value."
            )
        return tuple(notes)

    def convention(self) -> str:
        settings = self.settings
        form = {
            "mup_package": (
                "Tensor Programs V Table 8 as the mup package implements it: hidden"
                " weights init std/√m_in and Adam LR η/m_in (SGD η·m_out/m_in),"
                " vector-like tensors width-constant init with Adam LR η (SGD η·m),"
                " the readout multiplied by α_output/m_in in the forward pass"
            ),
            "table3": (
                "Tensor Programs V Table 3: no forward multipliers; the readout's"
                " α_output/m_in and the input's α_input are moved into their init"
                " and LR (std × a, Adam LR × a, SGD LR × a²)"
            ),
            "practitioner": (
                "the single width multiplier form (m_d of the width dim): hidden"
                " weights init std/√m_d and Adam LR η/m_d, the readout × α_output/m_d,"
                " everything else width-constant"
            ),
        }[settings.form]
        decay = {
            "mup_package": (
                "weight decay scaled as the mup package (lr·wd constant in width)"
            ),
            "unscaled": "weight decay unscaled (the base value on every tensor)",
            "independent": (
                "independent weight decay (lr·wd equal to the base's η·λ on every"
                " tensor)"
            ),
        }[settings.weight_decay_convention]
        depth = "no depth rule"
        if settings.depth is not None:
            depth = (
                f"{settings.depth.rule} (α = {settings.depth.alpha:g}): residual"
                " branches × (L_base/L)^α, Adam LR of block parameters × m_L^(α−1),"
                " Adam ε × m_N⁻¹·m_L^(−α)"
            )
        attention = "attention logits × α_attn·√d_head,base/d_head"

        return f"{form}; {decay}; {depth}; {attention}."


# --- Helpers -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Shapes by tensor template and attention heads by layer path."""

    shapes: dict[tuple, tuple[int, ...]]
    heads: dict[tuple, tuple[int, int, int]]

    @classmethod
    def of(cls, expanded: ExpandedSpec) -> _Layout:
        shapes = {
            key: tensor.shape
            for tensor, key in zip(
                expanded.parameters, _template_keys(expanded), strict=True
            )
        }
        heads = {
            node.path: node.heads
            for node in _layer_nodes(expanded.structure)
            if node.heads is not None
        }
        return cls(shapes, heads)


class _DimLabels:
    """Names the width dim behind an axis by its base and target sizes."""

    def __init__(
        self,
        width_dims: tuple[str, ...],
        base: Mapping[str, int],
        target: Mapping[str, int],
    ) -> None:
        self.pairs: dict[tuple[int, int], list[str]] = {}
        for name in width_dims:
            self.pairs.setdefault((base[name], target[name]), []).append(name)

    def label(self, base_size: int, size: int) -> str:
        """``d_ff``; ``a|b`` when two dims have these sizes; ``3·d_model`` for a
        fused projection; else the sizes themselves (``576→2304``)."""
        names = self.pairs.get((base_size, size))
        if names:
            return "|".join(names)
        for (base_dim, dim), names in self.pairs.items():
            factor, remainder = divmod(base_size, base_dim)
            if not remainder and factor > 1 and size == factor * dim:
                return f"{factor}·{'|'.join(names)}"

        return f"{base_size}→{size}"


def _repeat_count_dims(items: Sequence) -> set[str]:
    """The dims used as a repeat count anywhere in the spec."""
    found: set[str] = set()
    for item in items:
        if isinstance(item, RepeatGroup) and isinstance(item.count, str):
            found.add(item.count)
        if isinstance(item, RepeatGroup | SequentialGroup | ResidualGroup):
            found |= _repeat_count_dims(item.layers)
            found |= _repeat_count_dims(getattr(item, "shortcut", ()) or ())

    return found


def _layer_nodes(nodes: Sequence[StructureNode]) -> Iterator[LayerNode]:
    for node in nodes:
        if isinstance(node, ResidualNode):
            if node.norm_layer is not None:
                yield node.norm_layer
            yield from _layer_nodes(node.branch)
            yield from _layer_nodes(node.shortcut)
        else:
            yield node


def _template_keys(expanded: ExpandedSpec) -> list[tuple]:
    """A key per parameter that every copy of a repeat shares: (spec path, suffix)."""
    keys: list[tuple] = [(tensor.name,) for tensor in expanded.parameters]
    for node in _layer_nodes(expanded.structure):
        for index in node.parameters:
            suffix = expanded.parameters[index].name[len(node.name) :]
            keys[index] = (node.path, suffix)

    return keys


def _with_owner_values(rows: Sequence[MupRow]) -> Iterator[MupRow]:
    """Rows where a tied tensor's optimizer and init values are its owner's.

    A tied tensor is the tensor it shares, so its learning rate, weight decay
    and init are the owner's; only its forward multiplier is its own (the
    readout's use of an embedding's weight).
    """
    by_name = {row.name: row for row in rows}
    for row in rows:
        owner = by_name.get(row.tied_to) if row.tied_to else None
        if owner is None:
            yield row
            continue
        yield dataclasses.replace(
            row,
            lr=owner.lr,
            lr_multiplier=owner.lr_multiplier,
            weight_decay=owner.weight_decay,
            init_std=owner.init_std,
            init_mean=owner.init_mean,
            init_distribution=owner.init_distribution,
            mup_package=owner.mup_package,
            notes=(
                *row.notes,
                f"Shares {owner.name}: its learning rate, weight decay and init are"
                f" {owner.name}'s.",
            ),
        )


def _count_outside_residuals(expanded: ExpandedSpec) -> int:
    """Parameter tensors outside every residual branch (shortcuts included)."""
    return sum(1 for tensor in expanded.parameters if tensor.residual is None)


def _param_groups(rows: Sequence[MupRow], eps: float | None) -> tuple[ParamGroup, ...]:
    """Rows merged by (lr, weight decay), in order of first appearance.

    A tied tensor is listed once, under the name of the tensor it shares.
    """
    groups: dict[tuple[float, float], list[str]] = {}
    for row in rows:
        if row.tied_to is not None:
            continue
        groups.setdefault((row.lr, row.weight_decay), []).append(row.name)

    return tuple(
        ParamGroup(params=tuple(names), lr=lr, weight_decay=decay, eps=eps)
        for (lr, decay), names in groups.items()
    )


def _unknown_dim_message(name: str, dims: Mapping[str, int]) -> str:
    message = f"{json_value(name)} is not a dim of the spec"
    close = closest(name, dims)
    if close:
        return f"{message}; did you mean {json_value(close)}?"

    return f"{message}; its dims are: {', '.join(dims) or 'none'}"
