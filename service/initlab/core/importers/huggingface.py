"""Specs from Hugging Face ``config.json`` files: gpt2, llama, mistral, bert, t5, vit.

Each builder reads the config as the model type's transformers config class
does (its keys, its aliases in ``attribute_map``, its defaults) and writes the
modules of the transformers model class the head names, in the order that
class registers them, so the spec counts the same parameters with the same
shapes. The layouts are those of transformers 5.25 (``modeling_gpt2``,
``modeling_llama``, ``modeling_mistral``, ``modeling_bert``, ``modeling_t5``,
``modeling_vit``); ``tests/fixtures/reference/import_huggingface.json`` holds
the counts and shapes transformers itself gives for the configs in
``examples/hf/``.

The spec language names attention projections ``q``, ``k``, ``v``, ``o`` (or a
fused ``qkv``) and gated-MLP projections ``gate``, ``up``, ``down``; every other
name is transformers'. Each import's notes give the renames, the head built and
anything written differently from the model (T5's relative position bias, ViT's
class token).

The sizes that define a model (its width, depth, heads, feed-forward width and
vocabulary) are required; every other key takes its config class's default, so
a config missing ``n_embd`` is refused rather than silently built at 768.
Nothing here imports torch or transformers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from initlab.core.errors import FieldProblem, InvalidInput, closest, json_value
from initlab.core.importers import SCALE_ROLES, ImportedSpec

#: transformers' activation names (``activations.ACT2CLS``) that initlab has,
#: with the spec activation each one is. gelu_new, gelu_fast and
#: gelu_pytorch_tanh all compute 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
ACTIVATIONS: dict[str, str | dict[str, Any]] = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_python_tanh": "gelu_tanh",
    "silu": "silu",
    "swish": "silu",
    "relu": "relu",
    "leaky_relu": {"name": "leaky_relu", "negative_slope": 0.01},
    "mish": "mish",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "linear": "identity",
}


@dataclass(frozen=True)
class HuggingFaceModelType:
    """What one ``model_type`` imports to.

    ``heads`` maps each head the type allows to the transformers class whose
    parameters it reproduces; ``default_head`` is the one ``"default"`` builds
    (a ViT config builds ``classifier`` instead of ``pooler`` when its
    ``architectures`` lists ViTForImageClassification). ``required`` lists the
    keys a config must give; the others take the config class's defaults.
    """

    description: str
    heads: Mapping[str, str]
    default_head: str
    required: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "heads": dict(self.heads),
            "default_head": self.default_head,
            "required": list(self.required),
        }


HUGGINGFACE_MODEL_TYPES: dict[str, HuggingFaceModelType] = {
    "gpt2": HuggingFaceModelType(
        "GPT-2: pre-norm decoder, fused attention and MLP stored as Conv1D"
        " (in, out), learned positions, LM head tied to wte.",
        {
            "lm": "GPT2LMHeadModel",
            "classifier": "GPT2ForSequenceClassification",
            "none": "GPT2Model",
        },
        "lm",
        ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"),
    ),
    "llama": HuggingFaceModelType(
        "Llama: RMS-norm pre-norm decoder, grouped-query attention, gated SiLU"
        " MLP, rotary positions (no parameters).",
        {
            "lm": "LlamaForCausalLM",
            "classifier": "LlamaForSequenceClassification",
            "none": "LlamaModel",
        },
        "lm",
        (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
        ),
    ),
    "mistral": HuggingFaceModelType(
        "Mistral: Llama's layout without attention or MLP biases, grouped-query"
        " attention (8 key/value heads by default).",
        {
            "lm": "MistralForCausalLM",
            "classifier": "MistralForSequenceClassification",
            "none": "MistralModel",
        },
        "lm",
        (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
        ),
    ),
    "bert": HuggingFaceModelType(
        "BERT: post-norm encoder with word, position and token-type embeddings;"
        " by default BertModel with its tanh pooler.",
        {
            "pooler": "BertModel",
            "lm": "BertForMaskedLM",
            "classifier": "BertForSequenceClassification",
            "none": "BertModel",
        },
        "pooler",
        (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
        ),
    ),
    "t5": HuggingFaceModelType(
        "T5: RMS-norm pre-norm encoder-decoder without biases, relative position"
        " bias per stack, ReLU or gated-GELU feed-forward, LM head tied to shared"
        " unless tie_word_embeddings is false (T5 v1.1).",
        {"lm": "T5ForConditionalGeneration", "none": "T5Model"},
        "lm",
        ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads"),
    ),
    "vit": HuggingFaceModelType(
        "ViT: patch-embedding convolution, class token and learned positions,"
        " pre-norm encoder; the classifier when architectures lists"
        " ViTForImageClassification, else ViTModel with its pooler.",
        {
            "classifier": "ViTForImageClassification",
            "pooler": "ViTModel",
            "none": "ViTModel",
        },
        "pooler",
        (
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
        ),
    ),
}

_REQUIRED = object()


def import_huggingface(
    config: Mapping[str, Any], head: str = "default"
) -> ImportedSpec:
    """The spec of the model a Hugging Face ``config.json`` describes.

    ``config`` is the parsed file; ``head`` is ``"default"`` (the model as it
    is commonly counted, see :data:`HUGGINGFACE_MODEL_TYPES`), ``"none"`` (the
    backbone) or one of the heads the model type allows. Raises
    :class:`~initlab.core.errors.InvalidInput` listing every problem, at
    ``("config", <key>)`` or ``("head",)``.
    """
    if not isinstance(config, Mapping):
        raise InvalidInput.at(
            ("config",),
            f"config must be the JSON object of a config.json; got {_got(config)}",
            value=config,
            allowed="a JSON object",
        )
    model_type = _model_type(config)
    kind = HUGGINGFACE_MODEL_TYPES[model_type]
    reader = _ConfigReader(config, model_type, _ALIASES.get(model_type, {}))
    built_head = _head(head, model_type, kind, reader)

    build = _BUILDERS[model_type](reader, built_head)
    if reader.problems:
        raise InvalidInput(reader.problems)

    notes = (
        f"Head {json_value(built_head)}: the parameters of transformers'"
        f" {kind.heads[built_head]}.",
        *reader.notes,
        *build.notes,
    )
    dims = build.dims
    # Without a d_head dim, the spec's attention splits d_model evenly.
    d_head = dims.get("d_head", dims["d_model"] // dims["n_heads"])
    return ImportedSpec(
        spec={"dims": dims, "layers": build.layers},
        source=f"huggingface:{model_type}",
        scale_dims={
            **{role: dims.get(role, d_head) for role in SCALE_ROLES},
            # Grouped-query attention and a decoder of its own depth add sizes
            # a user scales too.
            **{name: dims[name] for name in _EXTRA_SCALE_DIMS if name in dims},
        },
        derived_dims=() if "d_head" in dims else ("d_head",),
        notes=notes,
    )


_EXTRA_SCALE_DIMS = ("n_kv_heads", "n_decoder_layer")


def _model_type(config: Mapping[str, Any]) -> str:
    supported = ", ".join(HUGGINGFACE_MODEL_TYPES)
    if "model_type" not in config:
        raise InvalidInput.at(
            ("config", "model_type"),
            "missing model_type: a config.json names its model type (for example"
            f' "model_type": "gpt2"); supported: {supported}',
            allowed=supported,
        )

    model_type = config["model_type"]
    if isinstance(model_type, str) and model_type in HUGGINGFACE_MODEL_TYPES:
        return model_type
    message = f"unsupported model_type {json_value(model_type)}; supported: {supported}"
    suggestion = closest(model_type, HUGGINGFACE_MODEL_TYPES)
    if suggestion is not None:
        message += f"; did you mean {json_value(suggestion)}?"
    elif isinstance(model_type, str):
        message += (
            "; a model of another type can be written as a spec by hand, or built"
            " from the transformer preset"
        )
    else:
        message += f" (model_type must be a string; got {_json_type(model_type)})"
    raise InvalidInput.at(
        ("config", "model_type"), message, value=model_type, allowed=supported
    )


def _head(
    head: object, model_type: str, kind: HuggingFaceModelType, reader: _ConfigReader
) -> str:
    """The head to build: ``head`` itself, or the type's default for "default".

    A head the type does not have is a problem recorded on ``reader``.
    """
    allowed = ", ".join(("default", *kind.heads))
    default = kind.default_head
    if model_type == "vit" and reader.lists_architecture("ViTForImageClassification"):
        default = "classifier"
    if head == "default":
        return default
    if isinstance(head, str) and head in kind.heads:
        return head

    if not isinstance(head, str):
        message = f"head must be a string; got {_got(head)}"
    else:
        message = f"a {model_type} model has no head {json_value(head)}"
        suggestion = closest(head, ("default", *kind.heads))
        if suggestion is not None:
            message += f"; did you mean {json_value(suggestion)}?"
    reader.problems.append(
        FieldProblem(
            ("head",),
            f"{message}; the {model_type} heads are {allowed} (default builds"
            f" {json_value(default)} for this config)",
            value=head,
            allowed=allowed,
        )
    )
    # Read the config as for the default head, so one answer lists every problem.
    return default


# --- Reading a config as transformers' config classes do ---------------------

#: transformers' ``attribute_map`` of each config class: another key a
#: config.json may use for a size (GPT2Config reads hidden_size as n_embd).
_ALIASES: dict[str, dict[str, str]] = {
    "gpt2": {
        "n_embd": "hidden_size",
        "n_positions": "max_position_embeddings",
        "n_head": "num_attention_heads",
        "n_layer": "num_hidden_layers",
    },
    "t5": {
        "d_model": "hidden_size",
        "num_heads": "num_attention_heads",
        "num_layers": "num_hidden_layers",
        "d_kv": "head_dim",
    },
}


class _ConfigReader:
    """Reads config keys with their config class's defaults, collecting problems.

    Every reader method returns ``None`` on a problem (recorded with its path
    ``("config", key)``), so one answer lists everything wrong with a config.
    """

    def __init__(
        self, config: Mapping[str, Any], model_type: str, aliases: Mapping[str, str]
    ) -> None:
        self.config = config
        self.model_type = model_type
        self.aliases = aliases
        self.problems: list[FieldProblem] = []
        self.notes: list[str] = []

    def problem(self, key: str, message: str, value: Any = None, allowed=None) -> None:
        self.problems.append(FieldProblem(("config", key), message, value, allowed))

    def lookup(self, key: str) -> tuple[str, Any]:
        """The key the config gives (``key`` or its alias) and its value.

        The value is ``_REQUIRED`` when neither is given; a config giving both
        with different values is a problem (transformers would keep one of them
        silently, depending on the order of the keys).
        """
        alias = self.aliases.get(key)
        if key in self.config:
            if alias in self.config and self.config[alias] != self.config[key]:
                self.problem(
                    alias,
                    f"{alias} is {self.model_type}'s other name for {key}, and the"
                    f" two disagree: {key} = {json_value(self.config[key])}, {alias}"
                    f" = {json_value(self.config[alias])}; remove {alias} or give it"
                    f" the value of {key}",
                    value=self.config[alias],
                )
            return key, self.config[key]
        if alias is not None and alias in self.config:
            return alias, self.config[alias]

        return key, _REQUIRED

    def missing(self, key: str, what: str) -> None:
        required = ", ".join(HUGGINGFACE_MODEL_TYPES[self.model_type].required)
        alias = self.aliases.get(key)
        also = f" (or its other name {alias})" if alias else ""
        self.problem(
            key,
            f"missing {key} ({what}): a {self.model_type} config must give it{also};"
            f" the {self.model_type} keys required are {required}; copy it from"
            " the model's config.json",
            allowed="an integer ≥ 1",
        )

    def size(
        self, key: str, what: str, default: Any = _REQUIRED, nullable: bool = False
    ) -> int | None:
        """A positive integer; ``default`` when absent, or null if ``nullable``.

        ``nullable`` keys are the ones the config class types ``int | None``
        and fills in when null (GPT2Config's n_inner, LlamaConfig's head_dim).
        """
        name, value = self.lookup(key)
        if value is None and nullable:
            return default
        if value is _REQUIRED:
            if default is _REQUIRED:
                self.missing(key, what)
                return None
            return default

        if isinstance(value, bool) or not isinstance(value, int):
            hint = ""
            if isinstance(value, float) and value.is_integer():
                hint = f" (write {int(value)}, without the decimal point)"
            self.problem(
                name,
                f"{name} ({what}) must be a positive integer; got {_got(value)}{hint}",
                value=value,
                allowed="an integer ≥ 1",
            )
            return None
        if value < 1:
            self.problem(
                name,
                f"{name} ({what}) must be a positive integer; got {value}; give"
                " the value from the model's config.json",
                value=value,
                allowed="an integer ≥ 1",
            )
            return None

        return value

    def flag(self, key: str, what: str, default: bool) -> bool | None:
        name, value = self.lookup(key)
        if value is _REQUIRED:
            return default
        if not isinstance(value, bool):
            self.problem(
                name,
                f"{name} ({what}) must be true or false; got {_got(value)};"
                f" {self.model_type}'s default is {json_value(default)}",
                value=value,
                allowed="true, false",
            )
            return None

        return value

    def activation(self, key: str, default: str) -> str | dict[str, Any] | None:
        """A transformers activation name, as the spec activation it is."""
        name, value = self.lookup(key)
        if value is _REQUIRED:
            value = default
        spec_activation = _activation(value)
        if spec_activation is None:
            self.problem(
                name,
                _unknown_activation_message(name, value),
                value=value,
                allowed=", ".join(ACTIVATIONS),
            )

        return spec_activation

    def refuse_true(self, key: str, what: str) -> None:
        """Refuse a flag that adds modules the importer does not build."""
        value = self.flag(key, what, False)
        if value:
            self.problem(
                key,
                f"{key} = true ({what}) is not supported: the importer builds the"
                f" {self.model_type} model without those modules; set {key} to false"
                " or write the spec by hand",
                value=value,
                allowed="false",
            )

    def lists_architecture(self, name: str) -> bool:
        architectures = self.config.get("architectures")
        if architectures is None:
            return False
        if not isinstance(architectures, list) or not all(
            isinstance(each, str) for each in architectures
        ):
            self.problem(
                "architectures",
                "architectures must be a list of transformers class names (as"
                f' ["{name}"]); got {json_value(architectures)}',
                value=architectures,
                allowed="a list of strings",
            )
            return False

        return name in architectures

    def labels(self) -> int | None:
        """The classifier's label count: len(id2label), else num_labels, else 2.

        PreTrainedConfig keeps num_labels = 2 when neither is given, and refuses
        a num_labels that disagrees with id2label.
        """
        id2label = self.config.get("id2label")
        num_labels = self.config.get("num_labels")
        if id2label is not None and not isinstance(id2label, Mapping):
            self.problem(
                "id2label",
                "id2label must map label indices to names"
                f' ({{"0": "tench", ...}}); got {json_value(id2label)}',
                value=id2label,
                allowed="an object",
            )
            return None
        if id2label is not None:
            count = len(id2label)
            if num_labels is not None and num_labels != count:
                self.problem(
                    "num_labels",
                    f"num_labels = {json_value(num_labels)} disagrees with id2label,"
                    f" which names {count} label{'s' if count != 1 else ''}; remove"
                    " num_labels or make the two agree",
                    value=num_labels,
                    allowed=str(count),
                )
                return None
            if count == 0:
                self.problem(
                    "id2label",
                    "id2label names no label, so the classifier would have no"
                    " output; give the labels, or use head 'none'",
                    value=id2label,
                )
                return None
            return count
        if num_labels is None:
            self.notes.append(
                "The config gives neither id2label nor num_labels: the classifier"
                " has transformers' default of 2 labels."
            )
            return 2

        return self.size("num_labels", "the classifier's label count")


def _activation(value: object) -> str | dict[str, Any] | None:
    if isinstance(value, str) and value in ACTIVATIONS:
        return ACTIVATIONS[value]

    return None


def _unknown_activation_message(key: str, value: object) -> str:
    supported = ", ".join(ACTIVATIONS)
    if not isinstance(value, str):
        return (
            f"{key} must be the name of an activation; got {_got(value)};"
            f" supported: {supported}"
        )
    message = f"{key} {json_value(value)} is not an activation initlab has"
    suggestion = closest(value, ACTIVATIONS)
    if suggestion is not None:
        message += f"; did you mean {json_value(suggestion)}?"

    return f"{message}; supported: {supported}"


def _got(value: object) -> str:
    """A value for a message, with its JSON type: ``"768" (a string)``."""
    if value is None:
        return "null"

    return f"{json_value(value)} ({_json_type(value)})"


def _json_type(value: object) -> str:
    """How JSON would call ``value``'s type, for a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"

    return type(value).__name__


