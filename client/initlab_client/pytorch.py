"""PyTorch models and the service: a spec read from an ``nn.Module``, answers drawn
into it, µP tables turned into optimizer groups.

Install with the ``torch`` extra (``pip install './client[torch]'``); the rest of
the client never imports this module.

:func:`spec_from_module` walks a module's children in registration order and
writes one spec layer per supported module (see :data:`SUPPORTED`), one
``sequential`` group per container and one ``repeat`` group per ``nn.ModuleList``
or ``nn.Sequential`` of identical blocks. Attention is recognised in
``nn.MultiheadAttention``, in GPT-2's ``c_attn``/``c_proj`` pair (with
``num_heads``) and in Llama's ``q_proj``/``k_proj``/``v_proj``/``o_proj``
(with ``head_dim``); Llama's ``gate_proj``/``up_proj``/``down_proj`` is a
gated MLP. What the spec language names differently (the projections are
``qkv`` or ``q``, ``k``, ``v`` and ``o``; ``in_proj_weight``, ``c_attn`` and
``q_proj`` among the originals) is mapped back by
:attr:`ModuleSpec.parameter_names`, which every other function here reads.

What is recognised, and what is not:

- Residual groups: ``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer``
  (pre-norm with ``norm_first=True``, else post-norm) and blocks whose children
  are GPT-2's ``ln_1``, ``attn``, ``ln_2``, ``mlp`` or Llama's
  ``input_layernorm``, ``self_attn``, ``post_attention_layernorm``, ``mlp``
  (pre-norm). Any other skip connection (a ResNet block, a custom block) lives
  in ``forward`` where a module walk cannot see it: its layers are written
  plainly, so residual-aware schemes (``gpt2``, ``megatron``, ``fixup``,
  ``deepnorm``) do not count it as a branch.
- Activations: an activation module (``nn.ReLU`` and the others the service
  knows) placed after a linear or convolution in an ``nn.Sequential``,
  with only norms, dropouts or ``nn.Identity`` between, becomes that layer's
  ``activation`` (as torchvision's conv, batch norm, ReLU); the activation of
  ``nn.TransformerEncoderLayer`` and of GPT-2's and Llama's MLPs is read too.
  Elsewhere the registration order need not be the forward order (GPT-2's MLP
  registers ``act`` after ``c_proj``), so nothing is inferred: pass
  ``activations``.
- Forward order: the spec reads its layers in registration order, and the
  last weight layer outside a residual group is the readout (µP's output
  layer). A model that registers its head before its body needs its spec
  edited by hand.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import operator
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from ._extras import install_command

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ModuleNotFoundError as error:
    if error.name != "torch":
        raise
    raise ModuleNotFoundError(
        "initlab_client.pytorch needs PyTorch 2.1 or newer, which is not installed;"
        " install PyTorch the way https://pytorch.org/get-started/locally/ says"
        " for your platform (a CPU build is enough), or else "
        + install_command("torch")
        + ", which installs PyPI's default build",
        name="torch",
    ) from error

from .models import ParameterRecommendation, Recommendations
from .mup import MupParamGroup, MupRow, MupTarget
from .spec import Spec

__all__ = [
    "SUPPORTED",
    "ModuleSpec",
    "MupMultipliers",
    "apply_mup_init",
    "apply_recommendation",
    "mup_multipliers",
    "mup_param_groups",
    "spec_from_module",
]

#: The module types :func:`spec_from_module` writes as spec layers, in words.
SUPPORTED = (
    "nn.Linear, nn.Conv1d/2d/3d, nn.ConvTranspose1d/2d/3d, nn.Embedding,"
    " nn.EmbeddingBag, nn.LayerNorm, nn.RMSNorm, nn.BatchNorm1d/2d/3d,"
    " nn.GroupNorm, nn.InstanceNorm1d/2d/3d, nn.MultiheadAttention, Hugging"
    " Face's Conv1D (GPT-2) and RMS norms (a class named *RMSNorm with one 1-D"
    " weight), and containers of them"
)

#: The distributions the service answers with (``Recommendation.distribution``).
DISTRIBUTIONS = ("normal", "uniform", "truncated_normal", "orthogonal", "constant")

#: The cut of a µP row's truncated normal, in sampler stds about its centre:
#: ±2, Keras' and JAX's, which the service's own training uses by default.
DEFAULT_TRUNCATION = (-2.0, 2.0)

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_DIM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_CONV_KINDS = (
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_WEIGHT_KINDS = ("linear", *_CONV_KINDS)
_PRE_NORM_BLOCKS = (
    ("GPT-2", (("ln_1", "attn"), ("ln_2", "mlp"))),
    ("Llama", (("input_layernorm", "self_attn"), ("post_attention_layernorm", "mlp"))),
)
# Hugging Face's activation classes, known by name (transformers is optional).
_HF_ACTIVATIONS = {
    "NewGELUActivation": "gelu_tanh",
    "GELUTanh": "gelu_tanh",
    "PytorchGELUTanh": "gelu_tanh",
    "FastGELUActivation": "gelu_tanh",
    "GELUActivation": "gelu",
    "SiLUActivation": "silu",
    "MishActivation": "mish",
}
_FUNCTION_ACTIVATIONS: dict[Any, Any] = {
    F.relu: "relu",
    torch.relu: "relu",
    F.gelu: "gelu",
    F.silu: "silu",
    F.selu: "selu",
    F.mish: "mish",
    F.elu: "elu",
    F.softsign: "softsign",
    F.softplus: "softplus",
    F.tanh: "tanh",
    torch.tanh: "tanh",
    F.sigmoid: "sigmoid",
    torch.sigmoid: "sigmoid",
    F.leaky_relu: {"name": "leaky_relu", "negative_slope": 0.01},
}


@dataclass(frozen=True)
class ModuleSpec:
    """A spec read from a PyTorch module, and how its names map back.

    ``spec`` is ready to post (a :class:`~initlab_client.Spec`).
    ``parameter_names`` maps every tensor of the spec, tied ones included, to
    the module's parameter name (``module.get_parameter(name)``);
    ``parameter_slices`` maps the spec tensors that are rows ``[start, stop)``
    of a module tensor (the q, k and v biases of an ``nn.MultiheadAttention``
    with its own key and value sizes, stored as one ``in_proj_bias``).
    ``skipped`` lists the module's parameters left out by ``skip``, and
    ``notes`` what the spec could not say exactly, one sentence each.
    """

    spec: Spec
    parameter_names: Mapping[str, str]
    parameter_slices: Mapping[str, tuple[int, int]]
    skipped: tuple[str, ...]
    notes: tuple[str, ...]

    def module_name(self, spec_name: str) -> str:
        """The module's name of the spec tensor ``spec_name``."""
        try:
            return self.parameter_names[spec_name]
        except KeyError:
            raise KeyError(_unknown_name(spec_name, self.parameter_names)) from None


#: What ``names`` may be: a ModuleSpec, spec name → module name, or identity.
Names = Union["ModuleSpec", Mapping[str, str], None]


# --- From a module to a spec -------------------------------------------------------


