"""The architecture spec as the user wrote it, and its expansion into parameters.

A spec names its sizes once (``dims``) and lists layers in forward order;
groups nest: ``residual`` (x + f(x), with an optional norm before the branch or
after the addition, and an optional projection shortcut), ``repeat`` (``count``
copies named ``<name>.<i>``) and ``sequential`` (a plain named container, like
an ``nn.Module`` attribute holding submodules). :func:`expand` resolves dim
names, checks every rule that needs the whole spec, refuses oversized specs
before doing any work, and returns an :class:`~initlab.core.types.ExpandedSpec`
whose parameter tensors carry PyTorch's names, shapes and order
(``named_parameters()``).

Naming follows ``nn.Sequential``: a layer without a name is called by its index
in its parent list, a group without a name adds no path segment, so GPT-2 reads
``h.3.attn.qkv.weight`` and ``h.3.ln_1.weight``.

Residual bookkeeping (:class:`~initlab.core.types.ResidualPosition`): a branch
is the ``layers`` of a residual group, and its depth counts the positions on the
signal path that hold weight layers. An attention block takes two positions: q,
k and v (or the fused qkv) share the first, because only v carries the signal
into the output while q and k shape the mixing weights; o takes the second. A
gated MLP takes two as well: gate and up side by side, then down. The layer
added to the stream (``is_branch_output``) is the one at the last position:
attention's o, the gated MLP's down, else the last weight layer. A norm inside a
branch records the number of positions before it as its ``weight_layer_index``
(so ResNet's bn3 has ``weight_layer_index == branch_depth``). Shortcut layers
and the norm of a post-norm group are not on the branch and carry no residual
position. A residual group nested in a branch owns its own layers.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal, TypeAlias

from initlab.core.activations import make_activation
from initlab.core.errors import (
    FieldProblem,
    InvalidInput,
    LimitExceeded,
    Path,
    closest,
    json_value,
)
from initlab.core.types import (
    Activation,
    ExpandedSpec,
    LayerKind,
    LayerNode,
    Layout,
    NormPlacement,
    ParameterTensor,
    ResidualNode,
    ResidualPosition,
    StructureNode,
)

Size: TypeAlias = int | str
"""A positive integer, or the name of an entry of ``Spec.dims``."""

ConvKind = Literal[
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
]
NormKind = Literal["layer_norm", "rms_norm", "batch_norm"]

CONV_KINDS: tuple[str, ...] = (
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
NORM_KINDS: tuple[str, ...] = ("layer_norm", "rms_norm", "batch_norm")
LAYER_KINDS: tuple[str, ...] = (
    "linear",
    *CONV_KINDS,
    "embedding",
    *NORM_KINDS,
    "attention",
    "gated_mlp",
)
GROUP_KINDS: tuple[str, ...] = ("residual", "repeat", "sequential")
ITEM_KINDS: tuple[str, ...] = (*LAYER_KINDS, *GROUP_KINDS)
NORM_PLACEMENTS: tuple[str, ...] = ("pre", "post", "none")
LAYOUTS: tuple[str, ...] = ("out_in", "in_out")

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
"""A layer or group name: one path segment, so no dots."""
DIM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
"""A dim name: an identifier, so it can never be mistaken for a number."""

_NAME = re.compile(NAME_PATTERN)
_DIM_NAME = re.compile(DIM_NAME_PATTERN)


@dataclass(frozen=True, kw_only=True)
class LinearSpec:
    """``nn.Linear(in, out)``: weight (out, in), bias (out,)."""

    in_features: Size
    out_features: Size
    name: str | None = None
    bias: bool = True
    activation: Activation | None = None
    layout: Layout = "out_in"
    tied_to: str | None = None
    kind: Literal["linear"] = "linear"


@dataclass(frozen=True, kw_only=True)
class ConvSpec:
    """``nn.ConvNd`` / ``nn.ConvTransposeNd`` with ``in``/``out`` channels.

    ``kernel_size`` is one size for every spatial dim or one per dim. Stride and
    padding do not change parameter shapes, so the spec does not keep them.
    """

    kind: ConvKind
    in_features: Size
    out_features: Size
    kernel_size: Size | tuple[Size, ...]
    groups: Size = 1
    name: str | None = None
    bias: bool = True
    activation: Activation | None = None
    layout: Layout = "out_in"
    tied_to: str | None = None


@dataclass(frozen=True, kw_only=True)
class EmbeddingSpec:
    """``nn.Embedding(in, out)``: ``in`` rows (vocabulary) of size ``out``."""

    in_features: Size
    out_features: Size
    name: str | None = None
    bias: bool = False
    activation: Activation | None = None
    layout: Layout = "out_in"
    tied_to: str | None = None
    kind: Literal["embedding"] = "embedding"


@dataclass(frozen=True, kw_only=True)
class NormSpec:
    """A layer, RMS or batch norm over ``in`` features (``out`` must equal ``in``).

    ``bias`` defaults to the kind's own: true for layer and batch norm, none
    for RMS norm.
    """

    kind: NormKind
    in_features: Size
    out_features: Size | None = None
    name: str | None = None
    bias: bool | None = None
    activation: Activation | None = None
    layout: Layout = "out_in"
    tied_to: str | None = None


@dataclass(frozen=True, kw_only=True)
class AttentionSpec:
    """Multi-head (or grouped-query) attention, expanded to linear projections."""

    d_model: Size
    n_heads: Size
    n_kv_heads: Size | None = None
    d_head: Size | None = None
    fused_qkv: bool = False
    name: str | None = None
    bias: bool = True
    layout: Layout = "out_in"
    kind: Literal["attention"] = "attention"


@dataclass(frozen=True, kw_only=True)
class GatedMlpSpec:
    """A gated MLP, down(act(gate(x)) * up(x)); ``activation`` applies to the gate."""

    d_model: Size
    d_ff: Size
    activation: Activation | None = None
    name: str | None = None
    bias: bool = False
    layout: Layout = "out_in"
    kind: Literal["gated_mlp"] = "gated_mlp"


@dataclass(frozen=True, kw_only=True)
class NormLayerSpec:
    """The norm module of a pre- or post-norm residual group."""

    kind: NormKind = "layer_norm"
    name: str = "norm"
    bias: bool | None = None


@dataclass(frozen=True, kw_only=True)
class ResidualGroup:
    """x + f(x), f being ``layers``; ``shortcut`` replaces the identity when given.

    With ``norm="pre"`` the norm module is applied to the branch input, with
    ``"post"`` after the addition; its size is the in-size of the branch's
    first layer. ``shortcut`` lists the layers of a projection shortcut (a
    ResNet downsample), named in the group like the branch layers.
    """

    layers: tuple[SpecItem, ...]
    norm: NormPlacement = "none"
    norm_layer: NormLayerSpec | None = None
    shortcut: tuple[SpecItem, ...] = ()
    name: str | None = None
    kind: Literal["residual"] = "residual"


@dataclass(frozen=True, kw_only=True)
class RepeatGroup:
    """``count`` copies of ``layers``, the i-th named ``<name>.<i>``."""

    count: Size
    layers: tuple[SpecItem, ...]
    name: str | None = None
    kind: Literal["repeat"] = "repeat"


@dataclass(frozen=True, kw_only=True)
class SequentialGroup:
    """``layers`` under one name, applied in order (GPT-2's ``mlp``)."""

    layers: tuple[SpecItem, ...]
    name: str | None = None
    kind: Literal["sequential"] = "sequential"


LayerSpec: TypeAlias = (
    LinearSpec | ConvSpec | EmbeddingSpec | NormSpec | AttentionSpec | GatedMlpSpec
)
GroupSpec: TypeAlias = ResidualGroup | RepeatGroup | SequentialGroup
SpecItem: TypeAlias = LayerSpec | GroupSpec


@dataclass(frozen=True)
class Spec:
    """A whole architecture: named sizes and the layers in forward order."""

    dims: Mapping[str, int]
    layers: tuple[SpecItem, ...]


def _limit(default: int, description: str) -> int:
    return field(default=default, metadata={"description": description})


@dataclass(frozen=True)
class SpecLimits:
    """How large a spec, and the overrides aimed at it, may be.

    Every refusal names the limit that was hit. ``max_override_matches`` and
    ``max_overrides`` bound the work of matching override globs
    (``initlab.core.recommend``); the others bound the spec.
    """

    max_dim_size: int = _limit(
        2**31 - 1, "Largest size a dim or a layer may have (default 2**31 - 1)."
    )
    max_repeat_count: int = _limit(
        10_000, "Largest count of one repeat group (default 10000)."
    )
    max_parameter_tensors: int = _limit(
        20_000,
        "Most parameter tensors a spec may expand to, counted before expanding"
        " (default 20000; Llama-2-70B has under 1000).",
    )
    max_parameters: int = _limit(
        10**13,
        "Most scalar parameters a spec may hold, counted before expanding with a"
        " tied weight at each use (default 10**13).",
    )
    max_nesting_depth: int = _limit(
        16, "Deepest nesting of groups inside groups (default 16)."
    )
    max_layers: int = _limit(
        10_000, "Most items in one layers or shortcut list (default 10000)."
    )
    max_overrides: int = _limit(
        256, "Most override patterns one request may give (default 256)."
    )
    max_override_matches: int = _limit(
        2_000_000,
        "Most override patterns times parameter tensors one request may ask to"
        " match (default 2000000).",
    )


def expand(spec: Spec, limits: SpecLimits = SpecLimits()) -> ExpandedSpec:
    """Resolve ``spec``'s dims and groups into its parameter tensors, in forward order.

    Raises :class:`LimitExceeded` as soon as the spec is found over a limit
    (before expanding anything: the expanded size is computed from the repeat
    counts) and :class:`InvalidInput` listing every rule broken, with paths
    relative to the spec (``("layers", 3, "in")``).
    """
    planner = _Planner(limits)
    plan = planner.plan_spec(spec)
    if planner.problems:
        raise InvalidInput(planner.problems)

    return _Emitter(plan).emit()


def plan_tensor_count(spec: Spec, limits: SpecLimits = SpecLimits()) -> int:
    """How many parameter tensors ``spec`` expands to, without expanding it.

    Checks every rule as :func:`expand` does (raising the same errors); the
    count comes from the repeat counts, so it costs the spec's length, not its
    expanded size.
    """
    planner = _Planner(limits)
    plan = planner.plan_spec(spec)
    if planner.problems:
        raise InvalidInput(planner.problems)

    return plan.tensors


def check_list_limits(
    length: int, depth: int, path: Path, limits: SpecLimits = SpecLimits()
) -> None:
    """Refuse a list of ``length`` items nested ``depth`` groups deep, if over a limit.

    ``path`` is the list's path. Shared with the web schemas, which call it
    before loading a list so an oversized spec is refused before any work.
    """
    if depth > limits.max_nesting_depth:
        raise _over_limit(
            limits,
            "max_nesting_depth",
            path,
            f"groups nested {depth} deep",
            "flatten the spec (a repeat of a repeat can often be one repeat)",
        )
    if length > limits.max_layers:
        raise _over_limit(
            limits,
            "max_layers",
            path,
            f"a list of {length} items",
            "express identical layers as a repeat group",
        )


def _over_limit(
    limits: SpecLimits, limit: str, path: Path, what: str, fix: str, value=None
) -> LimitExceeded:
    """The refusal of a spec over ``limit``, naming its value and what to change."""
    limit_value = getattr(limits, limit)
    return LimitExceeded(
        [
            FieldProblem(
                tuple(path),
                f"over the limit {limit} = {limit_value}: got {what}; {fix} or"
                f" raise {limit}",
                value=value,
            )
        ],
        limit=limit,
        limit_value=limit_value,
    )


# --- Planning: check the spec once and resolve every size ---------------------


@dataclass(frozen=True)
class _Module:
    """One PyTorch module a layer becomes: its weight and, maybe, its bias.

    ``suffix`` is the projection's name under the layer (``q``) or ``None``;
    ``step`` is its position on the signal path within the layer (``None`` for
    norms, which hold no weight layer); ``heads`` is ``(n_heads, n_kv_heads,
    d_head)`` for an attention projection.
    """

    suffix: str | None
    kind: LayerKind
    weight_shape: tuple[int, ...]
    has_bias: bool
    in_features: int
    out_features: int
    step: int | None
    kernel_size: tuple[int, ...] = ()
    groups: int = 1
    layout: Layout = "out_in"
    activation: Activation = Activation()
    origin: str | None = None
    heads: tuple[int, int, int] | None = None

    @classmethod
    def dense(
        cls, suffix: str | None, in_features: int, out_features: int, **options
    ) -> _Module:
        """A linear module (a plain linear layer or a projection)."""
        weight_shape = linear_weight_shape(in_features, out_features)
        return cls(
            suffix,
            "linear",
            weight_shape,
            in_features=in_features,
            out_features=out_features,
            **options,
        )


@dataclass(frozen=True)
class _LayerPlan:
    segment: str
    path: Path
    modules: tuple[_Module, ...]
    tied_to: str | None = None
    branches: ClassVar[int] = 0

    @property
    def tensors(self) -> int:
        return sum(1 + module.has_bias for module in self.modules)

    @property
    def parameters(self) -> int:
        """Scalar parameters: every weight's numel, plus each bias's length."""
        return sum(
            math.prod(module.weight_shape) + module.has_bias * module.out_features
            for module in self.modules
        )

    @property
    def steps(self) -> int:
        steps = [module.step for module in self.modules if module.step is not None]
        return max(steps) + 1 if steps else 0

    @property
    def in_features(self) -> int:
        return self.modules[0].in_features

    @property
    def out_features(self) -> int:
        return self.modules[-1].out_features

    @property
    def in_field(self) -> str:
        """The spec field that gives the layer's input width."""
        return "d_model" if self.modules[0].origin is not None else "in"

    @property
    def out_field(self) -> str:
        """The spec field that gives the layer's output width."""
        last = self.modules[-1]
        if last.origin is not None:
            return "d_model"
        return "in" if last.kind in NORM_KINDS else "out"


@dataclass(frozen=True)
class _GroupPlan:
    kind: str
    segment: str | None
    path: Path
    children: tuple[_Plan, ...]
    count: int = 1
    norm: NormPlacement = "none"
    norm_module: _LayerPlan | None = None
    shortcut: tuple[_Plan, ...] = ()
    tensors: int = 0
    parameters: int = 0
    branches: int = 0
    steps: int = 0
    branch_depth: int = 0


_Plan: TypeAlias = _LayerPlan | _GroupPlan


@dataclass(frozen=True)
class _SpecPlan:
    dims: dict[str, int]
    items: tuple[_Plan, ...]
    tensors: int
    branches: int


class _Namespace:
    """The names claimed under one module, to find duplicates before expanding."""

    def __init__(self) -> None:
        self.names: dict[str, Path] = {}
        self.indices: tuple[int, Path] | None = None

    def claim(self, segment: str, path: Path) -> Path | None:
        """Claim ``segment``; returns the path of an earlier claimant, if any."""
        if segment in self.names:
            return self.names[segment]
        if self.indices is not None and _is_index_below(segment, self.indices[0]):
            return self.indices[1]

        self.names[segment] = path
        return None

    def claim_indices(self, count: int, path: Path) -> Path | None:
        """Claim ``0 .. count-1`` for the copies of an unnamed repeat."""
        if self.indices is not None:
            return self.indices[1]
        for segment, other in self.names.items():
            if _is_index_below(segment, count):
                return other

        self.indices = (count, path)
        return None


def _is_index_below(segment: str, count: int) -> bool:
    return segment.isdigit() and str(int(segment)) == segment and int(segment) < count


class _Planner:
    """Walks the spec once: checks every rule, resolves sizes, counts tensors.

    Problems are collected so one answer lists them all; a limit is refused at
    once by raising :class:`LimitExceeded`.
    """

    def __init__(self, limits: SpecLimits) -> None:
        self.limits = limits
        self.dims: dict[str, int] = {}
        self.problems: list[FieldProblem] = []
        # How many times the repeats around the item being planned copy it.
        self.copies = 1

    def problem(self, path: Path, message: str, value=None, allowed=None) -> None:
        self.problems.append(FieldProblem(tuple(path), message, value, allowed))

    def plan_spec(self, spec: Spec) -> _SpecPlan:
        self.dims = self.check_dims(spec.dims)
        if isinstance(spec.layers, tuple | list) and not spec.layers:
            self.problem(
                ("layers",),
                "a spec needs at least one layer; got an empty list",
                allowed="a non-empty list of layers and groups",
            )
        items = self.plan_list(spec.layers, ("layers",), 0, _Namespace())
        tensors = self.check_totals(items, ("layers",), "a spec")
        return _SpecPlan(self.dims, items, tensors, _total(items, "branches"))

    def check_dims(self, dims: Mapping[str, int]) -> dict[str, int]:
        checked: dict[str, int] = {}
        for name, value in dims.items():
            path = ("dims", name)
            if not isinstance(name, str) or not _DIM_NAME.match(name):
                self.problem(
                    path,
                    "a dim name must be an identifier (letters, digits and"
                    " underscores, starting with a letter or underscore); got"
                    f" {json_value(name)}",
                    value=name,
                    allowed=DIM_NAME_PATTERN,
                )
                continue
            size = self.positive_integer(value, path, f"dim {json_value(name)}")
            if size is not None:
                checked[name] = size

        return checked

    def positive_integer(self, value: object, path: Path, what: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.problem(
                path,
                f"{what} must be a positive integer; got {json_value(value)}",
                value=value,
                allowed="an integer ≥ 1",
            )
            return None
        if value > self.limits.max_dim_size:
            raise _over_limit(
                self.limits,
                "max_dim_size",
                path,
                f"{what} = {value}",
                "use a smaller size",
                value,
            )

        return value

    def size(self, value: object, path: Path) -> int | None:
        """Resolve a size: a positive integer, or the name of a dim."""
        if isinstance(value, str):
            if value in self.dims:
                return self.dims[value]
            self.problem(path, _unknown_dim_message(value, self.dims), value=value)
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(
                path,
                "must be a positive integer or the name of a dim; got"
                f" {json_value(value)} ({type(value).__name__})",
                value=value,
                allowed="an integer ≥ 1 or a dim name",
            )
            return None

        return self.positive_integer(value, path, "size")

    def plan_list(
        self, items: tuple[SpecItem, ...], path: Path, depth: int, names: _Namespace
    ) -> tuple[_Plan, ...]:
        if not isinstance(items, tuple | list):
            self.problem(
                path,
                f"must be a tuple of layers and groups; got {json_value(items)}",
                allowed="a tuple of layers and groups",
            )
            return ()
        check_list_limits(len(items), depth, path, self.limits)

        plans = []
        for index, item in enumerate(items):
            plan = self.plan_item(item, (*path, index), index, depth, names)
            if plan is not None:
                plans.append(plan)

        return tuple(plans)

    def plan_item(
        self, item: object, path: Path, index: int, depth: int, names: _Namespace
    ) -> _Plan | None:
        if isinstance(item, ResidualGroup | RepeatGroup | SequentialGroup):
            return self.plan_group(item, path, depth, names)

        planners = {
            LinearSpec: self.plan_linear,
            ConvSpec: self.plan_conv,
            EmbeddingSpec: self.plan_embedding,
            NormSpec: self.plan_norm,
            AttentionSpec: self.plan_attention,
            GatedMlpSpec: self.plan_gated_mlp,
        }
        planner = planners.get(type(item))
        if planner is None:
            self.problem(
                path,
                f"not a layer or group: {json_value(item)}; use one of the spec"
                f" classes of initlab.core.spec (kinds {', '.join(ITEM_KINDS)})",
                allowed=", ".join(ITEM_KINDS),
            )
            return None

        segment = self.claim_name(item.name, str(index), path, names)
        if not self.check_flags(item, path):
            return None
        modules = planner(item, path)
        if modules is None or segment is None:
            return None

        tied_to = getattr(item, "tied_to", None)
        plan = _LayerPlan(segment, path, modules, tied_to)
        if self.copies == 1:
            # Inside a repeat the repeat is checked, with all its copies.
            self.check_totals((plan,), path, "a layer")
        return plan

    def check_flags(self, item: LayerSpec, path: Path) -> bool:
        """Check the fields a Python caller could fill with the wrong type."""
        problems = len(self.problems)
        for flag in ("bias", "fused_qkv"):
            value = getattr(item, flag, False)
            # A norm's bias may be None: the kind's own default.
            if value is None and isinstance(item, NormSpec):
                continue
            if not isinstance(value, bool):
                self.problem(
                    (*path, flag),
                    f"{flag} must be true or false; got {json_value(value)}",
                )
        tied_to = getattr(item, "tied_to", None)
        if tied_to is not None and not isinstance(tied_to, str):
            self.problem(
                (*path, "tied_to"),
                "tied_to must be the dotted name of a layer; got"
                f" {json_value(tied_to)}",
            )
        if isinstance(item, ConvSpec) and item.kind not in CONV_KINDS:
            self.problem(
                (*path, "kind"),
                f"a convolution is one of {', '.join(CONV_KINDS)}; got"
                f" {json_value(item.kind)}",
                allowed=", ".join(CONV_KINDS),
            )

        return len(self.problems) == problems

    def claim_name(
        self, name: str | None, default: str, path: Path, names: _Namespace
    ) -> str | None:
        """Check ``name`` (or the default index name) is free in ``names``."""
        if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
            self.problem(
                (*path, "name"),
                "a name must be one path segment: 1 to 128 letters, digits, '_' or"
                " '-' (no dots: nesting makes the dotted path); got"
                f" {json_value(name)}",
                value=name,
                allowed=NAME_PATTERN,
            )
            return None

        segment = default if name is None else name
        other = names.claim(segment, path)
        if other is not None:
            where = (*path, "name") if name is not None else path
            self.problem(
                where,
                f"duplicate name {json_value(segment)}: the item at {_render(other)}"
                " already has it in the same parent (a layer without a name takes its"
                " index in its list, and an unnamed group adds no path segment); names"
                " must be unique within their parent, so rename one of them",
                value=segment,
            )
            return None

        return segment

    def plan_group(
        self, group: GroupSpec, path: Path, depth: int, names: _Namespace
    ) -> _GroupPlan | None:
        segment = None
        inner = names
        if group.name is not None:
            segment = self.claim_name(group.name, "", path, names)
            inner = _Namespace()

        if not group.layers:
            self.problem(
                (*path, "layers"),
                f"a {group.kind} group needs at least one layer; got an empty list",
                allowed="a non-empty list of layers and groups",
            )

        if isinstance(group, RepeatGroup):
            return self.plan_repeat(group, path, depth, names, segment)

        problems = len(self.problems)
        children = self.plan_list(group.layers, (*path, "layers"), depth + 1, inner)
        if isinstance(group, SequentialGroup):
            return _GroupPlan(
                "sequential",
                segment,
                path,
                children,
                tensors=_total(children, "tensors"),
                parameters=_total(children, "parameters"),
                branches=_total(children, "branches"),
                steps=_total(children, "steps"),
            )

        complete = len(self.problems) == problems
        return self.plan_residual(
            group, path, depth, inner, segment, children, complete
        )

    def plan_repeat(
        self,
        group: RepeatGroup,
        path: Path,
        depth: int,
        names: _Namespace,
        segment: str | None,
    ) -> _GroupPlan | None:
        count = self.size(group.count, (*path, "count"))
        if count is not None and count > self.limits.max_repeat_count:
            raise _over_limit(
                self.limits,
                "max_repeat_count",
                (*path, "count"),
                f"a repeat count of {count}",
                "use a smaller count",
                group.count,
            )
        if count is not None and segment is None and group.name is None:
            other = names.claim_indices(count, path)
            if other is not None:
                self.problem(
                    path,
                    f"this unnamed repeat names its copies 0..{count - 1} in the same"
                    f" parent as the item at {_render(other)}; give the repeat a"
                    " name",
                )

        around = self.copies
        self.copies = around * (count or 1)
        try:
            children = self.plan_list(
                group.layers, (*path, "layers"), depth + 1, _Namespace()
            )
        finally:
            self.copies = around
        if count is None:
            return None

        plan = _GroupPlan(
            "repeat",
            segment,
            path,
            children,
            count=count,
            tensors=count * _total(children, "tensors"),
            parameters=count * _total(children, "parameters"),
            branches=count * _total(children, "branches"),
            steps=count * _total(children, "steps"),
        )
        self.check_totals((plan,), path, "a repeat group")
        return plan

    def plan_residual(
        self,
        group: ResidualGroup,
        path: Path,
        depth: int,
        names: _Namespace,
        segment: str | None,
        children: tuple[_Plan, ...],
        complete: bool,
    ) -> _GroupPlan | None:
        """Plan a residual group; ``complete`` says its layers planned without fault."""
        if group.norm not in NORM_PLACEMENTS:
            self.problem(
                (*path, "norm"),
                f"norm must be one of {', '.join(NORM_PLACEMENTS)}; got"
                f" {json_value(group.norm)}",
                value=group.norm,
                allowed=", ".join(NORM_PLACEMENTS),
            )
        if group.norm_layer is not None and group.norm == "none":
            self.problem(
                (*path, "norm_layer"),
                "norm_layer is given but norm is 'none'; set norm to 'pre' or"
                " 'post', or remove norm_layer (explicit norm layers go in layers)",
            )

        norm_module = None
        if group.norm in ("pre", "post"):
            norm_module = self.plan_norm_layer(
                group.norm_layer or NormLayerSpec(), path, names, children
            )

        problems = len(self.problems)
        shortcut = self.plan_list(group.shortcut, (*path, "shortcut"), depth + 1, names)
        if complete and len(self.problems) == problems:
            self.check_residual_widths(children, shortcut)
        everything = (*children, *shortcut, *([norm_module] if norm_module else []))
        return _GroupPlan(
            "residual",
            segment,
            path,
            children,
            norm=group.norm,
            norm_module=norm_module,
            shortcut=shortcut,
            tensors=_total(everything, "tensors"),
            parameters=_total(everything, "parameters"),
            branches=1 + _total(everything, "branches"),
            # A nested residual owns its layers: it adds no step to the outer branch.
            steps=0,
            branch_depth=_total(children, "steps"),
        )

    def check_residual_widths(
        self, branch: tuple[_Plan, ...], shortcut: tuple[_Plan, ...]
    ) -> None:
        """x + f(x) needs f(x) as wide as x, or a shortcut from x's width to f's.

        Widths are read at the ends: the branch's first layer's in and last
        layer's out, and the shortcut's. Layers in between need not chain (GPT-2
        adds a position embedding to a token embedding).
        """
        first, last = _end_layer(branch, first=True), _end_layer(branch, first=False)
        if first is None or last is None:
            return

        width = first.in_features
        if not shortcut:
            if last.out_features != width:
                self.problem(
                    (*last.path, last.out_field),
                    "x + f(x) adds a residual branch's output to its input, so the"
                    f" branch must end at its input's width, {width}; got"
                    f" {last.out_features} from its last layer: end the branch at"
                    f" width {width}, or add a shortcut that projects {width} →"
                    f" {last.out_features}",
                    value=last.out_features,
                    allowed=str(width),
                )
            return

        start = _end_layer(shortcut, first=True)
        end = _end_layer(shortcut, first=False)
        if start is not None and start.in_features != width:
            self.problem(
                (*start.path, start.in_field),
                "a shortcut reads the residual group's input, so its first layer"
                f" must take that width, {width} (the branch's first layer's in);"
                f" got {start.in_features}",
                value=start.in_features,
                allowed=str(width),
            )
        if end is not None and end.out_features != last.out_features:
            self.problem(
                (*end.path, end.out_field),
                "a shortcut's output is added to the branch's, so its last layer"
                f" must give the branch's output width, {last.out_features}; got"
                f" {end.out_features}",
                value=end.out_features,
                allowed=str(last.out_features),
            )

    def plan_norm_layer(
        self,
        norm_layer: NormLayerSpec,
        path: Path,
        names: _Namespace,
        children: tuple[_Plan, ...],
    ) -> _LayerPlan | None:
        norm_path = (*path, "norm_layer")
        segment = self.claim_name(norm_layer.name, "norm", norm_path, names)
        size = _first_in_features(children)
        if segment is None or size is None:
            return None

        module = self.norm_module(
            norm_layer.kind, size, norm_layer.bias, Activation(), norm_path
        )
        return _LayerPlan(segment, norm_path, (module,)) if module else None

    def check_totals(self, plans: tuple[_Plan, ...], path: Path, what: str) -> int:
        """Refuse ``plans`` (all of ``what``) if their copies hold too much.

        The counts include the copies made by the repeats around them, so the
        figure in the refusal is what the whole spec would expand to at least.
        Returns the number of parameter tensors of one copy of ``plans``.
        """
        tensors = _total(plans, "tensors")
        parameters = _total(plans, "parameters")
        # A single layer holds a few tensors: the repeat around it is at fault.
        counts_tensors = what != "a layer"
        if counts_tensors and tensors * self.copies > self.limits.max_parameter_tensors:
            raise _over_limit(
                self.limits,
                "max_parameter_tensors",
                path,
                f"{what} that expands to {tensors * self.copies} parameter tensors"
                f"{self.breakdown(plans, 'tensors')}",
                "lower the repeat counts",
            )
        if parameters * self.copies > self.limits.max_parameters:
            raise _over_limit(
                self.limits,
                "max_parameters",
                path,
                f"{what} that holds {_count(parameters * self.copies)} parameters"
                f"{self.breakdown(plans, 'parameters')}",
                "use smaller sizes or fewer copies",
            )

        return tensors

    def breakdown(self, plans: tuple[_Plan, ...], count: str) -> str:
        """How a total is made, e.g. ``" (2 per copy × 10000 copies × ...)"``."""
        factors = []
        repeat = plans[0] if len(plans) == 1 else None
        if isinstance(repeat, _GroupPlan) and repeat.kind == "repeat":
            per_copy = _total(repeat.children, count)
            factors += [f"{_count(per_copy)} per copy", f"{repeat.count} copies"]
        if self.copies > 1:
            if not factors:
                factors.append(f"{_count(_total(plans, count))} in one copy")
            factors.append(f"{self.copies} copies made by the repeats around it")

        return f" ({' × '.join(factors)})" if factors else ""

    # --- one method per layer kind ---

    def activation(
        self, activation: Activation | None, path: Path, default: str = "identity"
    ) -> Activation | None:
        if activation is None:
            return make_activation(default)
        if not isinstance(activation, Activation):
            self.problem(
                (*path, "activation"),
                f"activation must be an initlab.core.types.Activation; got"
                f" {json_value(activation)}",
            )
            return None
        try:
            return make_activation(activation.name, dict(activation.params))
        except InvalidInput as error:
            self.problems.extend(error.prefixed(*path, "activation").problems)
            return None

    def two_d_layout(self, layout: str, path: Path) -> Layout | None:
        if layout not in LAYOUTS:
            self.problem(
                (*path, "layout"),
                f"layout must be 'out_in' (PyTorch) or 'in_out' (GPT-2 Conv1D,"
                f" Keras); got {json_value(layout)}",
                value=layout,
                allowed=", ".join(LAYOUTS),
            )
            return None

        return layout

    def no_layout(self, layout: str, path: Path, kind: str, reason: str) -> None:
        if layout != "out_in":
            self.problem(
                (*path, "layout"),
                f"layout {json_value(layout)} does not apply to a {kind}: {reason};"
                " remove layout",
                value=layout,
                allowed="out_in",
            )

    def plan_linear(self, layer: LinearSpec, path: Path) -> tuple[_Module, ...] | None:
        in_features = self.size(layer.in_features, (*path, "in"))
        out_features = self.size(layer.out_features, (*path, "out"))
        activation = self.activation(layer.activation, path)
        layout = self.two_d_layout(layer.layout, path)
        if None in (in_features, out_features, activation, layout):
            return None

        return (
            _Module.dense(
                None,
                in_features,
                out_features,
                has_bias=layer.bias,
                step=0,
                layout=layout,
                activation=activation,
            ),
        )

    def plan_conv(self, layer: ConvSpec, path: Path) -> tuple[_Module, ...] | None:
        in_features = self.size(layer.in_features, (*path, "in"))
        out_features = self.size(layer.out_features, (*path, "out"))
        groups = self.size(layer.groups, (*path, "groups"))
        kernel_size = self.kernel_size(layer.kind, layer.kernel_size, path)
        activation = self.activation(layer.activation, path)
        self.no_layout(
            layer.layout,
            path,
            layer.kind,
            f"its weight has {_spatial_dims(layer.kind) + 2} dims and every"
            " framework's 2-D layout flag is for dense weights",
        )
        if None in (in_features, out_features, groups, kernel_size, activation):
            return None

        if in_features % groups or out_features % groups:
            self.problem(
                (*path, "groups"),
                f"groups = {groups} must divide both in ({in_features}) and out"
                f" ({out_features}); choose groups among the common divisors of"
                " the two, or change in/out",
                value=layer.groups,
                allowed="a common divisor of in and out",
            )
            return None

        return (
            _Module(
                None,
                layer.kind,
                conv_weight_shape(
                    layer.kind, in_features, out_features, kernel_size, groups
                ),
                layer.bias,
                in_features,
                out_features,
                step=0,
                kernel_size=kernel_size,
                groups=groups,
                activation=activation,
            ),
        )

    def kernel_size(
        self, kind: str, kernel_size: Size | tuple[Size, ...], path: Path
    ) -> tuple[int, ...] | None:
        spatial = _spatial_dims(kind)
        if not isinstance(kernel_size, tuple | list):
            size = self.size(kernel_size, (*path, "kernel_size"))
            return None if size is None else (size,) * spatial

        if len(kernel_size) != spatial:
            self.problem(
                (*path, "kernel_size"),
                f"a {kind} takes {spatial} kernel size{'s' if spatial > 1 else ''};"
                f" got {len(kernel_size)} ({json_value(list(kernel_size))}); give one"
                f" size for every dim or a list of {spatial}",
                value=list(kernel_size),
                allowed=f"a size or a list of {spatial} sizes",
            )
            return None

        sizes = [
            self.size(size, (*path, "kernel_size", index))
            for index, size in enumerate(kernel_size)
        ]
        return None if None in sizes else tuple(sizes)

    def plan_embedding(
        self, layer: EmbeddingSpec, path: Path
    ) -> tuple[_Module, ...] | None:
        in_features = self.size(layer.in_features, (*path, "in"))
        out_features = self.size(layer.out_features, (*path, "out"))
        if layer.bias:
            self.problem(
                (*path, "bias"),
                "an embedding has no bias; remove bias or set it to false",
                value=layer.bias,
                allowed="false",
            )
        # An activation is allowed: nothing applies it inside the lookup, but it
        # is the nonlinearity whose gain an initializer of the table may use
        # (PyTorch's kaiming_normal_(embedding.weight, nonlinearity="relu")).
        activation = self.activation(layer.activation, path)
        self.no_layout(
            layer.layout,
            path,
            "embedding",
            "every framework stores the table (num_embeddings, embedding_dim)",
        )
        if None in (in_features, out_features, activation) or layer.bias:
            return None

        return (
            _Module(
                None,
                "embedding",
                embedding_weight_shape(in_features, out_features),
                False,
                in_features,
                out_features,
                step=0,
                activation=activation,
            ),
        )

    def plan_norm(self, layer: NormSpec, path: Path) -> tuple[_Module, ...] | None:
        size = self.size(layer.in_features, (*path, "in"))
        out_features = size
        if layer.out_features is not None:
            out_features = self.size(layer.out_features, (*path, "out"))
        if size is not None and out_features is not None and out_features != size:
            self.problem(
                (*path, "out"),
                f"a {layer.kind} keeps its size: out must equal in ({size}); got"
                f" {json_value(layer.out_features)}; omit out",
                value=layer.out_features,
                allowed=str(size),
            )
            return None
        activation = self.activation(layer.activation, path)
        self.no_layout(layer.layout, path, layer.kind, "its parameters are 1-D")
        if size is None or activation is None:
            return None

        module = self.norm_module(layer.kind, size, layer.bias, activation, path)
        return None if module is None else (module,)

    def norm_module(
        self,
        kind: str,
        size: int,
        bias: bool | None,
        activation: Activation,
        path: Path,
    ) -> _Module | None:
        if kind not in NORM_KINDS:
            self.problem(
                (*path, "kind"),
                f"a norm layer is one of {', '.join(NORM_KINDS)}; got"
                f" {json_value(kind)}",
                value=kind,
                allowed=", ".join(NORM_KINDS),
            )
            return None
        if bias is not None and not isinstance(bias, bool):
            self.problem(
                (*path, "bias"), f"bias must be true or false; got {json_value(bias)}"
            )
            return None
        if kind == "rms_norm" and bias:
            self.problem(
                (*path, "bias"),
                "an rms_norm has a weight only; remove bias or set it to false",
                value=bias,
                allowed="false",
            )
            return None

        has_bias = kind != "rms_norm" if bias is None else bias
        return _Module(
            None,
            kind,
            (size,),
            has_bias,
            size,
            size,
            step=None,
            activation=activation,
        )

    def plan_attention(
        self, layer: AttentionSpec, path: Path
    ) -> tuple[_Module, ...] | None:
        d_model = self.size(layer.d_model, (*path, "d_model"))
        n_heads = self.size(layer.n_heads, (*path, "n_heads"))
        n_kv_heads = n_heads
        if layer.n_kv_heads is not None:
            n_kv_heads = self.size(layer.n_kv_heads, (*path, "n_kv_heads"))
        d_head = None
        if layer.d_head is not None:
            d_head = self.size(layer.d_head, (*path, "d_head"))
        layout = self.two_d_layout(layer.layout, path)
        if None in (d_model, n_heads, n_kv_heads, layout):
            return None

        if layer.d_head is None:
            if d_model % n_heads:
                self.problem(
                    (*path, "n_heads"),
                    f"d_model ({d_model}) is not divisible by n_heads ({n_heads}),"
                    " so d_head cannot default to d_model / n_heads; give d_head or"
                    f" choose n_heads among the divisors of {d_model}",
                    value=layer.n_heads,
                    allowed=f"a divisor of {d_model}",
                )
                return None
            d_head = d_model // n_heads
        if d_head is None:
            return None
        if n_heads % n_kv_heads:
            self.problem(
                (*path, "n_kv_heads"),
                f"n_heads ({n_heads}) is not divisible by n_kv_heads ({n_kv_heads});"
                " grouped-query attention shares each key/value head among an equal"
                f" number of query heads, so choose a divisor of {n_heads}",
                value=layer.n_kv_heads,
                allowed=f"a divisor of {n_heads}",
            )
            return None

        sizes = attention_projection_sizes(
            d_model, n_heads, n_kv_heads, d_head, layer.fused_qkv
        )
        return tuple(
            _Module.dense(
                suffix,
                in_features,
                out_features,
                has_bias=layer.bias,
                step=1 if suffix == "o" else 0,
                layout=layout,
                origin=f"attention.{suffix}",
                heads=(n_heads, n_kv_heads, d_head),
            )
            for suffix, (in_features, out_features) in sizes.items()
        )

    def plan_gated_mlp(
        self, layer: GatedMlpSpec, path: Path
    ) -> tuple[_Module, ...] | None:
        d_model = self.size(layer.d_model, (*path, "d_model"))
        d_ff = self.size(layer.d_ff, (*path, "d_ff"))
        activation = self.activation(layer.activation, path, default="silu")
        layout = self.two_d_layout(layer.layout, path)
        if None in (d_model, d_ff, activation, layout):
            return None

        options = {"has_bias": layer.bias, "layout": layout}
        return (
            _Module.dense(
                "gate",
                d_model,
                d_ff,
                step=0,
                activation=activation,
                origin="gated_mlp.gate",
                **options,
            ),
            _Module.dense(
                "up", d_model, d_ff, step=0, origin="gated_mlp.up", **options
            ),
            _Module.dense(
                "down", d_ff, d_model, step=1, origin="gated_mlp.down", **options
            ),
        )


def _count(number: int) -> str:
    """A count for a message: exact up to 10^15, then to three digits (4.61e+46)."""
    return str(number) if number < 10**15 else f"{number:.3g}"


def _end_layer(plans: tuple[_Plan, ...], first: bool) -> _LayerPlan | None:
    """The first or last layer of ``plans`` on the signal path, looking into groups.

    A nested residual group ends where its shortcut does, or else where its
    branch does (its output has its input's width).
    """
    if not plans:
        return None
    plan = plans[0] if first else plans[-1]
    if isinstance(plan, _LayerPlan):
        return plan
    if plan.kind == "residual" and plan.shortcut and not first:
        return _end_layer(plan.shortcut, first)

    return _end_layer(plan.children, first)


def _total(plans: tuple[_Plan, ...], count: str) -> int:
    """The sum of ``count`` (tensors, branches or steps) over ``plans``."""
    return sum(getattr(plan, count) for plan in plans)


def _first_in_features(plans: tuple[_Plan, ...]) -> int | None:
    """The in-size of the first layer among ``plans``, looking into groups."""
    if not plans:
        return None
    first = plans[0]
    if isinstance(first, _LayerPlan):
        return first.in_features

    return _first_in_features(first.children)


def _spatial_dims(kind: str) -> int:
    return int(kind[-2])


def _render(path: Path) -> str:
    return "/".join(str(part) for part in path)


def _unknown_dim_message(name: str, dims: Mapping[str, int]) -> str:
    known = ", ".join(dims) if dims else "none (the spec's dims is empty)"
    message = f"unknown dim {json_value(name)}; known dims: {known}"
    close = closest(name, dims)
    if close:
        return f"{message}; did you mean {json_value(close)}?"

    return f"{message}; add {json_value(name)} to dims or write the size as an integer"


# --- Shapes: one function per layout rule ------------------------------------


def linear_weight_shape(in_features: int, out_features: int) -> tuple[int, int]:
    """Weight shape of a dense layer in PyTorch's layout: (out, in).

    PyTorch 2.13 ``torch.nn.Linear``: ``weight`` has shape
    (out_features, in_features). GPT-2's Conv1D and Keras Dense store the
    transpose (in, out); that is reported as ``layout``, never as the shape.
    """
    return (out_features, in_features)


def conv_weight_shape(
    kind: str,
    in_channels: int,
    out_channels: int,
    kernel_size: tuple[int, ...],
    groups: int,
) -> tuple[int, ...]:
    """Weight shape of a convolution in PyTorch's layout.

    PyTorch 2.13 ``torch.nn.ConvNd``: (out, in/groups, *kernel_size);
    ``torch.nn.ConvTransposeNd``: (in, out/groups, *kernel_size).
    """
    if kind.startswith("conv_transpose"):
        return (in_channels, out_channels // groups, *kernel_size)

    return (out_channels, in_channels // groups, *kernel_size)


def embedding_weight_shape(num_embeddings: int, embedding_dim: int) -> tuple[int, int]:
    """Weight shape of an embedding table: (num_embeddings, embedding_dim).

    PyTorch 2.13 ``torch.nn.Embedding``; Keras 3 ``Embedding`` and Flax
    ``nn.Embed`` store the same (input_dim, output_dim) table.
    """
    return (num_embeddings, embedding_dim)


def attention_projection_sizes(
    d_model: int, n_heads: int, n_kv_heads: int, d_head: int, fused_qkv: bool
) -> dict[str, tuple[int, int]]:
    """(in, out) of each attention projection, in registration order.

    Multi-head attention (Vaswani et al. 2017, "Attention Is All You Need",
    §3.2.2): q: d_model → n_heads·d_head, o: n_heads·d_head → d_model; with
    grouped-query attention (Ainslie et al. 2023, "GQA", §2) k and v project
    to n_kv_heads·d_head. Fused (GPT-2's c_attn): one projection
    d_model → (n_heads + 2·n_kv_heads)·d_head.
    """
    query, key_value = n_heads * d_head, n_kv_heads * d_head
    if fused_qkv:
        projections = {"qkv": (d_model, query + 2 * key_value)}
    else:
        projections = {
            "q": (d_model, query),
            "k": (d_model, key_value),
            "v": (d_model, key_value),
        }

    return projections | {"o": (query, d_model)}


# --- Emitting: walk the checked plan and write out the parameter tensors -----


@dataclass
class _Branch:
    """A residual branch being written out: where the next weight layer goes."""

    index: int
    depth: int
    norm: NormPlacement
    position: int = 0


@dataclass
class _Tie:
    parameter: int
    target: str
    path: Path


class _Emitter:
    def __init__(self, plan: _SpecPlan) -> None:
        self.plan = plan
        self.parameters: list[ParameterTensor] = []
        self.weights: dict[str, int] = {}
        self.ties: list[_Tie] = []
        self.next_branch = 0
        self.last_weight_layer: tuple[list[int], bool, str] | None = None
        self.notes: dict[str, None] = {}

    def emit(self) -> ExpandedSpec:
        structure: list[StructureNode] = []
        for item in self.plan.items:
            structure.extend(self.emit_plan(item, (), None, inside_residual=False))
        self.resolve_ties()
        self.mark_readout()

        counted = (p.numel for p in self.parameters if p.tied_to is None)
        return ExpandedSpec(
            dims=dict(self.plan.dims),
            parameters=tuple(self.parameters),
            parameter_count=sum(counted),
            residual_branch_count=self.plan.branches,
            notes=tuple(self.notes),
            structure=tuple(structure),
        )

    def emit_plan(
        self,
        plan: _Plan,
        prefix: tuple[str, ...],
        branch: _Branch | None,
        inside_residual: bool,
    ) -> list[StructureNode]:
        """Write out ``plan``'s tensors; returns its nodes of the layer tree."""
        if isinstance(plan, _LayerPlan):
            return [self.emit_layer(plan, prefix, branch, inside_residual)]

        inner = prefix if plan.segment is None else (*prefix, plan.segment)
        nodes: list[StructureNode] = []
        if plan.kind == "repeat":
            for copy in range(plan.count):
                for child in plan.children:
                    nodes.extend(
                        self.emit_plan(
                            child, (*inner, str(copy)), branch, inside_residual
                        )
                    )
        elif plan.kind == "sequential":
            for child in plan.children:
                nodes.extend(self.emit_plan(child, inner, branch, inside_residual))
        else:
            nodes.append(self.emit_residual(plan, inner))

        return nodes

    def emit_residual(self, plan: _GroupPlan, prefix: tuple[str, ...]) -> ResidualNode:
        branch = _Branch(self.next_branch, plan.branch_depth, plan.norm)
        self.next_branch += 1

        norm_layer = None
        if plan.norm == "pre" and plan.norm_module is not None:
            norm_layer = self.emit_layer(
                plan.norm_module, prefix, branch, inside_residual=True
            )
        children: list[StructureNode] = []
        for child in plan.children:
            children.extend(self.emit_plan(child, prefix, branch, inside_residual=True))
        if plan.shortcut:
            self.note(
                "Shortcut layers (such as a ResNet downsample) are not on the residual"
                " branch: they carry no residual position."
            )
        shortcut: list[StructureNode] = []
        for child in plan.shortcut:
            shortcut.extend(self.emit_plan(child, prefix, None, inside_residual=True))
        if plan.norm == "post" and plan.norm_module is not None:
            self.note(
                "The norm of a post-norm residual group sits on the stream after the"
                " addition: it carries no residual position."
            )
            norm_layer = self.emit_layer(
                plan.norm_module, prefix, None, inside_residual=True
            )

        return ResidualNode(
            ".".join(prefix),
            plan.path,
            plan.norm,
            norm_layer,
            tuple(children),
            tuple(shortcut),
        )

    def emit_layer(
        self,
        plan: _LayerPlan,
        prefix: tuple[str, ...],
        branch: _Branch | None,
        inside_residual: bool,
    ) -> LayerNode:
        layer_name = ".".join((*prefix, plan.segment))
        parameters: list[int] = []
        for module in plan.modules:
            module_name = layer_name
            if module.suffix is not None:
                module_name = f"{layer_name}.{module.suffix}"
            indices = self.emit_module(module, module_name, branch)
            parameters.extend(indices)
            if module.step is not None:
                self.last_weight_layer = (indices, inside_residual, module_name)
            if module.origin is not None and branch is not None:
                self.note(
                    "Branch depth counts an attention block as two weight layers"
                    " (q, k and v side by side, then o) and a gated MLP as two"
                    " (gate and up side by side, then down)."
                )

        if plan.tied_to is not None:
            self.ties.append(_Tie(self.weights[layer_name], plan.tied_to, plan.path))
        if branch is not None:
            branch.position += plan.steps

        first = plan.modules[0]
        kind = first.kind if first.origin is None else first.origin.split(".")[0]
        return LayerNode(layer_name, kind, plan.path, tuple(parameters), first.heads)

    def emit_module(
        self, module: _Module, module_name: str, branch: _Branch | None
    ) -> list[int]:
        """Write out a module's weight and bias; returns their indices."""
        common = dict(
            layer=module_name,
            kind=module.kind,
            in_features=module.in_features,
            out_features=module.out_features,
            kernel_size=module.kernel_size,
            groups=module.groups,
            layout=module.layout,
            activation=module.activation,
            residual=self.residual_position(module, branch),
            origin=module.origin,
        )
        indices = [len(self.parameters)]
        self.weights[module_name] = indices[0]
        self.parameters.append(
            ParameterTensor(
                name=f"{module_name}.weight",
                tensor="weight",
                shape=module.weight_shape,
                **common,
            )
        )
        if module.has_bias:
            indices.append(len(self.parameters))
            self.parameters.append(
                ParameterTensor(
                    name=f"{module_name}.bias",
                    tensor="bias",
                    shape=(module.out_features,),
                    **common,
                )
            )
        if module.kind == "batch_norm":
            self.note(
                "Batch-norm running statistics are buffers, not parameters:"
                " they are not listed."
            )

        return indices

    def residual_position(
        self, module: _Module, branch: _Branch | None
    ) -> ResidualPosition | None:
        if branch is None:
            return None

        if module.step is None:
            index = branch.position
        else:
            index = branch.position + module.step
        return ResidualPosition(
            branch_index=branch.index,
            branch_count=self.plan.branches,
            weight_layer_index=index,
            branch_depth=branch.depth,
            is_branch_output=module.step is not None and index == branch.depth - 1,
            norm=branch.norm,
        )

    def resolve_ties(self) -> None:
        problems: dict[Path, FieldProblem] = {}
        ties_by_layer = {
            self.parameters[tie.parameter].layer: tie.target for tie in self.ties
        }
        noted: set[Path] = set()
        for tie in self.ties:
            source = self.parameters[tie.parameter]
            target = self.tie_root(tie, ties_by_layer, problems)
            if target is None:
                continue
            shared = self.parameters[target]
            if shared.shape != source.shape:
                problems.setdefault(
                    tie.path,
                    FieldProblem(
                        (*tie.path, "tied_to"),
                        f"{source.layer} has weight shape {list(source.shape)} but"
                        f" {json_value(tie.target)} has {list(shared.shape)} (PyTorch"
                        " layout);"
                        " tied weights must have equal shapes, so check in and out"
                        " (an LM head tied to an embedding has in = embedding out"
                        " and out = embedding in)",
                        value=tie.target,
                    ),
                )
                continue

            self.parameters[tie.parameter] = dataclasses.replace(
                source, tied_to=shared.name
            )
            if tie.path not in noted:
                noted.add(tie.path)
                self.note(
                    f"{source.name} shares {shared.name}: the tensor is counted once"
                    " in parameter_count."
                )

        if problems:
            raise InvalidInput(list(problems.values()))

    def tie_root(
        self,
        tie: _Tie,
        ties_by_layer: dict[str, str],
        problems: dict[Path, FieldProblem],
    ) -> int | None:
        """Follow ``tied_to`` to the tensor that is stored; ``None`` on a problem."""
        source = self.parameters[tie.parameter].layer
        seen = {source}
        target = tie.target
        while target in ties_by_layer and target not in seen:
            seen.add(target)
            target = ties_by_layer[target]

        if target not in self.weights:
            message = _unknown_layer_message(target, self.weights)
        elif target in seen:
            message = (
                f"tied_to {json_value(tie.target)} leads back to {json_value(source)};"
                " a weight cannot be tied to itself, so tie every layer to the one"
                " that stores the weight"
            )
        else:
            return self.weights[target]

        problems.setdefault(
            tie.path, FieldProblem((*tie.path, "tied_to"), message, value=tie.target)
        )
        return None

    def mark_readout(self) -> None:
        if self.last_weight_layer is None:
            return

        indices, inside_residual, layer_name = self.last_weight_layer
        kind = self.parameters[indices[0]].kind
        if inside_residual or kind == "embedding":
            where = "inside a residual group" if inside_residual else "an embedding"
            self.note(
                f"No readout layer: the last weight layer, {layer_name}, is {where}."
            )
            return
        for index in indices:
            self.parameters[index] = dataclasses.replace(
                self.parameters[index], is_readout=True
            )

    def note(self, text: str) -> None:
        self.notes.setdefault(text, None)


def _unknown_layer_message(name: str, layers: Mapping[str, int]) -> str:
    message = f"tied_to {json_value(name)} names no layer of this spec"
    close = closest(name, layers)
    if close:
        return f"{message}; did you mean {json_value(close)}?"

    return (
        f"{message}; give the dotted name of a layer with a weight, such as"
        f" {json_value(next(iter(layers)))}"
    )