# --- Writing spec-language JSON -----------------------------------------------

Size = int | str
Item = dict[str, Any]


def _embedding(name: str, rows: Size, width: Size = "d_model") -> Item:
    return {"kind": "embedding", "name": name, "in": rows, "out": width}


def _linear(name: str, fan_in: Size, fan_out: Size, bias: bool = True, **more) -> Item:
    """A linear layer; ``more`` adds activation, layout or tied_to when not None."""
    layer = {"kind": "linear", "name": name, "in": fan_in, "out": fan_out}
    layer["bias"] = bias

    return layer | {key: value for key, value in more.items() if value is not None}


def _norm(kind: str, name: str) -> Item:
    return {"kind": kind, "name": name, "in": "d_model"}


def _attention(name: str, bias: bool, **more) -> Item:
    """Attention over d_model with n_heads; ``more`` adds n_kv_heads, d_head,
    fused_qkv or layout when not None."""
    layer = {"kind": "attention", "name": name, "d_model": "d_model"}
    layer |= {"n_heads": "n_heads", "bias": bias}

    return layer | {key: value for key, value in more.items() if value is not None}


def _gated_mlp(name: str, activation: Any, bias: bool) -> Item:
    layer = {"kind": "gated_mlp", "name": name, "d_model": "d_model", "d_ff": "d_ff"}

    return layer | {"activation": activation, "bias": bias}