def spec_from_module(
    module: nn.Module,
    *,
    dims: Mapping[str, int] | None = None,
    activations: Mapping[str, Any] | None = None,
    skip: Sequence[str] = (),
) -> ModuleSpec:
    """The spec of ``module``: its layers, sizes, ties and residual groups.

    Sizes are dims named after their value: ``d_<n>`` for a width (features or
    channels), ``vocab_<n>`` for the row count of an embedding table and
    ``n_<path>`` for the copies of a repeated block (``n_h`` for ``h.0``,
    ``h.1``, ...); head counts, kernel sizes and groups (but a depthwise conv's
    groups, which are its width) are integers. ``dims`` names sizes yourself,
    ``{"d_model": 768, "d_ff": 3072, "n_layer": 12}``: every width, table size
    and repeat count equal to a named size takes its name, so that a µP target
    can write ``{"d_model": 1536, "d_ff": 6144, "n_layer": 24}``. Widths that
    only happen to be equal share a dim: give the base model distinct sizes
    where they must scale apart. A value that is both a repeat count and a
    width or table size is named apart, µP scaling depth and width
    differently: a name starting with ``n_`` goes to the repeat counts, any
    other to the widths and table sizes (a note says which). ``activations``
    maps globs over module names (``fnmatch``, ``*`` crosses dots) to
    activation names or ``{"name": ..., <option>: value}`` and overrides what
    is inferred (where two globs match, the later wins). ``skip`` lists globs
    over module or parameter names to leave out (a class token, a module type
    the spec cannot describe); their parameters are in ``skipped``, and
    initializing them is yours.

    A tensor reached twice (GPT-2's ``lm_head.weight`` is ``wte.weight``) is
    written once, the second layer ``tied_to`` the first, so the service's
    ``parameter_count`` is ``sum(p.numel() for p in module.parameters())``
    less what was skipped. A linear, convolution, embedding or norm module
    registered under two names (``model.b = model.a``) is written twice, the
    second ``tied_to`` the first and without a bias of its own (the spec ties
    weights only; a note says so); any other module registered twice is
    refused, unless ``skip`` names its second name. A norm without
    parameters (``elementwise_affine=False``, ``affine=False``) is left out,
    the spec's norm layers having a weight, and named in a note. Raises
    ``TypeError`` for a module with parameters that no supported type holds
    (naming it, its type, :data:`SUPPORTED` and the fix) and ``ValueError``
    for a supported module configured beyond the spec language (a
    ``LayerNorm`` over two dims, attention with ``add_bias_kv``), a bad
    ``dims`` entry or a glob that matches nothing.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module; got {type(module).__name__}"
        )

    builder = _Builder(dims, activations, skip)
    items = builder.walk(module, ())
    if not items:
        raise ValueError(
            f"{type(module).__name__} has no parameters outside skip= to describe;"
            " pass a module with parameters, or fewer skip patterns"
        )

    builder.check_complete(module)
    spec = Spec({"dims": builder.dims.used, "layers": builder.dims.named(items)})
    return ModuleSpec(
        spec=spec,
        parameter_names=types.MappingProxyType(dict(builder.names)),
        parameter_slices=types.MappingProxyType(dict(builder.slices)),
        skipped=tuple(builder.skipped),
        notes=tuple(builder.notes),
    )


@dataclass(frozen=True)
class _Size:
    """A size met in the walk, named when the walk is over (:meth:`_Dims.resolve`).

    ``role`` is ``width`` (features or channels), ``rows`` (an embedding's row
    count) or ``count`` (a repeat group's copies); ``default`` the name it
    takes unless the caller names its size (``None``: write the number).
    """

    size: int
    role: str
    default: str | None


class _Dims:
    """Names the sizes of a spec: the caller's names first, else by value.

    The walk writes a :class:`_Size` wherever a size goes; :meth:`resolve`
    names them all at once, so that a caller's name can go to the role its
    size has in the whole module.
    """

    def __init__(self, named: Mapping[str, int] | None) -> None:
        self.by_size: dict[int, str] = {}
        self.reserved: dict[str, int] = {}
        self.met: dict[_Size, None] = {}
        self.names: dict[_Size, str | int] = {}
        self.used: dict[str, int] = {}
        self.roles: dict[str, set[str]] = {}
        self.split: dict[str, tuple[str, list[str | int]]] = {}
        for name, size in (named or {}).items():
            if not isinstance(name, str) or not _DIM_NAME.match(name):
                raise ValueError(
                    f"dims: {name!r} is not a dim name; use an identifier (letters,"
                    " digits and '_', not starting with a digit), such as 'd_model'"
                )
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(
                    f"dims[{name!r}] must be a positive integer, the size to name;"
                    f" got {size!r}"
                )
            size = operator.index(size)
            if size in self.by_size:
                raise ValueError(
                    f"dims names the size {size} twice ({self.by_size[size]!r} and"
                    f" {name!r}); every size {size} of the module would take one name,"
                    " so keep one of them"
                )
            self.by_size[size] = name
            self.reserved[name] = size

    def width(self, size: int) -> _Size:
        """A features or channels size: the caller's name, else ``d_<size>``."""
        return self.meet(_Size(size, "width", f"d_{size}"))

    def rows(self, size: int) -> _Size:
        """An embedding's row count: the caller's name, else ``vocab_<size>``."""
        return self.meet(_Size(size, "rows", f"vocab_{size}"))

    def count(self, path: tuple[str, ...], size: int) -> _Size:
        """A repeat count: the caller's name, else ``n_`` and the path's words."""
        words = [segment for segment in path if not segment.isdigit()]
        name = re.sub(r"\W", "_", "n_" + "_".join(words or ["copies"]))
        return self.meet(_Size(size, "count", name if _DIM_NAME.match(name) else None))

    def meet(self, size: _Size) -> _Size:
        self.met.setdefault(size, None)
        return size

    def resolve(self) -> None:
        """Name every size met, in the order met.

        A caller's name goes to every size of its value, but for a value that
        is both a repeat count and a width or table size, which µP scales
        apart (depth and width): then a name starting with ``n_`` (as
        ``n_layer``) goes to the repeat counts and any other to the widths and
        table sizes, the rest taking their own names.
        """
        roles_of: dict[int, set[str]] = {}
        for met in self.met:
            roles_of.setdefault(met.size, set()).add(met.role)

        for met in self.met:
            caller = self.by_size.get(met.size)
            roles = roles_of[met.size]
            both = "count" in roles and len(roles) > 1
            if caller is not None and (
                not both or (met.role == "count") == caller.startswith("n_")
            ):
                name: str | int = caller
            else:
                name = met.default if met.default is not None else met.size
                if name in self.reserved or self.used.get(name, met.size) != met.size:
                    # The caller's name, or another size's: write the number.
                    name = met.size
            self.names[met] = name
            if caller is not None and both and name != caller:
                self.split.setdefault(caller, (met.role, []))[1].append(name)
            if isinstance(name, str):
                self.used[name] = met.size
                self.roles.setdefault(name, set()).add(met.role)

    def named(self, value: Any) -> Any:
        """``value`` (a spec item, list or size) with every size named."""
        if isinstance(value, _Size):
            return self.names[value]
        if isinstance(value, dict):
            return {key: self.named(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.named(item) for item in value]
        return value

    def sizes(self) -> list[int]:
        """Every width, table size and repeat count of the module, ascending."""
        return sorted({met.size for met in self.met})

    def unused(self) -> list[str]:
        return [name for name in self.reserved if name not in self.used]


class _Builder:
    """One walk over a module: spec items, name bindings, ties and notes."""

    def __init__(
        self,
        dims: Mapping[str, int] | None,
        activations: Mapping[str, Any] | None,
        skip: Sequence[str],
    ) -> None:
        if isinstance(skip, str):
            raise TypeError(
                f"skip must be a list of globs, such as [{skip!r}]; got the string"
                f" {skip!r}"
            )
        if activations is not None and not isinstance(activations, Mapping):
            raise TypeError(
                "activations must map globs over module names to activations, such"
                " as {'mlp.c_fc': 'gelu_tanh'}; got"
                f" {type(activations).__name__}"
            )
        self.dims = _Dims(dims)
        self.activations = dict(activations or {})
        self.skip = tuple(skip)
        self.matched: set[str] = set()
        self.names: dict[str, str] = {}
        self.slices: dict[str, tuple[int, int]] = {}
        self.skipped: list[str] = []
        self.skipped_ids: set[int] = set()
        self.owners: dict[int, tuple[str, str]] = {}
        self.notes: dict[str, None] = {}
        self.residual_blocks: dict[str, int] = {}
        # Every module walked, by id: the name it was first met under.
        self.walked: dict[int, str] = {}
        self.reused: dict[tuple[str, ...], str] = {}
        self.free_norms: list[tuple[tuple[str, ...], str]] = []

    def note(self, text: str) -> None:
        self.notes.setdefault(text, None)

    # --- the walk ---

    def walk(self, module: nn.Module, path: tuple[str, ...]) -> list[dict]:
        """The spec items of ``module`` at ``path`` (0 or 1 item, or the root's)."""
        name = ".".join(path)
        has_parameters = any(True for _ in module.parameters())
        first = self.walked.setdefault(id(module), name)
        if first != name and has_parameters:
            self.reused[path] = first
        if path and self.skipped_by(name):
            if path in self.reused:
                self.note(
                    f"{name} is the module {first} registered again: skip= leaves out"
                    f" the name {name}, and its tensors are {first}'s."
                )
                return []
            self.skip_all(module, path)
            return []
        if not has_parameters:
            if _is_norm(module):
                self.free_norms.append((path, type(module).__name__))
            return []
        if path and not _NAME.match(path[-1]):
            raise ValueError(
                f"{name}: the spec names a layer by its attribute, and {path[-1]!r}"
                " is not a spec name (1 to 128 letters, digits, '_' or '-'); rename"
                f" the attribute, or pass skip=[{name!r}]"
            )

        leaf = self.leaf(module, path)
        if leaf is not None:
            return [leaf]
        composite = self.composite(module, path)
        if composite is not None:
            return composite
        return self.container(module, path)

    def skipped_by(self, name: str) -> bool:
        hits = [p for p in self.skip if fnmatch.fnmatchcase(name, p)]
        self.matched.update(hits)
        return bool(hits)

    def skip_all(self, module: nn.Module, path: tuple[str, ...]) -> None:
        for attribute, parameter in module.named_parameters(remove_duplicate=False):
            self.skip_parameter(_join(path, attribute), parameter)

    def skip_parameter(self, name: str, parameter: nn.Parameter) -> None:
        if id(parameter) in self.owners:
            owner = self.owners[id(parameter)][1]
            raise ValueError(
                f"{name} is {owner}, which the spec keeps; skip both or neither"
            )
        self.skipped.append(name)
        self.skipped_ids.add(id(parameter))

    def container(self, module: nn.Module, path: tuple[str, ...]) -> list[dict]:
        own = [
            (attribute, parameter)
            for attribute, parameter in module._parameters.items()
            if parameter is not None
        ]
        for attribute, parameter in own:
            full = _join(path, attribute)
            if self.skipped_by(full):
                self.skip_parameter(full, parameter)
                continue
            raise _unsupported(module, path, [attribute for attribute, _ in own])

        ordered = isinstance(module, nn.Sequential)
        children = [
            (name, child)
            for name, child in module._modules.items()
            if child is not None
        ]
        items: list[dict] = []
        built: list[list[dict]] = []
        pending: dict | None = None
        loose_activations = []
        for name, child in children:
            activation = _activation_of(child)
            if activation is not None or _is_activation_module(child):
                if not ordered:
                    loose_activations.append(name)
                elif activation is None:
                    self.note(
                        f"{_join(path, name)} ({type(child).__name__}) is not an"
                        " activation the service knows: the layer before it keeps"
                        " identity; set another with activations="
                    )
                elif pending is not None and "activation" not in pending:
                    pending["activation"] = activation
                pending = None
                built.append([])
                continue

            child_items = self.walk(child, (*path, name))
            built.append(child_items)
            items.extend(child_items)
            if len(child_items) == 1 and child_items[0]["kind"] in _WEIGHT_KINDS:
                pending = child_items[0]
            elif not _is_transparent(child):
                pending = None

        if loose_activations and any(built) and not self.activations:
            where = ", ".join(_join(path, name) for name in loose_activations)
            self.note(
                f"{where}: activation modules outside an nn.Sequential, whose place"
                " in the forward pass a module walk cannot know; name the layers they"
                " follow with activations="
            )
        repeat = self.repeat(module, path, children, built)
        if repeat is not None:
            return [repeat]
        return self.wrap(path, items)

    def repeat(
        self,
        module: nn.Module,
        path: tuple[str, ...],
        children: list[tuple[str, nn.Module]],
        built: list[list[dict]],
    ) -> dict | None:
        """A repeat group for a list of identical blocks named 0, 1, ..., else None."""
        if not isinstance(module, (nn.ModuleList, nn.Sequential)) or len(built) < 2:
            return None
        if [name for name, _ in children] != [str(i) for i in range(len(children))]:
            return None
        if any(len(items) != 1 or items[0]["kind"] != "sequential" for items in built):
            return None
        first = built[0][0]["layers"]
        if any(items[0]["layers"] != first for items in built[1:]):
            return None

        group: dict[str, Any] = {"kind": "repeat"}
        if path:
            group["name"] = path[-1]
        group["count"] = self.dims.count(path, len(built))
        group["layers"] = first
        return group

    # --- layers ---

    def leaf(self, module: nn.Module, path: tuple[str, ...]) -> dict | None:
        """The one spec layer of a supported module type, else None."""
        lazy = isinstance(module, nn.modules.lazy.LazyModuleMixin)
        if lazy and module.has_uninitialized_params():
            raise ValueError(
                f"{_where(path)} ({type(module).__name__}) has not met an input"
                " yet, so its sizes are unknown; run one forward pass before"
                " reading its spec"
            )

        if isinstance(module, nn.MultiheadAttention):
            item = self.multihead_attention(module, path)
        elif isinstance(module, nn.Linear):
            item = self.linear(module, path)
        elif _is_conv1d(module):
            item = self.linear(module, path, in_out=True)
        elif isinstance(module, nn.modules.conv._ConvNd):
            item = self.conv(module, path)
        elif isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            item = self.embedding(module, path)
        else:
            norm = _norm_of(module, path)
            if norm is None:
                return None
            item = self.norm(module, path, *norm)

        self.check_leaf(module, path)
        return item

    def check_leaf(self, module: nn.Module, path: tuple[str, ...]) -> None:
        """Refuse a supported type that holds more parameters than the spec says."""
        extra = [
            attribute
            for attribute, parameter in module.named_parameters(remove_duplicate=False)
            if id(parameter) not in self.owners
        ]
        if extra:
            raise _unsupported(module, path, extra)

    def layer_name(self, path: tuple[str, ...], kind: str) -> str:
        # A module that is itself the root has no attribute name: use its kind.
        return path[-1] if path else kind

    def spec_prefix(self, path: tuple[str, ...], kind: str) -> str:
        return ".".join(path) if path else kind

    def bind(
        self,
        spec_name: str,
        path: tuple[str, ...],
        attribute: str,
        parameter: nn.Parameter,
        rows: tuple[int, int] | None = None,
        tied: bool = False,
    ) -> None:
        """Record that spec tensor ``spec_name`` is ``parameter`` of ``path``.

        ``rows`` marks a spec tensor that is rows of the module tensor (which
        may then be bound once per slice); ``tied`` a weight written with
        ``tied_to``. Any other tensor reached twice is refused.
        """
        module_name = _join(path, attribute)
        if id(parameter) in self.skipped_ids:
            reused = self.reuse_of(path)
            if reused is not None:
                name, first = reused
                raise ValueError(
                    f"{name} is the module {first} registered again, and skip= leaves"
                    f" {first} out; pass skip=[{name!r}] too, or skip neither"
                )
            raise ValueError(
                f"{module_name} is a tensor that skip= leaves out elsewhere; skip"
                " both or neither"
            )
        owner = self.owners.get(id(parameter))
        if owner is not None and not tied and rows is None:
            raise self.shared_error(module_name, owner[1], path)

        self.names[spec_name] = module_name
        if rows is not None:
            self.slices[spec_name] = rows
        self.owners.setdefault(id(parameter), (spec_name, module_name))

    def reuse_of(self, path: tuple[str, ...]) -> tuple[str, str] | None:
        """(name, first name) of the outermost module at ``path`` met twice."""
        for length in range(1, len(path) + 1):
            first = self.reused.get(path[:length])
            if first is not None:
                return ".".join(path[:length]), first
        return None

    def shared_error(
        self, module_name: str, owner_name: str, path: tuple[str, ...]
    ) -> ValueError:
        """Why a tensor reached twice cannot be written, and the way out."""
        reused = self.reuse_of(path)
        if reused is None:
            return ValueError(
                f"{module_name} is the same tensor as {owner_name}; the spec shares"
                " a layer's weight with another layer's (tied_to), and a bias only"
                " together with its weight, nothing else; untie them, or pass skip="
                " for one of the two"
            )
        name, first = reused
        return ValueError(
            f"{name} is the module {first} registered again ({module_name} is"
            f" {owner_name}); a module reused under two names is supported for a"
            " linear, convolution, embedding or norm layer (written with tied_to),"
            f" not here; pass skip=[{name!r}] to leave out the second name: its"
            f" tensors are {first}'s, already written"
        )

    def tie(
        self,
        item: dict,
        parameter: nn.Parameter,
        path: tuple[str, ...],
        quiet: bool = False,
    ) -> bool:
        """Write ``tied_to`` if this layer's weight was written before; say if so.

        ``quiet`` leaves the note to the caller.
        """
        owner = self.owners.get(id(parameter))
        if owner is None:
            return False

        spec_name, module_name = owner
        if not spec_name.endswith(".weight") or spec_name in self.slices:
            raise self.shared_error(_join(path, "weight"), module_name, path)
        item["tied_to"] = spec_name[: -len(".weight")]
        if not quiet:
            self.note(
                f"{_join(path, 'weight')} is {module_name}: written with tied_to and"
                " counted once."
            )
        return True

    def with_activation(self, item: dict, path: tuple[str, ...]) -> dict:
        """Set the activation the caller's globs give ``path``, if any."""
        name = self.spec_prefix(path, item["kind"])
        for pattern, activation in self.activations.items():
            if fnmatch.fnmatchcase(name, pattern):
                self.matched.add(pattern)
                item["activation"] = activation
        return item

    def linear(
        self, module: nn.Module, path: tuple[str, ...], in_out: bool = False
    ) -> dict:
        weight = module.weight
        if in_out:
            in_features, out_features = weight.shape
        else:
            out_features, in_features = weight.shape
        item = {
            "kind": "linear",
            "name": self.layer_name(path, "linear"),
            "in": self.dims.width(int(in_features)),
            "out": self.dims.width(int(out_features)),
            "bias": module.bias is not None,
        }
        if in_out:
            item["layout"] = "in_out"
        self.weight_layer(item, module, path)
        return self.with_activation(item, path)

    def weight_layer(
        self, item: dict, module: nn.Module, path: tuple[str, ...]
    ) -> None:
        """Bind a layer's weight and bias, tying the weight if it is shared."""
        prefix = self.spec_prefix(path, item["kind"])
        bias = getattr(module, "bias", None)
        bias_owner = None if bias is None else self.owners.get(id(bias))
        shares_bias = (
            bias_owner is not None
            and bias_owner[0].endswith(".bias")
            and bias_owner[0] not in self.slices
            and id(module.weight) in self.owners
        )
        tied = self.tie(item, module.weight, path, quiet=shares_bias)
        self.bind(f"{prefix}.weight", path, "weight", module.weight, tied=tied)
        if shares_bias:
            # The spec ties weights only: the layer is written without a bias
            # of its own, and the shared tensor is counted and drawn once.
            item["bias"] = False
            weight_owner = self.owners[id(module.weight)][1]
            self.note(
                f"{_join(path, 'weight')} and {_join(path, 'bias')} are"
                f" {weight_owner} and {bias_owner[1]}: written with tied_to and bias"
                " false, so each tensor is counted and drawn once; /v1/statistics"
                f" models {_where(path)} without a bias, exact when the bias is"
                " drawn zero."
            )
        elif bias is not None:
            self.bind(f"{prefix}.bias", path, "bias", bias)

    def conv(self, module: nn.modules.conv._ConvNd, path: tuple[str, ...]) -> dict:
        spatial = len(module.kernel_size)
        kind = f"conv_transpose{spatial}d" if module.transposed else f"conv{spatial}d"
        kernel = [int(size) for size in module.kernel_size]
        groups = int(module.groups)
        depthwise = groups > 1 and groups == module.in_channels
        item = {
            "kind": kind,
            "name": self.layer_name(path, kind),
            "in": self.dims.width(int(module.in_channels)),
            "out": self.dims.width(int(module.out_channels)),
            "kernel_size": kernel[0] if len(set(kernel)) == 1 else kernel,
            "bias": module.bias is not None,
        }
        if groups > 1:
            item["groups"] = self.dims.width(groups) if depthwise else groups
        self.weight_layer(item, module, path)
        return self.with_activation(item, path)

    def embedding(self, module: nn.Module, path: tuple[str, ...]) -> dict:
        rows, columns = module.weight.shape
        item = {
            "kind": "embedding",
            "name": self.layer_name(path, "embedding"),
            "in": self.dims.rows(int(rows)),
            "out": self.dims.width(int(columns)),
        }
        if getattr(module, "padding_idx", None) is not None:
            self.note(
                f"{_where(path)} has padding_idx {module.padding_idx}:"
                " apply_recommendation and apply_mup_init draw the table, then zero"
                " that row, as nn.Embedding does."
            )
        self.weight_layer(item, module, path)
        return self.with_activation(item, path)

    def norm(
        self, module: nn.Module, path: tuple[str, ...], kind: str, size: int
    ) -> dict:
        item = {
            "kind": kind,
            "name": self.layer_name(path, kind),
            "in": self.dims.width(size),
        }
        if kind != "rms_norm":
            item["bias"] = getattr(module, "bias", None) is not None
        self.weight_layer(item, module, path)
        return item

    def norm_layer(self, module: nn.Module, path: tuple[str, ...]) -> dict | None:
        """A residual group's ``norm_layer``, bound, or None for a norm without one."""
        norm = _norm_of(module, path)
        if norm is None:
            return None
        kind, _ = norm
        layer = {"kind": kind, "name": path[-1]}
        if kind != "rms_norm":
            layer["bias"] = getattr(module, "bias", None) is not None
        prefix = ".".join(path)
        self.bind(f"{prefix}.weight", path, "weight", module.weight)
        bias = getattr(module, "bias", None)
        if bias is not None:
            self.bind(f"{prefix}.bias", path, "bias", bias)
        self.check_leaf(module, path)
        return layer

    def multihead_attention(
        self, module: nn.MultiheadAttention, path: tuple[str, ...]
    ) -> dict:
        where = _where(path)
        if module.bias_k is not None or module.bias_v is not None:
            raise ValueError(
                f"{where} (nn.MultiheadAttention) was built with add_bias_kv=True:"
                " its bias_k and bias_v have no place in the spec language; build it"
                f" without add_bias_kv{_skip_hint(path)}"
            )
        has_bias = module.in_proj_bias is not None
        if has_bias != (module.out_proj.bias is not None):
            raise ValueError(
                f"{where}: in_proj_bias and out_proj.bias must both exist or both be"
                " None (the spec's attention has one bias flag); set them alike"
            )

        embed = int(module.embed_dim)
        prefix = self.spec_prefix(path, "attention")
        name = self.layer_name(path, "attention")
        if module._qkv_same_embed_dim:
            item = {
                "kind": "attention",
                "name": name,
                "d_model": self.dims.width(embed),
                "n_heads": int(module.num_heads),
                "fused_qkv": True,
                "bias": has_bias,
            }
            self.bind(
                f"{prefix}.qkv.weight", path, "in_proj_weight", module.in_proj_weight
            )
            if has_bias:
                self.bind(
                    f"{prefix}.qkv.bias", path, "in_proj_bias", module.in_proj_bias
                )
            self.note(
                "The spec names nn.MultiheadAttention's in_proj_weight qkv.weight and"
                " out_proj.weight o.weight: parameter_names maps them."
            )
        else:
            layers = []
            sources = (
                ("q", module.q_proj_weight, embed),
                ("k", module.k_proj_weight, int(module.kdim)),
                ("v", module.v_proj_weight, int(module.vdim)),
            )
            for index, (suffix, weight, width) in enumerate(sources):
                layers.append(
                    {
                        "kind": "linear",
                        "name": suffix,
                        "in": self.dims.width(width),
                        "out": self.dims.width(embed),
                        "bias": has_bias,
                    }
                )
                self.bind(
                    f"{prefix}.{suffix}.weight", path, f"{suffix}_proj_weight", weight
                )
                if has_bias:
                    rows = (index * embed, (index + 1) * embed)
                    self.bind(
                        f"{prefix}.{suffix}.bias",
                        path,
                        "in_proj_bias",
                        module.in_proj_bias,
                        rows,
                    )
            layers.append(
                {
                    "kind": "linear",
                    "name": "o",
                    "in": self.dims.width(embed),
                    "out": self.dims.width(embed),
                    "bias": has_bias,
                }
            )
            item = {"kind": "sequential", "name": name, "layers": layers}
            self.note(
                f"{where} has key or value sizes other than embed_dim, which the"
                " spec's attention cannot say: it is written as four linear layers q,"
                " k, v and o, so a residual branch counts it as four layers and µP"
                " gives it no attention scale."
            )

        out = module.out_proj
        self.bind(f"{prefix}.o.weight", path, "out_proj.weight", out.weight)
        if has_bias:
            self.bind(f"{prefix}.o.bias", path, "out_proj.bias", out.bias)
        return item

    # --- blocks recognised by their structure ---

    def composite(self, module: nn.Module, path: tuple[str, ...]) -> list[dict] | None:
        """Items of a recognised block (attention, MLP, residual), else None."""
        if self.skip and any(self.touches_skip(module, path)):
            return None

        if isinstance(module, nn.TransformerEncoderLayer):
            return self.transformer_layer(
                module, path, (("norm1", "self_attn"), ("norm2", None))
            )
        if isinstance(module, nn.TransformerDecoderLayer):
            return self.transformer_layer(
                module,
                path,
                (("norm1", "self_attn"), ("norm2", "multihead_attn"), ("norm3", None)),
            )
        item = self.gpt2_attention(module, path)
        if item is None:
            item = self.projected_attention(module, path)
        if item is None:
            item = self.gated_mlp(module, path)
        if item is None:
            item = self.gpt2_mlp(module, path)
        if item is not None:
            return [item]
        for family, pairs in _PRE_NORM_BLOCKS:
            items = self.pre_norm_block(module, path, family, pairs)
            if items is not None:
                return items
        return None

    def touches_skip(self, module: nn.Module, path: tuple[str, ...]) -> Iterable[bool]:
        for name, _ in module.named_modules():
            yield self.skip_matches(_join(path, name))
        for name, _ in module.named_parameters(remove_duplicate=False):
            yield self.skip_matches(_join(path, name))

    def skip_matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.skip)

    def gpt2_attention(self, module: nn.Module, path: tuple[str, ...]) -> dict | None:
        """GPT-2's attention: c_attn (d → 3d) and c_proj (d → d), both Conv1D."""
        c_attn = getattr(module, "c_attn", None)
        c_proj = getattr(module, "c_proj", None)
        heads = getattr(module, "num_heads", getattr(module, "n_head", None))
        if not (_is_conv1d(c_attn) and _is_conv1d(c_proj)):
            return None
        if _children_with_parameters(module) != {"c_attn", "c_proj"}:
            return None
        width = int(c_proj.nf)
        if c_attn.weight.shape != (width, 3 * width) or c_proj.weight.shape[0] != width:
            return None
        has_bias = c_attn.bias is not None
        if (
            not isinstance(heads, int)
            or width % heads
            or has_bias != (c_proj.bias is not None)
        ):
            if not isinstance(heads, int):
                self.note(
                    f"{_where(path)} has c_attn and c_proj but no num_heads: written as"
                    " two linear layers, so µP gives it no attention scale."
                )
            return None

        prefix = self.spec_prefix(path, "attention")
        for suffix, child, attribute in (
            ("qkv", c_attn, "c_attn"),
            ("o", c_proj, "c_proj"),
        ):
            self.bind(
                f"{prefix}.{suffix}.weight", path, f"{attribute}.weight", child.weight
            )
            if has_bias:
                self.bind(
                    f"{prefix}.{suffix}.bias", path, f"{attribute}.bias", child.bias
                )
        self.note(
            "The spec names GPT-2's c_attn qkv and the attention's c_proj o:"
            " parameter_names maps them."
        )
        return {
            "kind": "attention",
            "name": self.layer_name(path, "attention"),
            "d_model": self.dims.width(width),
            "n_heads": heads,
            "fused_qkv": True,
            "bias": has_bias,
            "layout": "in_out",
        }

    def projected_attention(
        self, module: nn.Module, path: tuple[str, ...]
    ) -> dict | None:
        """Llama's attention: nn.Linear q_proj, k_proj, v_proj, o_proj, and head_dim.

        Grouped-query attention (Ainslie et al. 2023) when k and v have fewer
        heads than q; the head counts are the projections' sizes over head_dim.
        """
        names = ("q_proj", "k_proj", "v_proj", "o_proj")
        parts = [getattr(module, name, None) for name in names]
        head = getattr(module, "head_dim", None)
        if not all(isinstance(part, nn.Linear) for part in parts):
            return None
        if _children_with_parameters(module) != set(names) or not isinstance(head, int):
            return None
        query, key, value, out = parts
        d_model = query.in_features
        biases = {part.bias is not None for part in parts}
        shapes_agree = (
            key.in_features == value.in_features == d_model
            and key.out_features == value.out_features
            and out.in_features == query.out_features
            and out.out_features == d_model
        )
        heads, kv_heads = query.out_features // head, key.out_features // head
        if not shapes_agree or len(biases) != 1 or head < 1:
            return None
        if query.out_features % head or key.out_features % head or heads % kv_heads:
            return None

        prefix = self.spec_prefix(path, "attention")
        for name in names:
            part, suffix = getattr(module, name), name[0]
            self.bind(f"{prefix}.{suffix}.weight", path, f"{name}.weight", part.weight)
            if part.bias is not None:
                self.bind(f"{prefix}.{suffix}.bias", path, f"{name}.bias", part.bias)
        self.note(
            "The spec names an attention's q_proj, k_proj, v_proj and o_proj q, k, v"
            " and o: parameter_names maps them."
        )
        item = {
            "kind": "attention",
            "name": self.layer_name(path, "attention"),
            "d_model": self.dims.width(d_model),
            "n_heads": heads,
            "bias": biases.pop(),
        }
        if kv_heads != heads:
            item["n_kv_heads"] = kv_heads
        if head * heads != d_model:
            item["d_head"] = head
        return item

    def gated_mlp(self, module: nn.Module, path: tuple[str, ...]) -> dict | None:
        """Llama's MLP: down(act(gate(x)) · up(x)), three nn.Linear."""
        parts = [
            getattr(module, name, None)
            for name in ("gate_proj", "up_proj", "down_proj")
        ]
        if not all(isinstance(part, nn.Linear) for part in parts):
            return None
        if _children_with_parameters(module) != {"gate_proj", "up_proj", "down_proj"}:
            return None
        gate, up, down = parts
        d_ff, d_model = gate.weight.shape
        biases = {part.bias is not None for part in parts}
        if up.weight.shape != (d_ff, d_model) or down.weight.shape != (d_model, d_ff):
            return None
        activation = _activation_of(getattr(module, "act_fn", None))
        if len(biases) != 1 or activation is None:
            return None

        prefix = self.spec_prefix(path, "gated_mlp")
        for suffix, part in (("gate", gate), ("up", up), ("down", down)):
            attribute = f"{suffix}_proj"
            self.bind(
                f"{prefix}.{suffix}.weight", path, f"{attribute}.weight", part.weight
            )
            if part.bias is not None:
                self.bind(
                    f"{prefix}.{suffix}.bias", path, f"{attribute}.bias", part.bias
                )
        self.note(
            "The spec names a gated MLP's gate_proj, up_proj and down_proj gate, up"
            " and down: parameter_names maps them."
        )
        item = {
            "kind": "gated_mlp",
            "name": self.layer_name(path, "gated_mlp"),
            "d_model": self.dims.width(int(d_model)),
            "d_ff": self.dims.width(int(d_ff)),
            "bias": biases.pop(),
            "activation": activation,
        }
        return self.with_activation(item, path)

    def gpt2_mlp(self, module: nn.Module, path: tuple[str, ...]) -> dict | None:
        """GPT-2's MLP: c_proj(act(c_fc(x))), whose ``act`` is registered last."""
        if _children_with_parameters(module) != {"c_fc", "c_proj"}:
            return None
        activation = _activation_of(getattr(module, "act", None))
        dense = [
            isinstance(part, nn.Linear) or _is_conv1d(part)
            for part in (module.c_fc, module.c_proj)
        ]
        if activation is None or not all(dense):
            return None

        first = self.walk(module.c_fc, (*path, "c_fc"))
        first[0].setdefault("activation", activation)
        layers = [*first, *self.walk(module.c_proj, (*path, "c_proj"))]
        return {
            "kind": "sequential",
            "name": self.layer_name(path, "mlp"),
            "layers": layers,
        }

    def transformer_layer(
        self,
        module: nn.Module,
        path: tuple[str, ...],
        groups: tuple[tuple[str, str | None], ...],
    ) -> list[dict] | None:
        """nn.TransformerEncoderLayer or DecoderLayer: a residual group per sublayer."""
        placement = "pre" if module.norm_first else "post"
        activation = _activation_of(module.activation)
        items = []
        for norm_name, attention in groups:
            if attention is None:
                first = self.walk(module.linear1, (*path, "linear1"))
                if activation is None:
                    self.note(
                        f"{_where(path)}: its activation is not one the service knows;"
                        " linear1 keeps identity; set another with activations="
                    )
                else:
                    first[0].setdefault("activation", activation)
                layers = [*first, *self.walk(module.linear2, (*path, "linear2"))]
            else:
                layers = self.walk(getattr(module, attention), (*path, attention))
            items.append(
                self.residual(
                    getattr(module, norm_name), (*path, norm_name), placement, layers
                )
            )

        self.residual_blocks[type(module).__name__] = (
            self.residual_blocks.get(type(module).__name__, 0) + 1
        )
        return self.wrap(path, items)

    def pre_norm_block(
        self,
        module: nn.Module,
        path: tuple[str, ...],
        family: str,
        pairs: tuple[tuple[str, str], ...],
    ) -> list[dict] | None:
        """A pre-norm block: x + branch(norm(x)) for each (norm, branch) pair."""
        expected = {name for pair in pairs for name in pair}
        if _children_with_parameters(module) != expected:
            return None
        for norm_name, _ in pairs:
            if _norm_of(getattr(module, norm_name), (*path, norm_name)) is None:
                return None

        items = []
        for norm_name, branch in pairs:
            layers = self.walk(getattr(module, branch), (*path, branch))
            items.append(
                self.residual(
                    getattr(module, norm_name), (*path, norm_name), "pre", layers
                )
            )
        children = ", ".join(name for pair in pairs for name in pair)
        label = f"{family}-style block ({children})"
        self.residual_blocks[label] = self.residual_blocks.get(label, 0) + 1
        return self.wrap(path, items)

    def residual(
        self, norm: nn.Module, path: tuple[str, ...], placement: str, layers: list[dict]
    ) -> dict:
        group: dict[str, Any] = {"kind": "residual", "norm": "none", "layers": layers}
        layer = self.norm_layer(norm, path)
        if layer is None:
            self.note(
                f"{'.'.join(path)} has no parameters: its residual group is written"
                " with norm 'none'."
            )
            return group
        group["norm"] = placement
        group["norm_layer"] = layer
        return group

    def wrap(self, path: tuple[str, ...], items: list[dict]) -> list[dict]:
        """``items`` in a sequential group named after the module (the root: bare)."""
        if not path or not items:
            return items
        return [{"kind": "sequential", "name": path[-1], "layers": items}]

    # --- the end ---

    def check_complete(self, module: nn.Module) -> None:
        """Every parameter written or skipped; every glob used; notes on sizes."""
        left = [
            name
            for name, parameter in module.named_parameters()
            if id(parameter) not in self.owners
            and id(parameter) not in self.skipped_ids
        ]
        if left:
            raise TypeError(
                f"{', '.join(left[:5])}: parameters the walk found no layer for;"
                f" spec_from_module reads {SUPPORTED}; pass skip= for them or write"
                " the spec by hand"
            )
        unused = [
            pattern
            for pattern in (*self.skip, *self.activations)
            if pattern not in self.matched
        ]
        if unused:
            raise ValueError(
                f"{unused[0]!r} matches no module of this model (skip= and"
                " activations= take globs over module names such as 'h.*.mlp.c_fc');"
                " correct the glob or drop it"
            )
        self.dims.resolve()
        missing = self.dims.unused()
        if missing:
            raise ValueError(
                f"dims[{missing[0]!r}] = {self.dims.reserved[missing[0]]} names no size"
                " of the module; its widths, table sizes and repeat counts are"
                f" {self.dims.sizes()} (head counts and kernel sizes stay integers);"
                " correct the size or drop the name"
            )

        for name, roles in self.dims.roles.items():
            if name in self.dims.reserved and roles == {"width", "rows"}:
                self.note(
                    f"{name} ({self.dims.used[name]}) is both a width and an"
                    " embedding's row count: a target that changes it changes both."
                )
        for name, (role, others) in self.dims.split.items():
            apart = ", ".join(dict.fromkeys(str(other) for other in others))
            if role == "count":
                self.note(
                    f"{name} ({self.dims.reserved[name]}) names the widths and table"
                    f" sizes of that size, not the repeat counts, which are {apart}:"
                    " a name starting with n_ names a repeat count."
                )
            else:
                self.note(
                    f"{name} ({self.dims.reserved[name]}) names the repeat counts of"
                    f" that size, not the widths and table sizes, which are {apart}:"
                    " µP scales a depth and a width apart."
                )
        if self.residual_blocks:
            found = "; ".join(
                f"{count} × {label}" for label, count in self.residual_blocks.items()
            )
            self.note(f"Residual groups recognised: {found}.")
        else:
            self.note(
                "No residual structure recognised: skip connections in forward() are"
                " not seen, so residual-aware schemes (gpt2, megatron, fixup,"
                " deepnorm) treat every layer as plain."
            )
        if self.skipped:
            self.note(
                f"Left out by skip=: {', '.join(self.skipped)}; initialise them"
                " yourself."
            )
        if self.free_norms:
            self.note(
                f"Left out as they have no parameters: {_norm_list(self.free_norms)};"
                " the spec's norm layers have a weight, so /v1/statistics models no"
                " normalization there and its moments after them are those of the"
                " unnormalized stream."
            )


def _norm_list(norms: Sequence[tuple[tuple[str, ...], str]]) -> str:
    """The norms at ``norms``' paths in words, their copies in a list of blocks
    as one glob: ``h.*.ln_1 (LayerNorm, 12 modules)``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for path, kind in norms:
        glob = ".".join(
            "*" if part.isdigit() and index < len(path) - 1 else part
            for index, part in enumerate(path)
        )
        groups.setdefault((glob, kind), []).append(_where(path))
    return ", ".join(
        f"{names[0]} ({kind})"
        if len(names) == 1
        else f"{glob} ({kind}, {len(names)} modules)"
        for (glob, kind), names in groups.items()
    )


def _join(path: tuple[str, ...], attribute: str) -> str:
    return ".".join((*path, attribute)) if attribute else ".".join(path)


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "the root module"


def _unsupported(
    module: nn.Module, path: tuple[str, ...], parameters: list[str]
) -> TypeError:
    name = ".".join(path)
    pattern = repr(name or parameters[0])
    return TypeError(
        f"{_where(path)} ({type(module).__module__}.{type(module).__qualname__})"
        f" holds parameters {', '.join(parameters)} that no supported layer type"
        f" describes; spec_from_module reads {SUPPORTED}; pass skip=[{pattern}] and"
        " initialize them yourself, or write the spec by hand (examples/*.spec.json)"
    )


def _skip_hint(path: tuple[str, ...]) -> str:
    """The skip= way out for the module at ``path`` (none for the root itself)."""
    if not path:
        return ""
    return f", or pass skip=[{'.'.join(path)!r}] and initialize it yourself"


def _children_with_parameters(module: nn.Module) -> set[str]:
    own = {name for name, value in module._parameters.items() if value is not None}
    children = {
        name
        for name, child in module._modules.items()
        if child is not None and any(True for _ in child.parameters())
    }
    return own | children


def _is_conv1d(module: object) -> bool:
    """Hugging Face's Conv1D, by its structure: x @ W + b with W stored (in, out)."""
    weight = getattr(module, "weight", None)
    return (
        isinstance(module, nn.Module)
        and type(module).__name__ == "Conv1D"
        and isinstance(getattr(module, "nf", None), int)
        and isinstance(weight, nn.Parameter)
        and weight.dim() == 2
        and weight.shape[1] == module.nf
    )


def _norm_of(module: nn.Module, path: tuple[str, ...]) -> tuple[str, int] | None:
    """``(kind, size)`` of a norm with parameters; None for anything else."""
    rms_norm = getattr(nn, "RMSNorm", None)
    if isinstance(module, (nn.LayerNorm, *((rms_norm,) if rms_norm else ()))):
        kind = "layer_norm" if isinstance(module, nn.LayerNorm) else "rms_norm"
        if module.weight is None and getattr(module, "bias", None) is None:
            return None
        shape = tuple(module.normalized_shape)
        if len(shape) != 1:
            raise ValueError(
                f"{_where(path)} ({type(module).__name__}) normalizes over {shape},"
                " and the spec's norms have 1-D parameters; normalize over the last"
                f" dim only{_skip_hint(path)}"
            )
        if module.weight is None:
            raise ValueError(
                f"{_where(path)} has a bias and no weight; the spec's norms have a"
                " weight; give it elementwise_affine=True"
            )
        return kind, int(shape[0])
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return ("batch_norm", int(module.num_features)) if module.affine else None
    if isinstance(module, (nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)):
        if not module.affine:
            return None
        size = (
            module.num_channels
            if isinstance(module, nn.GroupNorm)
            else module.num_features
        )
        return "layer_norm", int(size)
    weight = getattr(module, "weight", None)
    if (
        type(module).__name__.endswith("RMSNorm")
        and isinstance(weight, nn.Parameter)
        and weight.dim() == 1
        and set(dict(module.named_parameters())) == {"weight"}
    ):
        return "rms_norm", int(weight.shape[0])
    return None


def _is_transparent(module: nn.Module) -> bool:
    """A module between a layer and its activation that leaves the pairing alone:
    a norm, a dropout or ``nn.Identity``."""
    kinds = (nn.Identity, nn.modules.dropout._DropoutNd)
    return isinstance(module, kinds) or _is_norm(module)


def _is_norm(module: nn.Module) -> bool:
    """A norm module: layer, RMS, batch, group or instance norm, with or without
    parameters (Hugging Face's RMS norms known by their class name)."""
    rms_norm = getattr(nn, "RMSNorm", None)
    kinds = (
        nn.LayerNorm,
        nn.GroupNorm,
        nn.modules.batchnorm._BatchNorm,
        nn.modules.instancenorm._InstanceNorm,
        *((rms_norm,) if rms_norm is not None else ()),
    )
    return isinstance(module, kinds) or type(module).__name__.endswith("RMSNorm")


def _is_activation_module(module: nn.Module) -> bool:
    return type(module).__module__ == "torch.nn.modules.activation" and not any(
        True for _ in module.parameters()
    )


def _activation_of(thing: object) -> Any:
    """The service's activation for a module or function, else None.

    PyTorch's modules map to the names ``GET /v1/activations`` lists, with
    their parameters (``LeakyReLU(0.2)`` is ``{"name": "leaky_relu",
    "negative_slope": 0.2}``); ``nn.GELU(approximate="tanh")`` and Hugging
    Face's ``gelu_new`` are ``gelu_tanh``.
    """
    if thing is None:
        return None
    if isinstance(thing, nn.LeakyReLU):
        return {"name": "leaky_relu", "negative_slope": float(thing.negative_slope)}
    if isinstance(thing, nn.ELU):
        return {"name": "elu", "alpha": float(thing.alpha)}
    if isinstance(thing, nn.Softplus):
        return {"name": "softplus", "beta": float(thing.beta)}
    if isinstance(thing, nn.GELU):
        return "gelu_tanh" if thing.approximate == "tanh" else "gelu"
    simple = {
        nn.ReLU: "relu",
        nn.SELU: "selu",
        nn.SiLU: "silu",
        nn.Mish: "mish",
        nn.Tanh: "tanh",
        nn.Sigmoid: "sigmoid",
        nn.Softsign: "softsign",
    }
    for kind, name in simple.items():
        if isinstance(thing, kind):
            return name
    if isinstance(thing, nn.Module):
        return _HF_ACTIVATIONS.get(type(thing).__name__)
    try:
        return _FUNCTION_ACTIVATIONS.get(thing)
    except TypeError:
        return None


def _unknown_name(name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    example = f" such as {known[0]!r}" if known else ""
    return f"no tensor named {name!r} among {len(known)}{example}{hint}"


# --- Drawing answers into a module ---------------------------------------------------


@dataclass(frozen=True)
class _Draw:
    """How to draw one spec tensor: the answer's numbers, in one form.

    ``truncation`` is ``(lower, upper, sampler_mean, sampler_std)``: absolute
    bounds and the normal the sampler cuts.
    """

    name: str
    shape: tuple[int, ...]
    layout: str
    tied_to: str | None
    distribution: str
    mean: float
    std: float
    bound: float | None = None
    truncation: tuple[float, float, float, float] | None = None


def apply_recommendation(
    module: nn.Module,
    recommendations: Recommendations,
    *,
    names: Names = None,
    seed: int = 0,
    strict: bool = True,
) -> None:
    """Draw every tensor of ``module`` in place as ``recommendations`` says.

    ``names`` is the :class:`ModuleSpec` the spec came from, or a mapping
    from spec names to module names (a name it lacks is its own); by default
    every spec name is a module name. Each distribution is drawn as the
    service defines it: ``normal`` N(mean, std²); ``uniform`` U(mean − bound,
    mean + bound); ``truncated_normal`` the sampler's N(μ, sampler_std²) cut
    at ``truncation``'s lower and upper bounds (absolute values), with
    ``torch.nn.init.trunc_normal_``, μ being the centre whose cut has the
    answer's mean (the mean itself when the cut is symmetric about it);
    ``orthogonal`` ``torch.nn.init.orthogonal_`` on the tensor as stored (rows
    ``shape[0]``, the rest flattened, as the service counts them) with gain
    std·√max(rows, cols), the answer's ``std`` being the element RMS
    (Saxe et al. 2014); ``constant`` every entry ``mean``. A
    weight stored ``(in, out)`` (``layout`` ``in_out``, GPT-2's Conv1D) is
    drawn in its stored shape. A tied tensor is drawn once, with its owner.
    An ``nn.Embedding``'s ``padding_idx`` row is then zeroed, as PyTorch does.

    Values are drawn on the CPU from one ``torch.Generator`` seeded with
    ``seed``, in the order of the answer, then copied in: the same seed gives
    the same tensors on any device. Everything is checked before anything is
    written: a recommendation naming no module parameter, or a module
    parameter with no recommendation, is a ``ValueError`` naming it unless
    ``strict=False`` (then it is left alone); a shape that differs, or a tie
    the module does not have, is always one.
    """
    if not isinstance(recommendations, Recommendations):
        raise TypeError(
            "recommendations must be the Recommendations of client.recommend(...);"
            f" got {type(recommendations).__name__}"
        )
    draws = [_recommendation_draw(row) for row in recommendations.parameters]
    _draw_into(module, draws, names, seed, strict, _RECOMMENDATION)


def apply_mup_init(
    module: nn.Module,
    target: MupTarget,
    *,
    names: Names = None,
    seed: int = 0,
    strict: bool = True,
    truncation: tuple[float, float] = DEFAULT_TRUNCATION,
) -> None:
    """Draw every tensor of ``module`` as the µP table's ``target`` says.

    Each row's ``init_distribution`` is drawn with its ``init_mean`` and
    ``init_std`` (the std of the values drawn): ``normal``; ``uniform``
    mean ± √3·std; ``orthogonal`` with gain = std·√max(rows, cols);
    ``constant``; ``truncated_normal`` cut at ``truncation`` = (α, β) sampler
    stds about its centre, σ_s = std/s(α, β) and centre = mean − σ_s·m(α, β),
    with m and s the mean and std of N(0, 1) cut to [α, β] (the service's own
    training draws it so; a table made with ``init_scheme`` keeps the base
    scheme's cut, which a row does not carry: pass it here). ``names``,
    ``seed`` and ``strict`` work as in :func:`apply_recommendation`.
    """
    if not isinstance(target, MupTarget):
        raise TypeError(
            "target must be one MupTarget of client.mup_table(...).targets; got"
            f" {type(target).__name__}"
        )
    draws = [_mup_draw(row, truncation) for row in target.parameters]
    _draw_into(module, draws, names, seed, strict, _MUP_INIT)


def _recommendation_draw(row: ParameterRecommendation) -> _Draw:
    truncation = None
    if row.distribution == "truncated_normal":
        if row.truncation is None:
            raise ValueError(
                f"{row.name}: a truncated_normal recommendation without its"
                " truncation; is the service an initlab /v1 service?"
            )
        cut = row.truncation
        centre = _sampler_mean(row.mean, cut.sampler_std, cut.lower, cut.upper)
        truncation = (cut.lower, cut.upper, centre, cut.sampler_std)
    return _Draw(
        name=row.name,
        shape=tuple(row.shape),
        layout=row.layout,
        tied_to=row.tied_to,
        distribution=row.distribution,
        mean=row.mean,
        std=row.std,
        bound=row.bound,
        truncation=truncation,
    )


def _mup_draw(row: MupRow, truncation: tuple[float, float]) -> _Draw:
    if row.init_distribution is None:
        raise ValueError(
            f"{row.name}: the table does not say which distribution to draw"
            " (init_distribution is null: the service predates it); upgrade the"
            " service, or draw the rows yourself"
        )
    cut = None
    if row.init_distribution == "truncated_normal" and row.init_std > 0:
        alpha, beta = (float(value) for value in truncation)
        if not alpha < beta:
            raise ValueError(
                f"truncation must be (α, β) with α < β, in sampler stds; got"
                f" {truncation!r}; the default is {DEFAULT_TRUNCATION}"
            )
        shift, spread = _standard_truncated_moments(alpha, beta)
        sampler_std = row.init_std / spread
        centre = row.init_mean - sampler_std * shift
        cut = (
            centre + sampler_std * alpha,
            centre + sampler_std * beta,
            centre,
            sampler_std,
        )
    return _Draw(
        name=row.name,
        shape=tuple(row.shape),
        layout=row.layout,
        tied_to=row.tied_to,
        distribution=row.init_distribution,
        mean=row.init_mean,
        std=row.init_std,
        truncation=cut,
    )


class _Names:
    """Spec names to module names, row slices and skipped names, from ``names``."""

    def __init__(self, names: Names) -> None:
        self.slices: Mapping[str, tuple[int, int]] = {}
        self.skipped: frozenset[str] = frozenset()
        if names is None:
            self.mapping: Mapping[str, str] = {}
        elif isinstance(names, ModuleSpec):
            self.mapping = names.parameter_names
            self.slices = names.parameter_slices
            self.skipped = frozenset(names.skipped)
        elif isinstance(names, Mapping):
            self.mapping = names
        else:
            raise TypeError(
                "names must be the ModuleSpec of spec_from_module, a mapping from"
                f" spec names to module names, or None; got {type(names).__name__}"
            )

    def module_name(self, spec_name: str) -> str:
        return self.mapping.get(spec_name, spec_name)


@dataclass(frozen=True)
class _Answer:
    """Where the numbers come from, for messages: its rows' name and the fixes.

    ``resize`` is the fix for a shape that differs; ``optional`` says whether
    ``strict=False`` may leave unmatched names alone.
    """

    what: str
    resize: str
    optional: bool


_RECOMMENDATION = _Answer(
    "recommendation",
    "post the spec of this module (spec_from_module) at its own sizes",
    optional=True,
)
_MUP_RESIZE = (
    "build the module at the target's dims (target.dims), or take the target"
    " whose dims are the module's"
)
_MUP_INIT = _Answer("µP row", _MUP_RESIZE, optional=True)
_MUP_GROUPS = _Answer("µP row", _MUP_RESIZE, optional=False)
_RENAME = "pass names= (the ModuleSpec of spec_from_module maps every spec name)"


def _stored_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The stored shape of a tensor in PyTorch's layout: ``in_out`` is (in, out)."""
    if layout == "in_out" and len(shape) == 2:
        return (shape[1], shape[0])
    return shape


def _locate(
    module: nn.Module,
    spec_names: Sequence[tuple[str, tuple[int, ...], str]],
    names: _Names,
    strict: bool,
    answer: _Answer,
) -> dict[str, tuple[str, torch.Tensor, tuple[int, int] | None]]:
    """Find each spec tensor in ``module``: (module name, tensor, rows), checked.

    ``spec_names`` holds (spec name, shape in PyTorch's layout, layout).
    """
    found = {}
    missing = []
    for spec_name, shape, layout in spec_names:
        module_name = names.module_name(spec_name)
        tensor = _parameter(module, module_name)
        if tensor is None:
            missing.append((spec_name, module_name))
            continue
        rows = names.slices.get(spec_name)
        stored = tuple(tensor.shape)
        if rows is not None:
            stored = (rows[1] - rows[0], *stored[1:])
        expected = _stored_shape(shape, layout)
        if stored != expected:
            raise ValueError(
                _shape_message(
                    spec_name,
                    shape,
                    expected,
                    f"{module_name}{_rows_text(rows)}",
                    stored,
                    answer,
                )
            )
        found[spec_name] = (module_name, tensor, rows)

    if missing and strict:
        spec_name, module_name = missing[0]
        known = [name for name, _ in module.named_parameters()]
        close = difflib.get_close_matches(module_name, known, n=1)
        hint = f" (closest: {close[0]!r})" if close else ""
        leave = ", or strict=False to leave them out" if answer.optional else ""
        raise ValueError(
            f"{len(missing)} {answer.what}s name no parameter of the module, first"
            f" {spec_name!r} (looked up as {module_name!r}{hint}); {_RENAME}{leave}"
        )
    return found


def _shape_message(
    spec_name: str,
    shape: tuple[int, ...],
    expected: tuple[int, ...],
    module_name: str,
    stored: tuple[int, ...],
    answer: _Answer,
) -> str:
    """Why a tensor does not fit, and the fix: the layout or the sizes."""
    layout = f" (stored {expected}: layout in_out)" if expected != shape else ""
    if len(stored) == 2 and stored[::-1] == expected:
        fix = (
            "the module stores it transposed, so the spec's layout is wrong; post"
            " the spec of this module (spec_from_module), which sets the layout"
        )
    else:
        fix = answer.resize
    return (
        f"{spec_name}: the {answer.what} has shape {shape}{layout} but the"
        f" module's {module_name} has {stored}; {fix}"
    )


def _rows_text(rows: tuple[int, int] | None) -> str:
    return "" if rows is None else f"[{rows[0]}:{rows[1]}]"


def _check_ties(
    ties: Iterable[tuple[str, str | None]], found: Mapping[str, tuple], answer: _Answer
) -> None:
    """Each (name, tied_to) of the answer must be one tensor in the module."""
    for name, tied_to in ties:
        if tied_to is None or name not in found or tied_to not in found:
            continue
        module_name, tensor, _ = found[name]
        owner_name, owner, _ = found[tied_to]
        if owner is not tensor:
            raise ValueError(
                f"{name}: the {answer.what} ties it to {tied_to}, but the module"
                f" holds two tensors ({module_name} and {owner_name}); tie them in"
                f" the model ({module_name} = {owner_name}) or post a spec without"
                " tied_to"
            )


def _check_covered(
    module: nn.Module, found: Mapping[str, tuple], names: _Names, answer: _Answer
) -> None:
    covered = {id(tensor) for _, tensor, _ in found.values()}
    left = [
        name
        for name, parameter in module.named_parameters()
        if id(parameter) not in covered and name not in names.skipped
    ]
    if left:
        leave = ", or strict=False to leave them as they are" if answer.optional else ""
        raise ValueError(
            f"{len(left)} module parameters have no {answer.what}, first"
            f" {left[0]!r}; ask with the spec of this module (spec_from_module),"
            f" {_RENAME}{leave}"
        )


def _draw_into(
    module: nn.Module,
    draws: Sequence[_Draw],
    names: Names,
    seed: int,
    strict: bool,
    answer: _Answer,
) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module; got {type(module).__name__}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer; got {seed!r}")
    for draw in draws:
        if draw.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"{draw.name}: unknown distribution {draw.distribution!r}; this"
                f" client draws {', '.join(DISTRIBUTIONS)}: upgrade initlab-client"
            )
        if draw.distribution == "orthogonal" and len(draw.shape) < 2:
            raise ValueError(
                f"{draw.name}: an orthogonal init needs a matrix; got shape"
                f" {draw.shape}"
            )

    resolved = _Names(names)
    entries = [(draw.name, draw.shape, draw.layout) for draw in draws]
    found = _locate(module, entries, resolved, strict, answer)
    _check_ties([(draw.name, draw.tied_to) for draw in draws], found, answer)
    if strict:
        _check_covered(module, found, resolved, answer)

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for draw in draws:
            if draw.name not in found or draw.tied_to in found:
                continue
            module_name, tensor, rows = found[draw.name]
            region = tensor if rows is None else tensor[rows[0] : rows[1]]
            dtype = torch.float64 if tensor.dtype == torch.float64 else torch.float32
            values = _sample(draw, tuple(region.shape), generator, dtype)
            region.copy_(values)
            _zero_padding(module, module_name, tensor)


def _sample(
    draw: _Draw, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype
) -> torch.Tensor:
    """A CPU tensor of ``shape`` drawn as ``draw`` says (see apply_recommendation)."""
    values = torch.empty(shape, dtype=dtype)
    distribution = draw.distribution
    if distribution == "constant" or (distribution != "orthogonal" and draw.std == 0):
        return values.fill_(draw.mean)

    if distribution == "normal":
        return values.normal_(draw.mean, draw.std, generator=generator)
    if distribution == "uniform":
        bound = draw.bound if draw.bound is not None else math.sqrt(3.0) * draw.std
        return values.uniform_(
            draw.mean - bound, draw.mean + bound, generator=generator
        )
    if distribution == "truncated_normal":
        lower, upper, centre, sampler_std = draw.truncation
        return nn.init.trunc_normal_(
            values, mean=centre, std=sampler_std, a=lower, b=upper, generator=generator
        )

    rows = shape[0]
    columns = math.prod(shape) // rows
    gain = draw.std * math.sqrt(max(rows, columns))
    nn.init.orthogonal_(values, gain=gain, generator=generator)
    return values.add_(draw.mean) if draw.mean else values


def _zero_padding(module: nn.Module, module_name: str, tensor: torch.Tensor) -> None:
    owner_name, _, attribute = module_name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    embedding = isinstance(owner, (nn.Embedding, nn.EmbeddingBag))
    if attribute == "weight" and embedding and owner.padding_idx is not None:
        tensor[owner.padding_idx].zero_()


def _parameter(module: nn.Module, name: str) -> torch.Tensor | None:
    try:
        return module.get_parameter(name)
    except AttributeError:
        return None


def _sampler_mean(mean: float, std: float, lower: float, upper: float) -> float:
    """The centre μ of N(μ, std²) whose cut to [lower, upper] has mean ``mean``.

    The truncated mean μ + σ·m((lower − μ)/σ, (upper − μ)/σ) rises with μ
    (Johnson, Kotz & Balakrishnan 1994, "Continuous Univariate
    Distributions", vol. 1, §13.10.1), so μ is found by bisection; a cut
    symmetric about ``mean`` has μ = ``mean`` exactly.
    """
    if math.isclose(lower + upper, 2 * mean, rel_tol=0, abs_tol=1e-12 * std):
        return mean

    def truncated_mean(centre: float) -> float:
        shift, _ = _standard_truncated_moments(
            (lower - centre) / std, (upper - centre) / std
        )
        return centre + std * shift

    low, high = lower - 20 * std, upper + 20 * std
    for _ in range(200):
        middle = 0.5 * (low + high)
        if truncated_mean(middle) < mean:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def _standard_truncated_moments(alpha: float, beta: float) -> tuple[float, float]:
    """Mean and std of N(0, 1) cut to [α, β].

    m = (φ(α) − φ(β))/Z and s = √(1 + (αφ(α) − βφ(β))/Z − m²),
    Z = Φ(β) − Φ(α) (Johnson, Kotz & Balakrishnan 1994, §13.10.1). Z is taken
    from the tail nearer the cut (erfc), so a cut far out in one tail keeps
    its digits; a cut whose mass underflows returns the nearer bound.
    """
    root2 = math.sqrt(2.0)
    if alpha > 0:
        mass = 0.5 * (math.erfc(alpha / root2) - math.erfc(beta / root2))
    else:
        mass = 0.5 * (math.erfc(-beta / root2) - math.erfc(-alpha / root2))
    if mass <= 0:
        return (alpha if alpha > 0 else beta), 0.0

    def density(x: float) -> float:
        return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

    def weighted(x: float) -> float:
        return 0.0 if math.isinf(x) else x * density(x)

    shift = (density(alpha) - density(beta)) / mass
    variance = 1.0 + (weighted(alpha) - weighted(beta)) / mass - shift * shift
    return shift, math.sqrt(max(variance, 0.0))


# --- µP in an optimizer and a forward pass -----------------------------------------


def mup_param_groups(
    target: MupTarget,
    module: nn.Module,
    *,
    names: Names = None,
    strict: bool = True,
) -> list[dict[str, Any]]:
    """``torch.optim`` parameter groups for ``module`` from one µP target.

    One group per ``target.param_groups`` entry, in order: ``{"params":
    [tensors], "lr": ..., "weight_decay": ...}`` and ``"eps"`` (Adam's ε)
    when the table gives one, so ``torch.optim.AdamW(groups)`` trains every
    tensor at its row's learning rate. ``names`` works as in
    :func:`apply_recommendation`. Checked before returning, each a
    ``ValueError`` naming the tensor: every row names a module parameter of
    its shape and its ``lr`` and ``weight_decay`` equal its group's; a tied
    row is the same tensor as its owner; spec tensors stored in one module
    tensor (an ``nn.MultiheadAttention``'s ``in_proj_bias``) are in one
    group; and every module parameter is in exactly one group. A parameter
    the table has no row for (one that ``skip`` left out of the spec, or a
    module the spec does not describe) would not be trained: with
    ``strict=False`` the groups of the table's rows are returned, and the
    group for the rest is yours to add.
    """
    if not isinstance(target, MupTarget):
        raise TypeError(
            "target must be one MupTarget of client.mup_table(...).targets; got"
            f" {type(target).__name__}"
        )
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module; got {type(module).__name__}"
        )

    resolved = _Names(names)
    rows = {row.name: row for row in target.parameters}
    entries = [(row.name, tuple(row.shape), row.layout) for row in rows.values()]
    found = _locate(module, entries, resolved, True, _MUP_GROUPS)
    _check_ties([(row.name, row.tied_to) for row in rows.values()], found, _MUP_GROUPS)
    placed: dict[int, tuple[int, str]] = {}
    groups = []
    for index, group in enumerate(target.param_groups):
        tensors = []
        for name in group.params:
            row = rows.get(name)
            if row is None:
                raise ValueError(
                    f"param_groups[{index}] names {name!r}, which has no row in the"
                    " table; is the answer complete?"
                )
            _check_group(row, group, index)
            tensor = found[name][1]
            where = placed.get(id(tensor))
            if where is not None and where[0] != index:
                raise ValueError(
                    f"{name} and {where[1]} are one module tensor"
                    f" ({found[name][0]}) but the table puts them in groups"
                    f" {where[0]} and {index}, with other learning rates; store them"
                    " apart in the model, or give them one learning rate"
                )
            if where is None:
                placed[id(tensor)] = (index, name)
                tensors.append(tensor)
        if tensors:
            entry: dict[str, Any] = {
                "params": tensors,
                "lr": group.lr,
                "weight_decay": group.weight_decay,
            }
            if group.eps is not None:
                entry["eps"] = group.eps
            groups.append(entry)

    unplaced = [
        row.name
        for row in target.parameters
        if row.tied_to is None and id(found[row.name][1]) not in placed
    ]
    if unplaced:
        raise ValueError(
            f"{unplaced[0]} is in no param group of the table; is the answer complete?"
        )
    if strict:
        _check_grouped(module, placed, resolved)
    return groups


