"""Applying an initialization scheme to every parameter tensor of a spec.

:func:`recommend` takes an expanded spec, a scheme and ordered overrides and
returns one :class:`~initlab.core.types.Recommendation` per tensor, in forward
order. The policies a careful user needs to know are stated here and repeated
in the result's notes:

- Biases are 0 under every weight scheme (as Keras, GPT-2 and most training
  code do); ``torch_default`` keeps PyTorch's U(±1/√fan_in) and ``mean_field``
  draws N(0, σ_b²).
- Norm layers start at weight 1 and bias 0 under every scheme. Only an override
  that matches nothing but 1-D tensors (biases and norm parameters) reaches
  them with its value scheme (constant, normal, uniform, trunc_normal); the
  same override with a scheme that needs a matrix is refused, as PyTorch's
  ``torch.nn.init`` refuses a 1-D tensor.
- Overrides are fnmatch globs over parameter names and layer names
  (``h.*.attn.o`` covers its weight and bias), applied in order; the later one
  wins. A pattern that matches nothing is an error.
- A tensor that shares another's storage (``tied_to``) is listed with the
  values of the tensor it shares: it is initialized once.
- ``Recommendation.std`` is the std of the values drawn (uniform: bound/√3;
  truncated: after the cut; orthogonal: the element RMS; constant: 0).

``auto`` follows He et al. 2015 §2.2 literally: a layer's gain undoes the
nonlinearity applied to the layer's *input*, so a ReLU layer's √2 appears on
the layer that reads the ReLU's output, and the first layer (reading raw,
unit-scale data) gets gain 1. In the spec an activation belongs to the layer
it follows and is reached through any norm in between (a conv's ReLU after its
batch norm, a ResNet branch's last ReLU after the addition), so the activation
a layer reads is that of the nearest weight layer before it, norms passing
through; q, k and v read the attention block's input, gate and up the gated
MLP's input, and down reads φ(gate)·up, whose second moment is E[φ(z)²].
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from initlab.core.activations import (
    gaussian_moments,
    make_activation,
    pytorch_gain,
    second_moment_gain,
)
from initlab.core.errors import (
    FieldProblem,
    InvalidInput,
    LimitExceeded,
    Path,
    json_value,
)
from initlab.core.fans import (
    Convention,
    fan_notes,
    is_norm,
    library_fans,
    signal_fans,
    stored_shape,
)
from initlab.core.initializers import (
    KERAS_TRUNCATION_SAMPLER_STDS,
    TORCH_DEFAULT_NEGATIVE_SLOPE,
    deepnorm_alpha,
    deepnorm_beta,
    depth_scaled_std,
    fixup_branch_scale,
    kaiming_std,
    lecun_std,
    mean_field_bias_std,
    mean_field_weight_std,
    orthogonal_element_rms,
    small_init_std,
    torch_default_bias_bound,
    truncated_normal_mean,
    truncated_normal_std,
    uniform_bound,
    uniform_std,
    variance_scaling_sampler_std,
    variance_scaling_uniform_limit,
    variance_scaling_variance,
    wang_init_std,
    xavier_std,
)
from initlab.core.schemes import (
    PYTORCH_LINEAR_NAMES,
    SCHEMES,
    VALUE_SCHEMES,
    resolve_scheme,
)
from initlab.core.spec import SpecLimits
from initlab.core.types import (
    Activation,
    Distribution,
    ExpandedSpec,
    ParameterTensor,
    Recommendation,
    SchemeChoice,
    Truncation,
)

IDENTITY = Activation()
_ATTENTION_INPUTS = frozenset(
    {"attention.q", "attention.k", "attention.v", "attention.qkv"}
)
_GATED_INPUTS = frozenset({"gated_mlp.gate", "gated_mlp.up"})
_RECTIFIERS = frozenset({"relu", "leaky_relu"})
_QUADRATURE_NAMES = {
    "closed_form": "closed form",
    "gauss_hermite": "Gauss–Hermite",
    "adaptive_gauss_legendre": "adaptive Gauss–Legendre",
}


@dataclass(frozen=True)
class OverrideResult:
    """One override as applied: its pattern, resolved scheme and the tensors it set.

    ``matched`` lists exactly the tensors whose recommendation comes from this
    override; ``notes`` say which other tensors the pattern matches and why it
    left them alone (a bias under a weight scheme, a norm parameter, a tied
    tensor, a later override).
    """

    pattern: str
    scheme: SchemeChoice
    matched: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecommendationResult:
    """What :func:`recommend` returns; ``scheme`` and overrides are resolved."""

    scheme: SchemeChoice
    overrides: tuple[OverrideResult, ...]
    parameters: tuple[Recommendation, ...]
    notes: tuple[str, ...] = ()


def recommend(
    expanded: ExpandedSpec,
    scheme: SchemeChoice,
    overrides: Sequence[tuple[str, SchemeChoice]] | Mapping[str, SchemeChoice] = (),
    limits: SpecLimits | None = None,
) -> RecommendationResult:
    """Recommend how to initialize every parameter tensor of ``expanded``.

    ``scheme`` applies to every tensor no override matches; ``overrides`` are
    ``(glob, scheme)`` pairs (or a mapping, in its order) applied in order, the
    later winning where two match the same tensor. Raises
    :class:`LimitExceeded` before any matching when the overrides are over
    ``limits`` (default :class:`SpecLimits`; see :func:`check_override_limits`),
    and :class:`InvalidInput`
    with paths relative to the request body: ``("scheme", ...)`` for the
    scheme, ``("overrides", pattern, ...)`` for an override (unknown scheme or
    option, bad value, a pattern that matches nothing, a matrix scheme aimed
    only at 1-D tensors, options that make a number overflow).
    """
    if isinstance(overrides, Mapping):
        overrides = list(overrides.items())
    check_override_limits(
        len(overrides), len(expanded.parameters), limits or SpecLimits()
    )
    top = resolve_scheme(scheme, ("scheme",))
    resolved = [
        (pattern, resolve_scheme(choice, ("overrides", pattern)))
        for pattern, choice in overrides
    ]
    network = _Network(expanded)
    assignments, matches = _assign(network.parameters, top, resolved)

    rows: list[Recommendation | None] = [None] * len(network.parameters)
    for index, p in enumerate(network.parameters):
        if network.source_of(p) is None:
            row = _recommend_tensor(p, assignments[index], network)
            _check_finite(row, assignments[index])
            rows[index] = row
    by_name = {row.name: row for row in rows if row is not None}
    for index, p in enumerate(network.parameters):
        if rows[index] is None:
            rows[index] = _shared_row(p, by_name, assignments[index], network)

    parameters = tuple(row for row in rows if row is not None)
    override_results = _override_results(resolved, matches, assignments, network)
    notes = _result_notes(top, resolved, network)
    return RecommendationResult(top, override_results, parameters, notes)


def scheme_problems_at(error: InvalidInput, field: str) -> InvalidInput:
    """``error`` of :func:`recommend` with its ``("scheme", ...)`` paths moved to
    ``(field, ...)``: for a request whose one scheme has another name (the µP
    endpoints' ``init_scheme``)."""
    moved = [
        FieldProblem((field, *problem.path[1:]), *dataclasses.astuple(problem)[1:])
        if problem.path[:1] == ("scheme",)
        else problem
        for problem in error.problems
    ]
    if isinstance(error, LimitExceeded):
        return LimitExceeded(
            moved, error.title, limit=error.limit, limit_value=error.limit_value
        )

    return InvalidInput(moved, error.title)


def check_override_limits(patterns: int, tensors: int, limits: SpecLimits) -> None:
    """Refuse ``patterns`` override globs over ``tensors`` tensors, if over a limit.

    Matching costs one glob match per pattern and tensor, so the product is
    bounded (``max_override_matches``) as well as the number of patterns
    (``max_overrides``). Raises :class:`LimitExceeded` at ``("overrides",)``.
    Called by :func:`recommend`; the web layer also calls it with the number
    of patterns alone (``tensors=0``) before it resolves their schemes.
    """
    if patterns > limits.max_overrides:
        raise _override_limit(
            limits,
            "max_overrides",
            f"{patterns} override patterns",
            "merge patterns (one glob such as h.*.attn.o covers every block)",
        )
    if patterns * tensors > limits.max_override_matches:
        raise _override_limit(
            limits,
            "max_override_matches",
            f"{patterns} override patterns × {tensors} parameter tensors ="
            f" {patterns * tensors} matches",
            "give fewer patterns (one glob such as h.*.attn.o covers every block)"
            " or a smaller spec",
        )


def _override_limit(
    limits: SpecLimits, limit: str, what: str, fix: str
) -> LimitExceeded:
    limit_value = getattr(limits, limit)
    return LimitExceeded(
        [
            FieldProblem(
                ("overrides",),
                f"over the limit {limit} = {limit_value}: got {what}; {fix}, or"
                f" raise {limit}",
            )
        ],
        limit=limit,
        limit_value=limit_value,
    )


# --- Which scheme each tensor gets -------------------------------------------


@dataclass(frozen=True)
class _Assignment:
    """The scheme for one tensor, and the override that chose it (if any).

    ``only_one_dimensional`` is true when that override matched nothing but
    biases and norm parameters: only then does a value scheme reach them.
    """

    scheme: SchemeChoice
    pattern: str | None = None
    only_one_dimensional: bool = False

    @property
    def path(self) -> Path:
        if self.pattern is None:
            return ("scheme",)
        return ("overrides", self.pattern)


def _assign(
    parameters: tuple[ParameterTensor, ...],
    top: SchemeChoice,
    overrides: list[tuple[str, SchemeChoice]],
) -> tuple[list[_Assignment], list[list[int]]]:
    """Each tensor's scheme, and the indices of the tensors each pattern matches."""
    assignments = [_Assignment(top)] * len(parameters)
    matches: list[list[int]] = []
    layers = list(dict.fromkeys(p.layer for p in parameters))
    for pattern, choice in overrides:
        path = ("overrides", pattern)
        if not isinstance(pattern, str) or not pattern:
            raise InvalidInput.at(
                path,
                "an override pattern must be a non-empty glob; got the pattern"
                f" {json_value(pattern)}",
                value=pattern,
                allowed="a glob over parameter or layer names, such as h.*.attn.o",
            )

        # One compiled expression per pattern; a layer name is matched once
        # for all its tensors.
        matcher = re.compile(fnmatch.translate(pattern))
        matched_layers = {layer for layer in layers if matcher.match(layer)}
        matched = [
            index
            for index, p in enumerate(parameters)
            if p.layer in matched_layers or matcher.match(p.name)
        ]
        if not matched:
            raise InvalidInput.at(
                path,
                f"override pattern {json_value(pattern)} matches no parameter or"
                " layer name; patterns are globs over names like"
                " h.0.attn.o.weight or layers like h.0.attn.o (* matches across"
                " dots)",
                value=pattern,
                allowed="a glob that matches at least one parameter or layer name",
            )

        tensors = [parameters[index] for index in matched]
        only_one_dimensional = all(len(p.shape) == 1 for p in tensors)
        if only_one_dimensional:
            _check_one_dimensional_target(choice, tensors, path)
        for index in matched:
            assignments[index] = _Assignment(choice, pattern, only_one_dimensional)
        matches.append(matched)

    return assignments, matches


def _left_alone(
    p: ParameterTensor, assignment: _Assignment, network: _Network
) -> str | None:
    """Why the scheme assigned to ``p`` does not set it, or ``None`` if it does."""
    scheme = assignment.scheme.name
    chosen_for_vectors = assignment.only_one_dimensional and scheme in VALUE_SCHEMES
    if network.source_of(p) is not None:
        return "tied"
    if is_norm(p) and not chosen_for_vectors:
        return "norm"
    has_bias_rule = scheme in ("torch_default", "mean_field")
    if p.tensor == "bias" and not chosen_for_vectors and not has_bias_rule:
        return "bias"

    return None


_LEFT_ALONE_REASONS = {
    "bias": "biases stay 0 under a weight scheme (aim a value scheme at the biases"
    ' alone, such as "*.bias", to change them)',
    "norm": "norm parameters keep weight 1 and bias 0 (aim a value scheme at them"
    " alone to change them)",
    "tied": "they share the storage of another tensor and take its values",
}


def _override_results(
    overrides: list[tuple[str, SchemeChoice]],
    matches: list[list[int]],
    assignments: list[_Assignment],
    network: _Network,
) -> tuple[OverrideResult, ...]:
    """Each override with the tensors it set and notes on those it left alone."""
    results = []
    for (pattern, choice), matched in zip(overrides, matches, strict=True):
        set_here: list[str] = []
        left: dict[str, list[str]] = {}
        for index in matched:
            p = network.parameters[index]
            assignment = assignments[index]
            if assignment.pattern != pattern:
                later = f"later:{assignment.pattern}"
                left.setdefault(later, []).append(p.name)
                continue
            reason = _left_alone(p, assignment, network)
            if reason is None:
                set_here.append(p.name)
            else:
                left.setdefault(reason, []).append(p.name)

        notes = []
        for reason, names in left.items():
            tensors = f"{len(names)} matched tensor{'s' if len(names) > 1 else ''}"
            if reason.startswith("later:"):
                later = json_value(reason.removeprefix("later:"))
                notes.append(
                    f"Leaves {tensors} to the later override {later}: {_some(names)}."
                )
            else:
                notes.append(
                    f"Leaves {tensors} to the policy ({_some(names)}):"
                    f" {_LEFT_ALONE_REASONS[reason]}."
                )
        results.append(OverrideResult(pattern, choice, tuple(set_here), tuple(notes)))

    return tuple(results)


def _some(names: list[str], shown: int = 3) -> str:
    """Up to ``shown`` names, then how many more."""
    listed = ", ".join(names[:shown])
    more = len(names) - shown
    return f"{listed} and {more} more" if more > 0 else listed


def _check_one_dimensional_target(
    choice: SchemeChoice, tensors: list[ParameterTensor], path: Path
) -> None:
    """Refuse a matrix scheme aimed only at 1-D tensors, as torch.nn.init does."""
    if choice.name in VALUE_SCHEMES:
        return
    scheme = SCHEMES[choice.name]
    if scheme.bias_rule:
        norms = [p for p in tensors if is_norm(p)]
        if not norms or choice.name == "torch_default":
            return

    names = ", ".join(p.name for p in tensors[:4])
    more = f" and {len(tensors) - 4} more" if len(tensors) > 4 else ""
    raise InvalidInput.at(
        path,
        f"{choice.name} needs tensors with at least 2 dimensions (torch.nn.init "
        f"raises for fewer), but this pattern matches only 1-D tensors "
        f"({names}{more}); use constant, normal, uniform or trunc_normal for them",
        value=choice.name,
        allowed="constant, normal, uniform, trunc_normal",
    )


# --- What the network looks like around each tensor ---------------------------


class _Network:
    """Facts about the expanded spec that the rules of several schemes need."""

    def __init__(self, expanded: ExpandedSpec) -> None:
        self.parameters = expanded.parameters
        self.branch_count = expanded.residual_branch_count
        self.by_name = {p.name: p for p in self.parameters}
        self.input_activation = _input_activations(self.parameters)
        self.stream_width = _stream_widths(self.parameters)
        self.multihead = _multihead_compatible(self.parameters)
        self.branches_ending_in_norm = {
            p.residual.branch_index
            for p in self.parameters
            if is_norm(p)
            and p.residual is not None
            and p.residual.weight_layer_index >= p.residual.branch_depth
        }
        self.partners: dict[str, ParameterTensor] = {}
        for p in self.parameters:
            source = self.source_of(p)
            if source is not None:
                self.partners.setdefault(source.name, p)
        self.has_tied_embedding = any(
            self.by_name[name].kind == "embedding" and partner.kind != "embedding"
            for name, partner in self.partners.items()
        )

    def source_of(self, p: ParameterTensor) -> ParameterTensor | None:
        """The tensor whose storage ``p`` shares, following chains; else None."""
        seen = {p.name}
        current = p
        while current.tied_to is not None:
            target = self._tie_target(current)
            if target.name in seen:
                raise InvalidInput.at(
                    ("spec",),
                    f"tied_to of {p.name} leads back to itself",
                    value=p.tied_to,
                )
            seen.add(target.name)
            current = target

        return None if current is p else current

    def _tie_target(self, p: ParameterTensor) -> ParameterTensor:
        for candidate in (p.tied_to, f"{p.tied_to}.{p.tensor}"):
            if candidate in self.by_name:
                return self.by_name[candidate]
        raise InvalidInput.at(
            ("spec",),
            f"{p.name} is tied_to {json_value(p.tied_to)}, which names no tensor of"
            " the spec",
            value=p.tied_to,
        )

    def n_layers(self, given: float | None, assignment: _Assignment) -> float:
        """Transformer blocks: the option, else half the residual branch count."""
        if given is not None:
            return given
        if self.branch_count == 0:
            raise InvalidInput.at(
                (*assignment.path, "n_layers"),
                f"{assignment.scheme.name} needs the number of layers, and this "
                "spec has no residual groups to count; give n_layers",
                value=None,
                allowed="a number > 0",
            )

        return self.branch_count / 2

    def width(self, p: ParameterTensor) -> int:
        """The model width d around ``p``: its residual stream's, else its input's."""
        if p.residual is not None and p.residual.branch_index in self.stream_width:
            return self.stream_width[p.residual.branch_index]
        if p.kind == "embedding":
            return p.out_features

        return p.in_features


def _input_activations(
    parameters: tuple[ParameterTensor, ...],
) -> dict[str, Activation]:
    """The activation each weight layer reads, by layer name (see module docs)."""
    current = IDENTITY
    block_inputs: dict[str, Activation] = {}
    gates: dict[str, Activation] = {}
    result: dict[str, Activation] = {}
    for p in parameters:
        if p.tensor != "weight" or p.layer in result:
            continue
        if is_norm(p):
            if p.activation.name != "identity":
                current = p.activation
            continue

        block = p.layer.rsplit(".", 1)[0]
        if p.origin in _ATTENTION_INPUTS or p.origin in _GATED_INPUTS:
            result[p.layer] = block_inputs.setdefault(block, current)
            if p.origin == "gated_mlp.gate":
                gates[block] = p.activation
            if p.origin in ("attention.v", "attention.qkv"):
                current = p.activation
            continue
        if p.origin == "gated_mlp.down":
            result[p.layer] = gates.get(block, current)
        else:
            result[p.layer] = current
        current = p.activation

    return result


def _stream_widths(parameters: tuple[ParameterTensor, ...]) -> dict[int, int]:
    """Each residual branch's stream width: its output layer's out size."""
    widths: dict[int, int] = {}
    for p in parameters:
        if p.residual is None or p.tensor != "weight" or is_norm(p):
            continue
        if p.residual.is_branch_output:
            widths[p.residual.branch_index] = p.out_features
        elif p.residual.weight_layer_index == 0:
            widths.setdefault(p.residual.branch_index, p.in_features)

    return widths


def _multihead_compatible(parameters: tuple[ParameterTensor, ...]) -> dict[str, bool]:
    """Attention blocks nn.MultiheadAttention could hold: q, k, v all E → E."""
    compatible: dict[str, bool] = {}
    for p in parameters:
        if p.tensor != "weight" or p.origin not in _ATTENTION_INPUTS:
            continue
        block = p.layer.rsplit(".", 1)[0]
        copies = 3 if p.origin == "attention.qkv" else 1
        fits = p.out_features == copies * p.in_features
        compatible[block] = compatible.get(block, True) and fits

    return compatible


# --- One tensor ---------------------------------------------------------------


def _check_finite(row: Recommendation, assignment: _Assignment) -> None:
    """Refuse options that drive a number of ``row`` out of float64's range.

    The option bounds of the catalogue keep ordinary choices finite; a
    combination at their edges (wang_init with n_layers = 5e-324, a truncated
    normal with a std of 1e-300 far from its cut) can still overflow. The
    problem points at the one number option that differs from its default, or
    at the scheme when several do.
    """
    numbers = {
        "gain": row.gain,
        "mean": row.mean,
        "std": row.std,
        "bound": row.bound,
    }
    if row.truncation is not None:
        numbers |= {
            "truncation.lower": row.truncation.lower,
            "truncation.upper": row.truncation.upper,
            "truncation.sampler_std": row.truncation.sampler_std,
        }
    broken = [
        name
        for name, value in numbers.items()
        if value is not None and not math.isfinite(value)
    ]
    if not broken:
        return

    scheme = assignment.scheme
    catalogued = SCHEMES[scheme.name]
    changed = [
        option.name
        for option in catalogued.options
        if option.type != "string"
        and scheme.options.get(option.name, option.default) != option.default
    ]
    path = assignment.path
    if len(changed) == 1:
        path = (*path, changed[0])
    given = ", ".join(
        f"{name} = {json_value(scheme.options.get(name))}" for name in changed
    )
    raise InvalidInput.at(
        path,
        f"{scheme.name}{f' with {given}' if given else ''} gives {row.name} a"
        f" {broken[0]} that is not a finite number ({json_value(numbers[broken[0]])});"
        " bring the options nearer their defaults",
        value=scheme.options.get(changed[0]) if len(changed) == 1 else scheme.name,
    )


def _recommend_tensor(
    p: ParameterTensor, assignment: _Assignment, network: _Network
) -> Recommendation:
    scheme = assignment.scheme
    if is_norm(p):
        if assignment.only_one_dimensional and scheme.name in VALUE_SCHEMES:
            return _value_row(p, scheme)
        return _constant_row(p, 1.0 if p.tensor == "weight" else 0.0)

    if p.tensor == "bias":
        if assignment.only_one_dimensional and scheme.name in VALUE_SCHEMES:
            return _value_row(p, scheme)
        if scheme.name == "torch_default":
            return _torch_default_bias(p, scheme, network)
        if scheme.name == "mean_field":
            return _mean_field_bias(p, scheme)
        return _constant_row(p, 0.0, fans=_fans(p, _fan_convention(scheme)))

    if scheme.name in VALUE_SCHEMES:
        return _value_row(p, scheme)

    return _WEIGHT_RULES[scheme.name](p, scheme, assignment, network)


def _row(
    p: ParameterTensor,
    scheme: str,
    options: dict[str, Any],
    *,
    distribution: Distribution,
    std: float,
    fans: tuple[int, int],
    mean: float = 0.0,
    bound: float | None = None,
    truncation: Truncation | None = None,
    gain: float = 1.0,
    gain_source: str = "fixed",
    pytorch: str | None = None,
    convention: str = "pytorch",
    notes: Sequence[str] = (),
) -> Recommendation:
    signal = _signal(p, fans)
    return Recommendation(
        name=p.name,
        shape=p.shape,
        scheme=scheme,
        options=dict(options),
        fan_in=fans[0],
        fan_out=fans[1],
        signal_fan_in=signal[0] if signal else None,
        signal_fan_out=signal[1] if signal else None,
        gain=gain,
        gain_source=gain_source,
        distribution=distribution,
        mean=mean,
        std=std,
        bound=bound,
        truncation=truncation,
        pytorch=pytorch,
        convention=convention,
        notes=tuple(dict.fromkeys(notes)),
    )


def _fans(p: ParameterTensor, convention: Convention = "pytorch") -> tuple[int, int]:
    """Fans to report: the library's; a norm parameter's length (Keras' 1-D rule)."""
    if is_norm(p):
        return library_fans(p, "keras")

    return library_fans(p, convention)


def _signal(p: ParameterTensor, fans: tuple[int, int]) -> tuple[int, int] | None:
    """Signal fans where they differ from the reported ones (weights only)."""
    if p.tensor != "weight" or is_norm(p):
        return None
    signal = signal_fans(p)

    return signal if signal != fans else None


def _fan_convention(scheme: SchemeChoice) -> Convention:
    convention = scheme.options.get("convention", "pytorch")
    return convention if convention in ("pytorch", "keras", "jax") else "pytorch"


def _variable(p: ParameterTensor) -> str:
    return "b" if p.tensor == "bias" else "w"


def _constant_row(
    p: ParameterTensor,
    value: float,
    *,
    scheme: str = "constant",
    options: dict[str, Any] | None = None,
    fans: tuple[int, int] | None = None,
    convention: str = "pytorch",
    notes: Sequence[str] = (),
) -> Recommendation:
    variable = _variable(p)
    if value == 0.0:
        call = f"torch.nn.init.zeros_({variable})"
    elif value == 1.0:
        call = f"torch.nn.init.ones_({variable})"
    else:
        call = f"torch.nn.init.constant_({variable}, {value!r})"
    return _row(
        p,
        scheme,
        {"value": value} if options is None else options,
        distribution="constant",
        mean=value,
        std=0.0,
        fans=fans if fans is not None else _fans(p),
        pytorch=call,
        convention=convention,
        notes=notes,
    )


def _normal_row(
    p: ParameterTensor,
    scheme: SchemeChoice | str,
    options: dict[str, Any],
    std: float,
    *,
    fans: tuple[int, int],
    mean: float = 0.0,
    **details: Any,
) -> Recommendation:
    name = scheme if isinstance(scheme, str) else scheme.name
    call = f"torch.nn.init.normal_({_variable(p)}, mean={mean!r}, std={std!r})"
    details.setdefault("pytorch", call)
    return _row(
        p,
        name,
        options,
        distribution="normal",
        mean=mean,
        std=std,
        fans=fans,
        **details,
    )


def _symmetric_uniform_row(
    p: ParameterTensor,
    name: str,
    options: dict[str, Any],
    std: float,
    bound: float,
    *,
    fans: tuple[int, int],
    **details: Any,
) -> Recommendation:
    call = f"torch.nn.init.uniform_({_variable(p)}, {-bound!r}, {bound!r})"
    details.setdefault("pytorch", call)
    return _row(
        p,
        name,
        options,
        distribution="uniform",
        std=std,
        bound=bound,
        fans=fans,
        **details,
    )


# --- Value schemes: constant, normal, uniform, trunc_normal ---------------------


def _value_row(p: ParameterTensor, scheme: SchemeChoice) -> Recommendation:
    options = scheme.options
    fans = _fans(p)
    variable = _variable(p)
    if scheme.name == "constant":
        return _constant_row(p, options["value"], fans=fans)

    if scheme.name == "normal":
        return _normal_row(
            p, scheme, options, options["std"], fans=fans, mean=options["mean"]
        )

    if scheme.name == "uniform":
        lower, upper = options["a"], options["b"]
        return _row(
            p,
            "uniform",
            options,
            distribution="uniform",
            mean=(lower + upper) / 2,
            std=uniform_std(lower, upper),
            bound=(upper - lower) / 2,
            fans=fans,
            pytorch=f"torch.nn.init.uniform_({variable}, a={lower!r}, b={upper!r})",
        )

    mean, std, lower, upper = (options[key] for key in ("mean", "std", "a", "b"))
    drawn_mean = truncated_normal_mean(mean, std, lower, upper)
    notes = []
    if abs(drawn_mean - mean) > 1e-12 * std:
        notes.append(
            f"The cut at [{json_value(lower)}, {json_value(upper)}] is not centred"
            f" on the mean {json_value(mean)}: the values drawn have mean"
            f" {json_value(drawn_mean)}."
        )
    if upper < mean - 2 * std or lower > mean + 2 * std:
        notes.append(
            "The mean is more than 2 std from [a, b]: PyTorch warns that the "
            "values may be drawn incorrectly."
        )
    return _row(
        p,
        "trunc_normal",
        options,
        distribution="truncated_normal",
        mean=drawn_mean,
        std=truncated_normal_std(mean, std, lower, upper),
        truncation=Truncation(lower, upper, std),
        fans=fans,
        pytorch=(
            f"torch.nn.init.trunc_normal_({variable}, mean={mean!r}, std={std!r}, "
            f"a={lower!r}, b={upper!r})"
        ),
        notes=notes,
    )


# --- PyTorch's fan-based schemes -------------------------------------------------


class _Gain(NamedTuple):
    """A nonlinearity's gain, where it came from, and how to name it back."""

    value: float
    source: str
    nonlinearity: str
    negative_slope: float | None
    pytorch_name: str | None
    notes: tuple[str, ...]


def _nonlinearity_gain(
    p: ParameterTensor, nonlinearity: str, negative_slope: float | None
) -> _Gain:
    """torch's calculate_gain for ``nonlinearity`` ('layer': p's own activation)."""
    if nonlinearity == "layer":
        activation = p.activation
        if activation.name == "leaky_relu" and negative_slope is not None:
            activation = _leaky(negative_slope)
        return _activation_gain(activation)
    if nonlinearity in PYTORCH_LINEAR_NAMES:
        return _Gain(
            1.0,
            f"pytorch.calculate_gain({nonlinearity!r})",
            nonlinearity,
            None,
            nonlinearity,
            (),
        )
    if nonlinearity == "leaky_relu":
        slope = 0.0 if negative_slope is None else negative_slope
        return _activation_gain(_leaky(slope))

    return _activation_gain(make_activation(nonlinearity))


def _leaky(negative_slope: float) -> Activation:
    # Built directly: kaiming's a may exceed the activation's own range
    # (nn.Linear's default is a = √5).
    return Activation("leaky_relu", (("negative_slope", float(negative_slope)),))


@functools.lru_cache(maxsize=256)
def _activation_gain(activation: Activation) -> _Gain:
    torch_name = "linear" if activation.name == "identity" else activation.name
    slope = (
        activation.param("negative_slope") if activation.name == "leaky_relu" else None
    )
    gain = pytorch_gain(activation)
    if gain is not None:
        source = (
            f"pytorch.calculate_gain({torch_name!r}, {slope!r})"
            if slope is not None
            else f"pytorch.calculate_gain({torch_name!r})"
        )
        notes: tuple[str, ...] = ()
        if activation.name == "selu":
            notes = (
                "PyTorch's SELU gain 3/4 is empirical; a self-normalizing network "
                "wants nonlinearity='linear' (LeCun normal, Klambauer et al. 2017).",
            )
        return _Gain(gain, source, activation.name, slope, torch_name, notes)

    gain = second_moment_gain(activation)
    method = _QUADRATURE_NAMES.get(gaussian_moments(activation).method, "quadrature")
    return _Gain(
        gain,
        f"second_moment ({method})",
        activation.name,
        None,
        None,
        (
            f"PyTorch's calculate_gain has no gain for {activation.name} (it "
            f"raises); used the second-moment gain 1/√E[φ(z)²] = {gain:.6f}.",
        ),
    )


def _xavier(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    gain = scheme.options["gain"]
    fans = _fans(p)
    std = xavier_std(fans[0], fans[1], gain)
    notes = fan_notes(p)
    if scheme.name == "xavier_normal":
        return _normal_row(
            p,
            scheme,
            scheme.options,
            std,
            fans=fans,
            gain=gain,
            gain_source="option",
            pytorch=f"torch.nn.init.xavier_normal_(w, gain={gain!r})",
            notes=notes,
        )

    return _symmetric_uniform_row(
        p,
        scheme.name,
        scheme.options,
        std,
        uniform_bound(std),
        fans=fans,
        gain=gain,
        gain_source="option",
        pytorch=f"torch.nn.init.xavier_uniform_(w, gain={gain!r})",
        notes=notes,
    )


def _kaiming(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    options = scheme.options
    mode = options["mode"]
    gain = _nonlinearity_gain(p, options["nonlinearity"], options["negative_slope"])
    fans = _fans(p)
    std = kaiming_std(fans[0] if mode == "fan_in" else fans[1], gain.value)
    resolved = {
        "mode": mode,
        "nonlinearity": gain.nonlinearity,
        "negative_slope": gain.negative_slope,
    }
    uniform = scheme.name == "kaiming_uniform"
    call = None
    if gain.pytorch_name is not None:
        slope = "" if gain.negative_slope is None else f"a={gain.negative_slope!r}, "
        call = (
            f"torch.nn.init.{scheme.name}_(w, {slope}mode={mode!r}, "
            f"nonlinearity={gain.pytorch_name!r})"
        )
    notes = [*fan_notes(p), *gain.notes]
    if options["negative_slope"] is not None and gain.nonlinearity != "leaky_relu":
        notes.append(
            f"negative_slope = {json_value(options['negative_slope'])} was ignored:"
            f" the nonlinearity used for this layer is {gain.nonlinearity}, not"
            " leaky_relu, so its scheme shows negative_slope null."
        )
    details = dict(
        fans=fans,
        gain=gain.value,
        gain_source=gain.source,
        notes=notes,
    )
    if call is not None:
        details["pytorch"] = call
    if uniform:
        return _symmetric_uniform_row(
            p, scheme.name, resolved, std, uniform_bound(std), **details
        )

    return _normal_row(p, scheme, resolved, std, **details)


def _lecun(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    convention = scheme.options["convention"]
    uniform = scheme.name == "lecun_uniform"
    if convention != "pytorch":
        distribution = "uniform" if uniform else "truncated_normal"
        return _variance_scaling_row(p, scheme, 1.0, "fan_in", distribution, convention)

    fans = _fans(p)
    std = lecun_std(fans[0])
    function = "kaiming_uniform_" if uniform else "kaiming_normal_"
    details = dict(
        fans=fans,
        pytorch=f"torch.nn.init.{function}(w, mode='fan_in', nonlinearity='linear')",
        notes=fan_notes(p),
    )
    if uniform:
        return _symmetric_uniform_row(
            p, scheme.name, scheme.options, std, uniform_bound(std), **details
        )

    return _normal_row(p, scheme, scheme.options, std, **details)


def _variance_scaling(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    options = scheme.options
    scale, mode, convention = options["scale"], options["mode"], options["convention"]
    fan_in, fan_out = _fans(p, convention)
    if variance_scaling_variance(scale, mode, fan_in, fan_out, convention) == 0.0:
        # scale/n below float64's smallest number: every value drawn would be
        # 0, and a truncated normal's cut at ±2σ would divide by σ = 0.
        n = 1.0 / variance_scaling_variance(1.0, mode, fan_in, fan_out, convention)
        smallest = f"{sys.float_info.min * n:.3g}"
        raise InvalidInput.at(
            (*assignment.path, "scale"),
            f"variance_scaling with scale = {json_value(scale)} gives {p.name}"
            f" the variance scale/n = {json_value(scale)}/{n:.6g}, which underflows"
            f" to 0 (every value drawn would be 0); give a scale of at least"
            f" {smallest}",
            value=scale,
            allowed=f"a scale of at least {smallest}",
        )

    return _variance_scaling_row(
        p, scheme, scale, mode, options["distribution"], convention
    )


def _variance_scaling_row(
    p: ParameterTensor,
    scheme: SchemeChoice,
    scale: float,
    mode: str,
    distribution: str,
    convention: Convention,
) -> Recommendation:
    fans = _fans(p, convention)
    variance = variance_scaling_variance(scale, mode, fans[0], fans[1], convention)
    notes = list(fan_notes(p, convention))
    if distribution == "normal":
        distribution = "truncated_normal" if convention == "keras" else "normal"
        notes.append(
            "Keras reads distribution='normal' as 'truncated_normal'."
            if convention == "keras"
            else "JAX's distribution='normal' is untruncated."
        )
    details = dict(
        fans=fans,
        gain=math.sqrt(scale),
        gain_source="option",
        convention=convention,
        notes=notes,
    )

    if distribution == "truncated_normal":
        sampler_std = variance_scaling_sampler_std(variance)
        cut = KERAS_TRUNCATION_SAMPLER_STDS * sampler_std
        return _row(
            p,
            scheme.name,
            scheme.options,
            distribution="truncated_normal",
            std=truncated_normal_std(0.0, sampler_std, -cut, cut),
            truncation=Truncation(-cut, cut, sampler_std),
            pytorch=(
                f"torch.nn.init.trunc_normal_(w, mean=0.0, std={sampler_std!r}, "
                f"a={-cut!r}, b={cut!r})"
            ),
            **details,
        )
    if distribution == "uniform":
        limit = variance_scaling_uniform_limit(variance)
        return _symmetric_uniform_row(
            p, scheme.name, scheme.options, uniform_std(-limit, limit), limit, **details
        )

    return _normal_row(p, scheme, scheme.options, math.sqrt(variance), **details)


def _orthogonal(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    gain = scheme.options["gain"]
    shape = stored_shape(p, "pytorch")
    rows = shape[0]
    cols = p.numel // rows
    relation = "W·Wᵀ = gain²·I" if rows <= cols else "Wᵀ·W = gain²·I"
    notes = [
        f"Flattened to ({rows}, {cols}), the matrix has {relation}; its entries "
        "have RMS gain/√max(rows, cols)."
    ]
    return _row(
        p,
        scheme.name,
        scheme.options,
        distribution="orthogonal",
        std=orthogonal_element_rms(rows, cols, gain),
        fans=_fans(p),
        gain=gain,
        gain_source="option",
        pytorch=f"torch.nn.init.orthogonal_(w, gain={gain!r})",
        notes=notes,
    )


# --- Module defaults and the mean-field parametrisation -------------------------


def _torch_default(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    options = scheme.options
    if p.kind == "embedding":
        return _normal_row(
            p,
            scheme,
            options,
            1.0,
            fans=_fans(p),
            pytorch="torch.nn.init.normal_(w)",
            notes=("nn.Embedding draws N(0, 1).",),
        )

    if _as_multihead(p, options, network) and p.origin in _ATTENTION_INPUTS:
        if p.origin == "attention.qkv":
            fans = _torch_fans(p)
        else:
            fans = (p.in_features, 3 * p.in_features)
        std = xavier_std(fans[0], fans[1], 1.0)
        return _symmetric_uniform_row(
            p,
            scheme.name,
            options,
            std,
            uniform_bound(std),
            fans=fans,
            gain=1.0,
            gain_source="fixed",
            pytorch="torch.nn.init.xavier_uniform_(in_proj_weight)",
            notes=(
                "nn.MultiheadAttention packs q, k and v into in_proj_weight "
                f"({3 * p.in_features}, {p.in_features}) and applies xavier_uniform_ "
                "to the packed tensor.",
            ),
        )

    fans = _torch_fans(p)
    gain = _activation_gain(_leaky(TORCH_DEFAULT_NEGATIVE_SLOPE)).value
    std = kaiming_std(fans[0], gain)
    notes = ["nn.Linear and nn.ConvNd call kaiming_uniform_(w, a=√5): U(±1/√fan_in)."]
    notes += _multihead_fallback_notes(p, options, network)
    if p.layout == "in_out":
        notes.append(
            "This layer is stored (in, out), which no torch.nn module does: shown "
            "as nn.Linear(in, out) would start (GPT-2's Conv1D instead draws "
            "N(0, 0.02²) with zero bias)."
        )
    return _symmetric_uniform_row(
        p,
        scheme.name,
        options,
        std,
        uniform_bound(std),
        fans=fans,
        gain=gain,
        gain_source="pytorch.calculate_gain('leaky_relu', math.sqrt(5))",
        pytorch="torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))",
        notes=notes,
    )


def _torch_default_bias(
    p: ParameterTensor, scheme: SchemeChoice, network: _Network
) -> Recommendation:
    fans = _torch_fans(p)
    if _as_multihead(p, scheme.options, network):
        return _constant_row(
            p,
            0.0,
            scheme=scheme.name,
            options=scheme.options,
            fans=fans,
            notes=("nn.MultiheadAttention sets in_proj_bias and out_proj.bias to 0.",),
        )

    bound = torch_default_bias_bound(fans[0])
    return _symmetric_uniform_row(
        p,
        scheme.name,
        scheme.options,
        uniform_std(-bound, bound),
        bound,
        fans=fans,
        gain_source="fixed",
        notes=(
            "nn.Linear and nn.ConvNd draw the bias from U(±1/√fan_in) of the weight.",
            *_multihead_fallback_notes(p, scheme.options, network),
        ),
    )


def _multihead_fallback_notes(
    p: ParameterTensor, options: dict[str, Any], network: _Network
) -> tuple[str, ...]:
    """Why an attention projection asked for as nn.MultiheadAttention is not one."""
    is_attention = p.origin is not None and p.origin.startswith("attention.")
    if options["attention"] != "multihead_attention" or not is_attention:
        return ()
    if network.multihead.get(p.layer.rsplit(".", 1)[0], False):
        return ()

    return (
        "nn.MultiheadAttention cannot hold this attention block: it projects q, k"
        " and v from d_model to d_model, and here k and v are narrower"
        " (grouped-query attention) or d_head × n_heads is not d_model; shown as"
        ' nn.Linear projections, as attention: "linear" would.',
    )


def _torch_fans(p: ParameterTensor) -> tuple[int, int]:
    """PyTorch's fans of the layer as a torch module holds it (never in_out)."""
    return library_fans(dataclasses.replace(p, layout="out_in"))


def _as_multihead(
    p: ParameterTensor, options: dict[str, Any], network: _Network
) -> bool:
    if options["attention"] != "multihead_attention" or p.origin is None:
        return False
    if not p.origin.startswith("attention."):
        return False

    return network.multihead.get(p.layer.rsplit(".", 1)[0], False)


def _mean_field(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    sigma_w2 = scheme.options["sigma_w2"]
    signal = signal_fans(p)
    std = mean_field_weight_std(sigma_w2, signal[0])
    notes = []
    fans = _fans(p)
    if signal[0] != fans[0]:
        notes.append(f"mean_field divides by the signal fan_in, {signal[0]}.")
    return _normal_row(
        p,
        scheme,
        scheme.options,
        std,
        fans=fans,
        gain=math.sqrt(sigma_w2),
        gain_source="option",
        convention="signal",
        notes=notes,
    )


def _mean_field_bias(p: ParameterTensor, scheme: SchemeChoice) -> Recommendation:
    std = mean_field_bias_std(scheme.options["sigma_b2"])
    if std == 0.0:
        return _constant_row(
            p, 0.0, scheme=scheme.name, options=scheme.options, convention="signal"
        )

    return _normal_row(
        p, scheme, scheme.options, std, fans=_fans(p), convention="signal"
    )


# --- Depth-aware transformer and residual schemes --------------------------------


def _is_branch_output(p: ParameterTensor) -> bool:
    return p.residual is not None and p.residual.is_branch_output


def _gpt2(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    std = scheme.options["std"]
    notes = []
    if _is_branch_output(p):
        std = depth_scaled_std(std, network.branch_count)
        notes.append(
            f"Residual output projection: std/√(2·n_layer) with 2·n_layer = "
            f"{network.branch_count} residual branches."
        )
    if p.kind == "embedding" and scheme.name == "gpt2":
        notes.append(
            "Hugging Face and nanoGPT draw token and position embeddings with the "
            "base std (OpenAI's TensorFlow code used 0.01 for positions)."
        )
    return _normal_row(
        p,
        scheme,
        scheme.options,
        std,
        fans=_fans(p),
        convention=scheme.name,
        notes=notes,
    )


def _small_init(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    options = scheme.options
    width = options["d_model"] or network.width(p)
    if _is_branch_output(p):
        n_layers = network.n_layers(options["n_layers"], assignment)
        std = wang_init_std(n_layers, width)
        note = (
            "Residual output projection: wang_init 2/(L·√d) with "
            f"L = {n_layers:g}, d = {width}."
        )
    else:
        std = small_init_std(width)
        note = f"small_init √(2/(5d)) with d = {width}."
    return _normal_row(
        p, scheme, options, std, fans=_fans(p), convention="gpt-neox", notes=(note,)
    )


def _fixup(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    mode = scheme.options["mode"]
    if p.is_readout or _is_branch_output(p):
        where = (
            "the readout" if p.is_readout else "the last layer of its residual branch"
        )
        return _constant_row(
            p,
            0.0,
            scheme=scheme.name,
            options=scheme.options,
            notes=(f"Fixup starts {where} at zero.",),
        )
    if p.kind == "embedding":
        return _normal_row(
            p,
            scheme,
            scheme.options,
            1.0,
            fans=_fans(p),
            pytorch="torch.nn.init.normal_(w)",
            notes=("Fixup has no rule for embeddings: PyTorch's N(0, 1) is kept.",),
        )

    gain = _nonlinearity_gain(p, "layer", None)
    fans = _fans(p)
    # Fixup's He init counts what the layer sums over, not how it is stored.
    fan = signal_fans(p)[0 if mode == "fan_in" else 1]
    std = kaiming_std(fan, gain.value)
    notes = list(gain.notes)
    if fan != fans[0 if mode == "fan_in" else 1]:
        notes.append(f"fixup divides by the signal {mode}, {fan}.")
    call = _kaiming_normal_call(p, fan, mode, gain)
    if p.residual is not None and p.residual.branch_depth >= 2:
        scale = fixup_branch_scale(network.branch_count, p.residual.branch_depth)
        std = std * scale
        notes.append(
            f"He std scaled by L^(-1/(2m-2)) = {scale:.6g} (L = "
            f"{network.branch_count} branches, m = {p.residual.branch_depth} layers)."
        )
        call = None
    details = dict(fans=fans, gain=gain.value, gain_source=gain.source, notes=notes)
    if call is not None:
        details["pytorch"] = call
    return _normal_row(p, scheme, scheme.options, std, **details)


def _kaiming_normal_call(
    p: ParameterTensor, fan: int, mode: str, gain: _Gain
) -> str | None:
    """The kaiming_normal_ call whose fan is ``fan`` on ``p`` as torch stores it.

    torch reads the fans of the stored tensor: for a weight stored (in, out)
    the signal's fan_in is torch's fan_out, so the call names the other mode;
    when neither of torch's fans is ``fan`` (a grouped conv's fan_out) there
    is no such call.
    """
    if gain.pytorch_name is None:
        return None
    torch_fans = dict(zip(("fan_in", "fan_out"), _fans(p), strict=True))
    modes = [mode, *(other for other in torch_fans if other != mode)]
    torch_mode = next((m for m in modes if torch_fans[m] == fan), None)
    if torch_mode is None:
        return None

    slope = "" if gain.negative_slope is None else f"a={gain.negative_slope!r}, "
    return (
        f"torch.nn.init.kaiming_normal_(w, {slope}mode={torch_mode!r}, "
        f"nonlinearity={gain.pytorch_name!r})"
    )


def _deepnorm(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    if p.kind == "embedding":
        return _normal_row(
            p,
            scheme,
            scheme.options,
            lecun_std(p.out_features),
            fans=_fans(p),
            notes=("Embeddings N(0, 1/d) as fairseq and torchscale draw them.",),
        )

    gain, gain_source, notes = 1.0, "fixed", []
    if p.residual is not None:
        n_layers = network.n_layers(scheme.options["n_layers"], assignment)
        beta = deepnorm_beta(n_layers)
        if p.origin in ("attention.q", "attention.k"):
            notes.append("DeepNorm keeps gain 1 on query and key projections.")
        elif p.origin == "attention.qkv":
            notes.append(
                f"Fused qkv: DeepNorm wants gain 1 on the q and k rows and β = "
                f"{beta:.6g} on the v rows; shown with gain 1 — scale the v rows "
                "by β, or split the projection."
            )
        else:
            gain, gain_source = beta, f"deepnorm β = (8N)^(-1/4), N = {n_layers:g}"
    fans = _fans(p)
    # Xavier on what the layer sums over and feeds, not on how it is stored.
    signal = signal_fans(p)
    std = xavier_std(signal[0], signal[1], gain)
    call = None
    if sum(signal) == sum(fans):
        call = f"torch.nn.init.xavier_normal_(w, gain={gain!r})"
    else:
        notes.append(
            f"deepnorm uses the signal fans ({signal[0]}, {signal[1]}); torch's"
            f" xavier_normal_ would read ({fans[0]}, {fans[1]})."
        )
    details = {"pytorch": call} if call is not None else {}
    return _normal_row(
        p,
        scheme,
        scheme.options,
        std,
        fans=fans,
        gain=gain,
        gain_source=gain_source,
        notes=notes,
        **details,
    )


# --- auto -----------------------------------------------------------------------


def _auto(
    p: ParameterTensor, scheme: SchemeChoice, assignment: _Assignment, network: _Network
) -> Recommendation:
    fans = _fans(p)
    if p.kind == "embedding":
        return _auto_embedding(p, fans, network)

    reads = network.input_activation.get(p.layer, IDENTITY)
    gain, gain_source, why = _auto_gain(reads)
    signal_fan_in = signal_fans(p)[0]
    std = kaiming_std(signal_fan_in, gain)
    notes = [why]
    if signal_fan_in != fans[0]:
        notes.append(f"auto divides by the signal fan_in, {signal_fan_in}.")

    if _is_branch_output(p):
        position = p.residual
        if position.norm == "post":
            notes.append(
                "Post-norm branch: the norm after the addition sets the stream's "
                "scale, so the output projection is not scaled with depth."
            )
        elif position.branch_index in network.branches_ending_in_norm:
            notes.append(
                "A norm follows this branch's output layer inside the branch and "
                "undoes any scale given to it; to damp the branch, override that "
                "norm's weight with a small constant (0 is Goyal et al. 2017's "
                "zero-init residual)."
            )
        else:
            std = depth_scaled_std(std, network.branch_count)
            notes.append(
                f"Residual branch output scaled by 1/√{network.branch_count}: "
                f"{network.branch_count} branches of variance v/"
                f"{network.branch_count} add v to the stream in total (GPT-2 "
                "style)."
            )
    return _normal_row(
        p,
        scheme,
        {},
        std,
        fans=fans,
        gain=gain,
        gain_source=gain_source,
        convention="signal",
        notes=notes,
    )


def _auto_embedding(
    p: ParameterTensor, fans: tuple[int, int], network: _Network
) -> Recommendation:
    partner = network.partners.get(p.name)
    if partner is not None and partner.kind != "embedding":
        reads = network.input_activation.get(partner.layer, IDENTITY)
        gain, gain_source, _ = _auto_gain(reads)
        width = signal_fans(partner)[0]
        std = kaiming_std(width, gain)
        note = (
            f"Shared with {partner.name}: drawn as that layer needs (gain "
            f"{gain:.6g} over its fan_in {width}), so the embedding's outputs have "
            "second moment about 1/d; models like T5 and Gemma multiply them by √d."
        )
        return _normal_row(
            p,
            "auto",
            {},
            std,
            fans=fans,
            gain=gain,
            gain_source=gain_source,
            convention="signal",
            notes=(note,),
        )
    if network.has_tied_embedding:
        return _normal_row(
            p,
            "auto",
            {},
            lecun_std(p.out_features),
            fans=fans,
            convention="signal",
            notes=(
                "N(0, 1/d), the scale of the embedding shared with the readout, "
                "so that the embeddings summed into one stream match.",
            ),
        )

    return _normal_row(
        p,
        "auto",
        {},
        1.0,
        fans=fans,
        convention="signal",
        notes=(
            "N(0, 1): one-hot inputs pick one row, so the outputs have second "
            "moment 1 like every other layer's output under auto (PyTorch's "
            "nn.Embedding default).",
        ),
    )


@functools.lru_cache(maxsize=256)
def _auto_gain(reads: Activation) -> tuple[float, str, str]:
    """auto's gain for a layer whose input went through ``reads``, and why."""
    if reads.name == "identity":
        return (
            1.0,
            "fixed",
            "auto: the input is not passed through a nonlinearity, so LeCun's "
            "1/√fan_in keeps its scale (LeCun et al. 1998).",
        )
    if reads.name in _RECTIFIERS:
        gain = _activation_gain(reads)
        return (
            gain.value,
            gain.source,
            f"auto: the input comes out of {reads.name}, so He's fan_in gain "
            f"{gain.value:.6g} restores its second moment exactly (He et al. 2015).",
        )
    if reads.name == "selu":
        return (
            1.0,
            "fixed",
            "auto: the input comes out of SELU, whose E[φ(z)²] = 1: LeCun normal "
            "keeps the self-normalizing fixed point (Klambauer et al. 2017).",
        )

    gain = second_moment_gain(reads)
    method = _QUADRATURE_NAMES.get(gaussian_moments(reads).method, "quadrature")
    return (
        gain,
        f"second_moment ({method})",
        f"auto: the input comes out of {reads.name}; the second-moment gain "
        f"1/√E[φ(z)²] = {gain:.6g} keeps unit-scale pre-activations at scale 1 "
        "(Poole et al. 2016).",
    )


_WEIGHT_RULES = {
    "auto": _auto,
    "xavier_uniform": _xavier,
    "xavier_normal": _xavier,
    "kaiming_uniform": _kaiming,
    "kaiming_normal": _kaiming,
    "lecun_uniform": _lecun,
    "lecun_normal": _lecun,
    "variance_scaling": _variance_scaling,
    "orthogonal": _orthogonal,
    "mean_field": _mean_field,
    "torch_default": _torch_default,
    "gpt2": _gpt2,
    "megatron": _gpt2,
    "small_init": _small_init,
    "fixup": _fixup,
    "deepnorm": _deepnorm,
}


# --- Tied tensors and notes -------------------------------------------------------


def _shared_row(
    p: ParameterTensor,
    rows: dict[str, Recommendation],
    assignment: _Assignment,
    network: _Network,
) -> Recommendation:
    source = network.source_of(p)
    notes = [f"Shares storage with {source.name}; initialized once."]
    if assignment.pattern is not None:
        notes.append(
            f"The override {json_value(assignment.pattern)} does not apply here: it"
            " would "
            f"have to name {source.name}."
        )
    row = rows[source.name]
    return dataclasses.replace(
        row, name=p.name, shape=p.shape, options=dict(row.options), notes=tuple(notes)
    )


def _result_notes(
    top: SchemeChoice,
    overrides: list[tuple[str, SchemeChoice]],
    network: _Network,
) -> tuple[str, ...]:
    notes: list[str] = []
    has_bias = any(p.tensor == "bias" and not is_norm(p) for p in network.parameters)
    if has_bias and top.name not in ("torch_default", "mean_field"):
        notes.append(
            f"Biases are 0 under {top.name}, as Keras and GPT-2 set them; an "
            "override aimed only at biases with constant, normal, uniform or "
            "trunc_normal changes that."
        )
    if any(is_norm(p) for p in network.parameters):
        notes.append(
            "Norm layers start at weight 1 and bias 0 under every scheme; an "
            "override aimed only at norm parameters with a value scheme changes "
            "that."
        )

    used = {top.name, *(choice.name for _, choice in overrides)}
    conventions = {top.options.get("convention")} | {
        choice.options.get("convention") for _, choice in overrides
    }
    if "auto" in used:
        notes.append(
            "auto takes each layer's gain from the nonlinearity its input went "
            "through (He et al. 2015 §2.2), assuming unit-scale network inputs."
        )
    if "jax" in conventions:
        notes.append(
            "JAX rounds these scalars to the parameter dtype (float32 unless x64 "
            "is enabled); the values here are float64."
        )
    if "fixup" in used:
        notes.append(
            "Fixup also adds a scalar bias before each layer and a scalar "
            "multiplier per branch (initialized 0 and 1); they are not in the spec."
        )
    if "deepnorm" in used and network.branch_count > 0:
        choice = (
            top
            if top.name == "deepnorm"
            else next(c for _, c in overrides if c.name == "deepnorm")
        )
        n_layers = choice.options["n_layers"] or network.branch_count / 2
        alpha = deepnorm_alpha(n_layers)
        notes.append(
            f"DeepNorm's residual scale α = (2N)^(1/4) = {alpha:.6g} "
            f"(N = {n_layers:g}) goes into the forward pass: x ← LN(α·x + G(x))."
        )
        if any(
            p.residual is not None and p.residual.norm == "pre"
            for p in network.parameters
        ):
            notes.append(
                "DeepNorm is defined for post-LN residuals (Wang et al. 2022, §3):"
                " α and β bound the model update only when the norm follows the"
                " addition, x ← LN(α·x + G(x)). This network is pre-norm, where"
                " the stream is never normalised and α has nowhere to go, so the"
                " β-scaled weights are shown but carry no such guarantee; auto or"
                " gpt2 fit pre-norm networks."
            )
    if any(p.tied_to is not None for p in network.parameters):
        notes.append(
            "Tied tensors are listed with the values of the tensor they share and "
            "counted once in parameter_count."
        )

    return tuple(notes)