def _mlp(
    names: tuple[str, str], activation: Any, bias: bool = True, **more
) -> list[Item]:
    """Two linear layers d_model → d_ff (then ``activation``) → d_model."""
    first, second = names
    return [
        _linear(first, "d_model", "d_ff", bias, activation=activation, **more),
        _linear(second, "d_ff", "d_model", bias, **more),
    ]


def _residual(
    norm: str, norm_layer: tuple[str, str], *layers: Item, name: str | None = None
) -> Item:
    """x + f(x) with ``norm`` ``pre`` or ``post``; ``norm_layer`` is (kind, name)."""
    group = {"kind": "residual"} if name is None else {"kind": "residual", "name": name}
    norm_kind, norm_name = norm_layer
    group["norm"] = norm
    group["norm_layer"] = {"kind": norm_kind, "name": norm_name}

    return group | {"layers": list(layers)}


def _repeat(name: str, count: Size, *layers: Item) -> Item:
    return {"kind": "repeat", "name": name, "count": count, "layers": list(layers)}


def _sequential(name: str, *layers: Item) -> Item:
    return {"kind": "sequential", "name": name, "layers": list(layers)}


def _under(prefix: str | None, *layers: Item) -> list[Item]:
    """``layers`` inside the attribute a head model wraps its backbone in."""
    return list(layers) if prefix is None else [_sequential(prefix, *layers)]