def _check_grouped(
    module: nn.Module, placed: Mapping[int, tuple[int, str]], names: _Names
) -> None:
    """Every parameter of ``module`` in a group, else a ValueError naming them."""
    left = [
        name
        for name, parameter in module.named_parameters()
        if id(parameter) not in placed
    ]
    if not left:
        return

    listed = ", ".join(left[:8]) + (
        f" and {len(left) - 8} more" if len(left) > 8 else ""
    )
    skipped = [name for name in left if name in names.skipped]
    why = (
        f"{'all' if len(skipped) == len(left) else len(skipped)} left out of the"
        " spec by skip="
        if skipped
        else "the table has no row for them"
    )
    raise ValueError(
        f"{len(left)} of the module's {sum(1 for _ in module.parameters())}"
        f" parameters would be in no group, so the optimizer would not train"
        f" them: {listed} ({why}); give them a group of your own and pass"
        " strict=False, which returns the groups of the table's rows only:"
        " groups = mup_param_groups(target, module, names=..., strict=False) +"
        " [{'params': [...], 'lr': ...}]"
    )


def _check_group(row: MupRow, group: MupParamGroup, index: int) -> None:
    if row.lr != group.lr or row.weight_decay != group.weight_decay:
        raise ValueError(
            f"{row.name}: its row gives lr {row.lr!r} and weight decay"
            f" {row.weight_decay!r} but param_groups[{index}] gives {group.lr!r}"
            f" and {group.weight_decay!r}; the answer contradicts itself, so"
            " report it with its request id"
        )