@dataclass
class _Build:
    """What a builder returns: the spec's dims and layers, and its notes."""

    dims: dict[str, int] = field(default_factory=dict)
    layers: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _heads_divide(
    reader: _ConfigReader, d_model: int | None, n_heads: int | None, heads_key: str
) -> None:
    """Refuse heads that do not divide the width: d_head = d_model / n_heads."""
    if d_model is None or n_heads is None or d_model % n_heads == 0:
        return

    name, _ = reader.lookup(heads_key)
    # The divisors nearest the heads asked for (searching a bounded range).
    divisors = [n for n in range(1, min(d_model, 10_000) + 1) if d_model % n == 0]
    nearest = sorted(sorted(divisors, key=lambda n: abs(n - n_heads))[:3])
    reader.problem(
        name,
        f"{name} = {n_heads} does not divide the width {d_model}, so the"
        " attention heads cannot split it evenly (transformers refuses this"
        f" config too); choose a divisor of {d_model}, such as"
        f" {', '.join(str(n) for n in nearest)}",
        value=n_heads,
        allowed=f"a divisor of {d_model}",
    )


# --- One builder per model type -----------------------------------------------


def _gpt2(reader: _ConfigReader, head: str) -> _Build:
    """transformers' modeling_gpt2: GPT2Model, GPT2LMHeadModel and
    GPT2ForSequenceClassification.

    GPT2Block is ln_1 → GPT2Attention (c_attn: Conv1D d → 3d, c_proj: Conv1D
    d → d, both with bias) → residual, ln_2 → GPT2MLP (c_fc: d → n_inner,
    gelu_new; c_proj: n_inner → d) → residual; Conv1D stores its weight
    (in, out). GPT2Config: n_inner None means 4·n_embd; tie_word_embeddings
    defaults to true (lm_head shares wte).
    """
    vocab = reader.size("vocab_size", "the vocabulary size")
    n_positions = reader.size("n_positions", "the learned positions")
    d_model = reader.size("n_embd", "the width")
    n_layer = reader.size("n_layer", "the number of blocks")
    n_heads = reader.size("n_head", "the attention heads")
    d_ff = reader.size("n_inner", "the MLP width; null means 4·n_embd", None, True)
    activation = reader.activation("activation_function", "gelu_new")
    tied = reader.flag("tie_word_embeddings", "lm_head shares wte", True)
    reader.refuse_true("add_cross_attention", "cross-attention to an encoder")
    _heads_divide(reader, d_model, n_heads, "n_head")
    labels = reader.labels() if head == "classifier" else None
    if reader.problems:
        return _Build()

    d_ff = 4 * d_model if d_ff is None else d_ff
    dims = {"vocab": vocab, "n_positions": n_positions, "d_model": d_model}
    dims |= {"d_ff": d_ff, "n_layer": n_layer, "n_heads": n_heads}
    conv1d = {"layout": "in_out"}
    attention = _attention("attn", True, fused_qkv=True, **conv1d)
    mlp = _sequential("mlp", *_mlp(("c_fc", "c_proj"), activation, **conv1d))
    layers = [
        _embedding("wte", "vocab"),
        _embedding("wpe", "n_positions"),
        _repeat(
            "h",
            "n_layer",
            _residual("pre", ("layer_norm", "ln_1"), attention),
            _residual("pre", ("layer_norm", "ln_2"), mlp),
        ),
        _norm("layer_norm", "ln_f"),
    ]
    notes = [
        "Names are GPT2Model's (wte, h.3.attn, ln_f) under every head;"
        " GPT2LMHeadModel and GPT2ForSequenceClassification prefix them with"
        " 'transformer.'. attn.c_attn is attn.qkv and attn.c_proj is attn.o, the"
        " spec language's names for a fused attention's projections.",
        "GPT-2's Conv1D stores every projection's weight (in, out): the layers"
        " have layout in_out, and shapes are reported in PyTorch's (out, in).",
    ]
    if head == "lm":
        tie = "wte" if tied else None
        layers.append(_linear("lm_head", "d_model", "vocab", False, tied_to=tie))
        if not tied:
            notes.append("tie_word_embeddings is false: lm_head has its own weight.")
    elif head == "classifier":
        dims["n_labels"] = labels
        layers.append(_linear("score", "d_model", "n_labels", False))

    return _Build(dims, layers, notes)


def _llama(reader: _ConfigReader, head: str) -> _Build:
    """transformers' modeling_llama (LlamaModel, LlamaForCausalLM,
    LlamaForSequenceClassification) and modeling_mistral, which has the same
    layout.

    LlamaDecoderLayer is input_layernorm (RMS) → LlamaAttention (q_proj,
    k_proj, v_proj to num_key_value_heads·head_dim, o_proj; bias
    attention_bias) → residual, post_attention_layernorm → LlamaMLP
    (gate_proj, up_proj, down_proj; bias mlp_bias) → residual. LlamaConfig:
    num_key_value_heads None means num_attention_heads, head_dim None means
    hidden_size // num_attention_heads, attention_bias, mlp_bias and
    tie_word_embeddings default to false. MistralConfig has 8 key/value heads
    by default (an integer: null is refused) and MistralAttention and
    MistralMLP take no biases.
    """
    mistral = reader.model_type == "mistral"
    vocab = reader.size("vocab_size", "the vocabulary size")
    d_model = reader.size("hidden_size", "the width")
    d_ff = reader.size("intermediate_size", "the gated MLP's width")
    n_layer = reader.size("num_hidden_layers", "the number of decoder layers")
    n_heads = reader.size("num_attention_heads", "the query heads")
    # MistralConfig types it int with default 8 (null is refused); LlamaConfig
    # int | None, None meaning num_attention_heads.
    n_kv_heads = reader.size(
        "num_key_value_heads",
        "the key/value heads" if mistral else "the key/value heads; null means all",
        8 if mistral else n_heads,
        nullable=not mistral,
    )
    given_d_head = reader.size(
        "head_dim", "the width of one head; null means hidden_size/heads", None, True
    )
    activation = reader.activation("hidden_act", "silu")
    attention_bias = mlp_bias = False
    if not mistral:
        attention_bias = reader.flag("attention_bias", "biases on q, k, v, o", False)
        mlp_bias = reader.flag("mlp_bias", "biases on the MLP projections", False)
    tied = reader.flag("tie_word_embeddings", "lm_head shares embed_tokens", False)
    # LlamaConfig.validate_architecture asks this even with a head_dim; Mistral
    # needs it only to derive one.
    if given_d_head is None or not mistral:
        _heads_divide(reader, d_model, n_heads, "num_attention_heads")
    if n_heads is not None and n_kv_heads is not None and n_heads % n_kv_heads:
        reader.problem(
            "num_key_value_heads",
            f"num_key_value_heads = {n_kv_heads} does not divide"
            f" num_attention_heads = {n_heads}: grouped-query attention shares"
            " each key/value head among an equal number of query heads; choose a"
            f" divisor of {n_heads}",
            value=n_kv_heads,
            allowed=f"a divisor of {n_heads}",
        )
    labels = reader.labels() if head == "classifier" else None
    if reader.problems:
        return _Build()

    d_head = given_d_head or d_model // n_heads
    dims = {"vocab": vocab, "d_model": d_model, "d_ff": d_ff, "n_layer": n_layer}
    dims["n_heads"] = n_heads
    if n_kv_heads != n_heads:
        dims["n_kv_heads"] = n_kv_heads
    if d_head * n_heads != d_model:
        dims["d_head"] = d_head
    attention = _attention(
        "self_attn",
        attention_bias,
        n_kv_heads="n_kv_heads" if "n_kv_heads" in dims else None,
        d_head="d_head" if "d_head" in dims else None,
    )
    prefix = None if head == "none" else "model"
    layers = _under(
        prefix,
        _embedding("embed_tokens", "vocab"),
        _repeat(
            "layers",
            "n_layer",
            _residual("pre", ("rms_norm", "input_layernorm"), attention),
            _residual(
                "pre",
                ("rms_norm", "post_attention_layernorm"),
                _gated_mlp("mlp", activation, mlp_bias),
            ),
        ),
        _norm("rms_norm", "norm"),
    )
    notes = [
        "self_attn.q_proj, k_proj, v_proj and o_proj are self_attn.q, k, v and o,"
        " and mlp.gate_proj, up_proj and down_proj are mlp.gate, up and down: the"
        " spec language's names for attention and gated-MLP projections.",
    ]
    if head == "lm":
        tie = (
            ("embed_tokens" if prefix is None else "model.embed_tokens")
            if tied
            else None
        )
        layers.append(_linear("lm_head", "d_model", "vocab", False, tied_to=tie))
        if tied:
            notes.append("tie_word_embeddings is true: lm_head shares embed_tokens.")
    elif head == "classifier":
        dims["n_labels"] = labels
        layers.append(_linear("score", "d_model", "n_labels", False))

    return _Build(dims, layers, notes)