@dataclass(frozen=True)
class MupMultipliers:
    """The forward-pass constants of one µP target, and where each goes.

    - ``input_multiplier``: multiply the embeddings' output (the sum of token
      and position embeddings) by it.
    - ``output_multiplier``: multiply the readout's input by it, so the
      logits are ``output_multiplier · (W x) + b`` (mup's ``MuReadout``);
      ``None`` without a readout.
    - ``attention_scale``: pass it as ``scale`` to
      ``torch.nn.functional.scaled_dot_product_attention`` in every attention
      layer (µP's 1/d_head in place of 1/√d_head); ``None`` when the layers
      differ or there is no attention: then ``attention_scales`` gives each
      layer's, by the spec's layer name.
    - ``residual_multiplier``: multiply every residual branch's output by it
      before the addition (``x + m · f(x)``); 1.0 without a depth rule.
    - ``forward_multipliers``: every tensor whose output the table multiplies
      by something other than 1, by spec name (the readout's weight is
      ``output_multiplier``'s).
    """

    input_multiplier: float
    output_multiplier: float | None
    attention_scale: float | None
    attention_scales: Mapping[str, float]
    residual_multiplier: float
    forward_multipliers: Mapping[str, float]


def mup_multipliers(target: MupTarget) -> MupMultipliers:
    """The :class:`MupMultipliers` of one target of a µP table."""
    if not isinstance(target, MupTarget):
        raise TypeError(
            "target must be one MupTarget of client.mup_table(...).targets; got"
            f" {type(target).__name__}"
        )
    return MupMultipliers(
        input_multiplier=target.input_multiplier,
        output_multiplier=target.output_multiplier,
        attention_scale=target.attention_scale,
        attention_scales=types.MappingProxyType(
            {layer.layer: layer.scale for layer in target.attention}
        ),
        residual_multiplier=target.residual_multiplier,
        forward_multipliers=types.MappingProxyType(
            {
                row.name: row.forward_multiplier
                for row in target.parameters
                if row.forward_multiplier != 1.0
            }
        ),
    )