def _bert(reader: _ConfigReader, head: str) -> _Build:
    """transformers' modeling_bert: BertModel (with or without BertPooler),
    BertForMaskedLM and BertForSequenceClassification.

    BertEmbeddings sums word, position and token-type embeddings, then applies
    LayerNorm. BertLayer is post-norm: BertAttention (self.query, self.key,
    self.value, output.dense, all with bias; output.LayerNorm after the
    residual addition), then BertIntermediate (dense, hidden_act) and
    BertOutput (dense, LayerNorm after the addition). BertPooler is a dense
    layer with tanh on the first token; BertLMPredictionHead is transform
    (dense, hidden_act, LayerNorm) and decoder, tied to word_embeddings.
    BertConfig's defaults: 512 positions, 2 token types, gelu,
    tie_word_embeddings true.
    """
    vocab = reader.size("vocab_size", "the vocabulary size")
    d_model = reader.size("hidden_size", "the width")
    d_ff = reader.size("intermediate_size", "the feed-forward width")
    n_layer = reader.size("num_hidden_layers", "the number of encoder layers")
    n_heads = reader.size("num_attention_heads", "the attention heads")
    n_positions = reader.size("max_position_embeddings", "the positions", 512)
    type_vocab = reader.size("type_vocab_size", "the token types", 2)
    activation = reader.activation("hidden_act", "gelu")
    tied = reader.flag("tie_word_embeddings", "the decoder shares the words", True)
    reader.refuse_true("add_cross_attention", "cross-attention to an encoder")
    position_type = reader.config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        reader.problem(
            "position_embedding_type",
            f"position_embedding_type {json_value(position_type)} is not supported:"
            " transformers 5 builds BERT with absolute learned positions only;"
            ' use "absolute"',
            value=position_type,
            allowed='"absolute"',
        )
    _heads_divide(reader, d_model, n_heads, "num_attention_heads")
    labels = reader.labels() if head == "classifier" else None
    if reader.problems:
        return _Build()

    dims = {"vocab": vocab, "n_positions": n_positions, "type_vocab": type_vocab}
    dims |= {"d_model": d_model, "d_ff": d_ff, "n_layer": n_layer, "n_heads": n_heads}
    layer_norm = ("layer_norm", "LayerNorm")
    attention = _attention("self", True)
    intermediate = _linear("dense", "d_model", "d_ff", activation=activation)
    backbone = [
        _sequential(
            "embeddings",
            _embedding("word_embeddings", "vocab"),
            _embedding("position_embeddings", "n_positions"),
            _embedding("token_type_embeddings", "type_vocab"),
            _norm(*layer_norm),
        ),
        _sequential(
            "encoder",
            _repeat(
                "layer",
                "n_layer",
                _residual("post", layer_norm, attention, name="attention"),
                _residual(
                    "post",
                    layer_norm,
                    _sequential("intermediate", intermediate),
                    _sequential("output", _linear("dense", "d_ff", "d_model")),
                ),
            ),
        ),
    ]
    if head in ("pooler", "classifier"):
        pooler = _linear("dense", "d_model", "d_model", activation="tanh")
        backbone.append(_sequential("pooler", pooler))
    layers = _under("bert" if head in ("lm", "classifier") else None, *backbone)
    notes = [
        "attention.self.query, key and value are attention.self.q, k and v, and"
        " attention.output.dense is attention.self.o (the spec language's"
        " attention projections); the post-norms attention.output.LayerNorm and"
        " output.LayerNorm are the residual groups' norms attention.LayerNorm and"
        " LayerNorm.",
        "The embedding LayerNorm (embeddings.LayerNorm) normalizes the sum of the"
        " three embeddings: it is a plain layer before the encoder, in no"
        " residual group.",
    ]
    if head == "lm":
        tie = "bert.embeddings.word_embeddings" if tied else None
        transform = _sequential(
            "transform",
            _linear("dense", "d_model", "d_model", activation=activation),
            _norm(*layer_norm),
        )
        decoder = _linear("decoder", "d_model", "vocab", tied_to=tie)
        layers.append(
            _sequential("cls", _sequential("predictions", transform, decoder))
        )
        notes.append(
            "The MLM output bias, cls.predictions.bias in transformers (shared with"
            " cls.predictions.decoder.bias), is cls.predictions.decoder.bias here."
        )
        if not tied:
            notes.append(
                "tie_word_embeddings is false: the decoder has its own weight, and"
                " transformers 5 also keeps cls.predictions.bias apart from"
                " decoder.bias (vocab_size parameters the spec does not list)."
            )
    elif head == "classifier":
        dims["n_labels"] = labels
        layers.append(_linear("classifier", "d_model", "n_labels"))

    return _Build(dims, layers, notes)


def _t5(reader: _ConfigReader, head: str) -> _Build:
    """transformers' modeling_t5: T5ForConditionalGeneration and T5Model.

    shared embedding; each T5Stack is blocks of T5LayerSelfAttention
    (layer_norm → T5Attention q, k, v: d_model → num_heads·d_kv, o back, no
    biases), in the decoder T5LayerCrossAttention (EncDecAttention, the same
    shapes), and T5LayerFF (layer_norm → T5DenseActDense wi, wo or
    T5DenseGatedActDense wi_0, wi_1, wo, no biases), all pre-norm with
    T5LayerNorm (RMS, weight only); block 0's self-attention holds the stack's
    relative_attention_bias (num_buckets × num_heads); final_layer_norm;
    lm_head without bias. T5Config: num_decoder_layers None means num_layers;
    feed_forward_proj "{ACT}" or "gated-{ACT}" ("gated-gelu" is gelu_new).
    """
    vocab = reader.size("vocab_size", "the vocabulary size")
    d_model = reader.size("d_model", "the width")
    d_head = reader.size("d_kv", "the width of one head")
    d_ff = reader.size("d_ff", "the feed-forward width")
    n_layer = reader.size("num_layers", "the encoder blocks")
    n_heads = reader.size("num_heads", "the attention heads")
    n_decoder = reader.size(
        "num_decoder_layers", "the decoder blocks; null means all", n_layer, True
    )
    n_buckets = reader.size(
        "relative_attention_num_buckets", "the relative position buckets", 32
    )
    feed_forward = _feed_forward(reader)
    tied = reader.flag("tie_word_embeddings", "lm_head shares shared", True)
    if reader.problems:
        return _Build()

    gated, activation = feed_forward
    dims = {"vocab": vocab, "d_model": d_model, "d_ff": d_ff, "n_layer": n_layer}
    dims |= {"n_heads": n_heads, "d_head": d_head, "n_buckets": n_buckets}
    if n_decoder != n_layer:
        dims["n_decoder_layer"] = n_decoder
    if gated:
        dense = _gated_mlp("DenseReluDense", activation, False)
    else:
        dense = _sequential("DenseReluDense", *_mlp(("wi", "wo"), activation, False))

    def stack(name: str, count: str, *sublayers: Item) -> Item:
        blocks = [
            _residual("pre", ("rms_norm", "layer_norm"), item, name=str(index))
            for index, item in enumerate(sublayers)
        ]
        return _sequential(
            name,
            _embedding("relative_attention_bias", "n_buckets", "n_heads"),
            _repeat("block", count, _sequential("layer", *blocks)),
            _norm("rms_norm", "final_layer_norm"),
        )

    self_attention = _attention("SelfAttention", False, d_head="d_head")
    cross_attention = _attention("EncDecAttention", False, d_head="d_head")
    decoder_count = "n_decoder_layer" if "n_decoder_layer" in dims else "n_layer"
    layers = [
        _embedding("shared", "vocab"),
        stack("encoder", "n_layer", self_attention, dense),
        stack("decoder", decoder_count, self_attention, cross_attention, dense),
    ]
    notes = [
        "The relative position bias (relative_attention_num_buckets × num_heads)"
        " belongs to block 0's self-attention in transformers"
        " (encoder.block.0.layer.0.SelfAttention.relative_attention_bias) and"
        " serves every block of its stack; a repeat's copies are identical, so it"
        " is written once per stack as the embedding"
        " encoder.relative_attention_bias (and decoder.relative_attention_bias),"
        " with the same shape.",
        "T5LayerNorm scales without a bias or mean subtraction: the layer_norm"
        " modules are rms_norm.",
        "encoder.embed_tokens and decoder.embed_tokens are shared in transformers:"
        " counted once, as shared.",
    ]
    if gated:
        notes.append(
            "The gated feed-forward's wi_0, wi_1 and wo are DenseReluDense.gate,"
            " up and down, the spec language's gated-MLP projections."
        )
    if n_decoder == n_layer:
        notes.append(
            "The decoder has as many blocks as the encoder: both repeat n_layer"
            " times, so a depth target scales the two together."
        )
    if head == "lm":
        tie = "shared" if tied else None
        layers.append(_linear("lm_head", "d_model", "vocab", False, tied_to=tie))
        if not tied:
            notes.append(
                "tie_word_embeddings is false (T5 v1.1): lm_head has its own weight,"
                " as the checkpoint stores it (transformers 5 ties it at"
                " construction and unties it when loading such a checkpoint)."
            )

    return _Build(dims, layers, notes)


def _feed_forward(reader: _ConfigReader) -> tuple[bool, str | dict[str, Any]] | None:
    """T5Config's feed_forward_proj: (gated, the spec activation), or None."""
    value = reader.config.get("feed_forward_proj", "relu")
    parts = value.split("-") if isinstance(value, str) else []
    well_formed = len(parts) == 1 or (len(parts) == 2 and parts[0] == "gated")
    if not well_formed:
        reader.problem(
            "feed_forward_proj",
            "feed_forward_proj must be an activation name, or 'gated-' and one"
            f' (as "relu" or "gated-gelu"); got {json_value(value)}',
            value=value,
            allowed='"{ACT}" or "gated-{ACT}"',
        )
        return None

    gated = len(parts) == 2
    # T5Config keeps "gated-gelu" for backwards compatibility as gelu_new.
    name = "gelu_new" if value == "gated-gelu" else parts[-1]
    activation = _activation(name)
    if activation is None:
        reader.problem(
            "feed_forward_proj",
            _unknown_activation_message("feed_forward_proj's activation", name),
            value=value,
            allowed=", ".join(ACTIVATIONS),
        )
        return None

    return gated, activation


def _vit(reader: _ConfigReader, head: str) -> _Build:
    """transformers' modeling_vit: ViTForImageClassification and ViTModel.

    ViTEmbeddings: cls_token (1, 1, d), ViTPatchEmbeddings.projection (Conv2d
    num_channels → d, kernel and stride patch_size, with bias) and
    position_embeddings (1, patches + 1, d), patches = (image_size //
    patch_size) per side, multiplied. ViTLayer is pre-norm: layernorm_before →
    ViTAttention (q_proj, k_proj, v_proj with bias qkv_bias, o_proj with bias)
    → residual, layernorm_after → ViTMLP (fc1, hidden_act; fc2) → residual;
    then layernorm. ViTModel adds ViTPooler (dense to pooler_output_size,
    pooler_act); ViTForImageClassification builds ViTModel without the pooler
    and a classifier on num_labels.
    """
    d_model = reader.size("hidden_size", "the width")
    d_ff = reader.size("intermediate_size", "the MLP width")
    n_layer = reader.size("num_hidden_layers", "the number of encoder layers")
    n_heads = reader.size("num_attention_heads", "the attention heads")
    # ViTAttention reads head_dim when the config carries one.
    given_d_head = reader.size("head_dim", "the width of one head", None)
    channels = reader.size("num_channels", "the image channels", 3)
    image = _pair(reader, "image_size", 224)
    patch = _pair(reader, "patch_size", 16)
    qkv_bias = reader.flag("qkv_bias", "biases on q, k and v", True)
    activation = reader.activation("hidden_act", "gelu")
    if given_d_head is None:
        _heads_divide(reader, d_model, n_heads, "num_attention_heads")
    pooler_size = reader.size(
        "pooler_output_size", "the pooler's width; null means hidden_size", None, True
    )
    pooler_act = reader.activation("pooler_act", "tanh")
    labels = reader.labels() if head == "classifier" else None
    if qkv_bias is False:
        reader.problem(
            "qkv_bias",
            "qkv_bias = false is not supported: ViT's o_proj keeps its bias while"
            " q, k and v lose theirs, and a spec attention layer gives its four"
            " projections one bias setting; set qkv_bias to true or write the"
            " spec by hand",
            value=False,
            allowed="true",
        )
    too_small = image is not None and patch is not None
    if too_small and (image[0] < patch[0] or image[1] < patch[1]):
        reader.problem(
            "image_size",
            f"image_size {list(image)} is smaller than patch_size {list(patch)}:"
            " the image holds no patch; give an image_size of at least patch_size",
            value=reader.config.get("image_size"),
            allowed=f"at least {list(patch)}",
        )
    if reader.problems:
        return _Build()

    d_head = given_d_head or d_model // n_heads
    patches = (image[0] // patch[0]) * (image[1] // patch[1])
    dims = {"n_positions": patches + 1, "d_model": d_model, "d_ff": d_ff}
    dims |= {"n_layer": n_layer, "n_heads": n_heads}
    if d_head * n_heads != d_model:
        dims["d_head"] = d_head
    kernel: int | list[int] = patch[0] if patch[0] == patch[1] else list(patch)
    projection = {"kind": "conv2d", "name": "projection", "in": channels}
    projection |= {"out": "d_model", "kernel_size": kernel, "stride": kernel}
    head_size = "d_head" if "d_head" in dims else None
    backbone = [
        _sequential(
            "embeddings",
            _embedding("cls_token", 1),
            _sequential("patch_embeddings", projection),
            _embedding("position_embeddings", "n_positions"),
        ),
        _repeat(
            "layers",
            "n_layer",
            _residual(
                "pre",
                ("layer_norm", "layernorm_before"),
                _attention("attention", True, d_head=head_size),
            ),
            _residual(
                "pre",
                ("layer_norm", "layernorm_after"),
                _sequential("mlp", *_mlp(("fc1", "fc2"), activation)),
            ),
        ),
        _norm("layer_norm", "layernorm"),
    ]
    if head == "pooler":
        width = "d_model" if pooler_size in (None, d_model) else pooler_size
        pooler = _linear("dense", "d_model", width, activation=pooler_act)
        backbone.append(_sequential("pooler", pooler))
    layers = _under("vit" if head == "classifier" else None, *backbone)
    notes = [
        f"n_positions = {patches} patches ({image[0]}/{patch[0]} ×"
        f" {image[1]}/{patch[1]}) + 1 class token.",
        "The class token and the position embeddings are nn.Parameters of shape"
        " (1, 1, d) and (1, n_positions, d) in transformers; here they are"
        " embeddings of 1 and n_positions rows (embeddings.cls_token.weight,"
        " embeddings.position_embeddings.weight): the same values and counts.",
        "attention.q_proj, k_proj, v_proj and o_proj are attention.q, k, v and o"
        " (the spec language's attention projections). Names follow transformers"
        " 5 (layers.3.mlp.fc1); checkpoints saved by transformers 4 call them"
        " encoder.layer.3.attention.attention.query, attention.output.dense,"
        " intermediate.dense and output.dense.",
    ]
    if image[0] % patch[0] or image[1] % patch[1]:
        notes.append(
            f"image_size {list(image)} is not a multiple of patch_size"
            f" {list(patch)}: as in transformers, the edge pixels that fill no"
            " patch are dropped."
        )
    if head == "classifier":
        dims["n_labels"] = labels
        layers.append(_linear("classifier", "d_model", "n_labels"))

    return _Build(dims, layers, notes)


def _pair(reader: _ConfigReader, key: str, default: int) -> tuple[int, int] | None:
    """A ViT size given as one integer or as [height, width]."""
    value = reader.config.get(key, default)
    if isinstance(value, list | tuple) and len(value) == 2:
        sizes = [
            each if isinstance(each, int) and not isinstance(each, bool) else None
            for each in value
        ]
        if None not in sizes and min(sizes) >= 1:
            return sizes[0], sizes[1]
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value, value

    reader.problem(
        key,
        f"{key} must be a positive integer or a list [height, width] of two; got"
        f" {json_value(value)}; ViTConfig's default is {default}",
        value=value,
        allowed="an integer ≥ 1 or [height, width]",
    )
    return None


_BUILDERS: dict[str, Callable[[_ConfigReader, str], _Build]] = {
    "gpt2": _gpt2,
    "llama": _llama,
    "mistral": _llama,
    "bert": _bert,
    "t5": _t5,
    "vit": _vit,
}
