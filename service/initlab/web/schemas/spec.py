"""The architecture spec over HTTP: marshmallow schemas that load the core dataclasses.

The schemas check the JSON shape (types, allowed fields, allowed words) and
load into :mod:`initlab.core.spec`; rules that need the whole spec (unknown
dims, divisibility, duplicate names, ties) are checked by
:func:`initlab.core.spec.expand`. Layers are polymorphic on ``kind``: each item
is loaded by the schema of its kind, so an error's path is exact
(``layers.3.in``). Every message names the value, what is allowed and the fix.

:func:`add_spec_components` describes the same schemas in an OpenAPI 3.1
document, the layer union as ``oneOf`` with a ``discriminator`` on ``kind``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_instance
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load
from marshmallow import validate as validators

from initlab.core import spec as core
from initlab.core.activations import (
    ACTIVATION_NAMES,
    ACTIVATION_PARAMETER_RANGES,
    ACTIVATION_PARAMETERS,
    activation_from_json,
)
from initlab.core.errors import InvalidInput, closest, json_value

_DIM_NAME = re.compile(core.DIM_NAME_PATTERN)

#: What a spec is, for the messages that find none.
SPEC_SHAPE = (
    "the architecture spec, an object with 'layers' (its layers and groups in"
    " forward order) and optional 'dims' (named sizes); see examples/, such as"
    " examples/mlp-3layer.spec.json"
)
_REQUIRED = fields.Field.default_error_messages["required"]
_NULL = fields.Field.default_error_messages["null"]
_COMPONENTS = "#/components/schemas/"


def _show(value: Any) -> str:
    """A value as the user wrote it in JSON, cut to 80 characters, for messages."""
    return json_value(value)


def _did_you_mean(word: object, choices: tuple[str, ...] | list[str]) -> str:
    close = closest(word, choices)
    return f" — did you mean {json_value(close)}?" if close else ""


# --- Fields -------------------------------------------------------------------


class Size(fields.Field):
    """A positive integer, or the name of a dim (``"d_model"``)."""

    default_error_messages = {
        "null": "must be a positive integer or the name of a dim; got null",
        "invalid": "must be a positive integer or the name of a dim; got {input}",
        "boolean": "must be a positive integer or the name of a dim; got {input}"
        " (booleans are not sizes)",
        "not_positive": "must be a positive integer or the name of a dim; got"
        " {input}; sizes start at 1",
        "not_a_name": "must be a positive integer or the name of a dim; got the"
        " string {input}, which is not a dim name (letters, digits and '_', not"
        " starting with a digit){hint}",
    }

    def _deserialize(self, value: Any, attr, data, **kwargs) -> int | str:
        if value is True or value is False:
            raise self.make_error("boolean", input=_show(value))
        if isinstance(value, int):
            if value < 1:
                raise self.make_error("not_positive", input=_show(value))
            return value
        if isinstance(value, str):
            if _DIM_NAME.match(value):
                return value
            hint = "; write numbers without quotes" if value.strip().isdigit() else ""
            raise self.make_error("not_a_name", input=_show(value), hint=hint)

        raise self.make_error("invalid", input=_show(value))


class KernelSize(Size):
    """One size for every spatial dim, or a list of one size per dim."""

    default_error_messages = {
        "empty": "must be a size or a non-empty list of sizes; got []",
    }

    def _deserialize(self, value: Any, attr, data, **kwargs):
        if not isinstance(value, list):
            return super()._deserialize(value, attr, data, **kwargs)
        if not value:
            raise self.make_error("empty")

        sizes, errors = [], {}
        for index, size in enumerate(value):
            try:
                sizes.append(super()._deserialize(size, attr, data, **kwargs))
            except ValidationError as error:
                errors[index] = error.messages
        if errors:
            raise ValidationError(errors)

        return tuple(sizes)


class SpatialArgument(fields.Field):
    """``stride`` or ``padding``: accepted so PyTorch-shaped configs load, then ignored.

    An integer at least ``minimum``, a list of them, or one of ``words``.
    """

    default_error_messages = {
        "invalid": "must be an integer ≥ {minimum}, a list of them{words}; got"
        " {input} (it does not change parameter shapes and is otherwise ignored)",
    }

    def __init__(self, *, minimum: int, words: tuple[str, ...] = (), **kwargs):
        super().__init__(**kwargs)
        self.minimum = minimum
        self.words = words

    def _deserialize(self, value: Any, attr, data, **kwargs):
        if isinstance(value, str) and value in self.words:
            return value
        items = value if isinstance(value, list) else [value]
        if items and all(
            isinstance(item, int)
            and not isinstance(item, bool)
            and item >= self.minimum
            for item in items
        ):
            return value

        words = f" or one of {', '.join(map(repr, self.words))}" if self.words else ""
        raise self.make_error(
            "invalid", minimum=self.minimum, words=words, input=_show(value)
        )


class StrictBoolean(fields.Boolean):
    """``true`` or ``false`` only: JSON has booleans, so 1 and "yes" are mistakes."""

    default_error_messages = {"invalid": "must be true or false; got {input}"}

    def _deserialize(self, value: Any, attr, data, **kwargs) -> bool:
        if value is True or value is False:
            return value

        raise self.make_error("invalid", input=_show(value))


class _NamePattern(validators.Regexp):
    """The name pattern, quoting the value as JSON and cut to 80 characters."""

    def _format_error(self, value: Any) -> str:
        return self.error.format(input=_show(value))


class Name(fields.String):
    """A layer or group name: one path segment of the parameter names."""

    def __init__(self, **kwargs):
        super().__init__(
            validate=_NamePattern(
                core.NAME_PATTERN,
                error="a name must be one path segment: 1 to 128 letters, digits,"
                " '_' or '-' (no dots: nesting makes the dotted path); got {input}",
            ),
            **kwargs,
        )


def _choice(choices: tuple[str, ...], what: str, **kwargs) -> fields.String:
    """A string field allowing ``choices``, with a did-you-mean message."""
    return fields.String(validate=OneOfWithHint(choices, what), **kwargs)


class OneOfWithHint(validators.OneOf):
    """One of ``choices``: the message quotes the value as JSON and may suggest one."""

    def __init__(self, choices: tuple[str, ...], what: str) -> None:
        super().__init__(
            choices, error=f"unknown {what} {{input}}; allowed: {{choices}}{{hint}}"
        )

    def _format_error(self, value: Any) -> str:
        return self.error.format(
            input=_show(value),
            choices=self.choices_text,
            hint=_did_you_mean(value, list(self.choices)),
        )


class ActivationField(fields.Field):
    """An activation name, or ``{"name": ..., <parameter>: <number>}``.

    Checked by :func:`initlab.core.activations.activation_from_json`, whose
    messages and paths are kept.
    """

    def _deserialize(self, value: Any, attr, data, **kwargs):
        try:
            return activation_from_json(value)
        except InvalidInput as error:
            messages: dict[str | int, list[str]] = {}
            for problem in error.problems:
                key = problem.path[0] if problem.path else "_schema"
                messages.setdefault(key, []).append(problem.message)
            if set(messages) == {"_schema"}:
                raise ValidationError(messages["_schema"]) from None
            raise ValidationError(messages) from None


class Dims(fields.Field):
    """Named sizes: ``{"d_model": 768, "vocab": 50257}``."""

    default_error_messages = {
        "type": "dims must be an object of named positive integers, such as"
        ' {{"d_model": 768}}; got {input}',
        "name": "a dim name must be an identifier (letters, digits and '_', not"
        " starting with a digit); got {input}",
        "value": "dim {name} must be a positive integer; got {input}",
    }

    def _deserialize(self, value: Any, attr, data, **kwargs) -> dict[str, int]:
        if not isinstance(value, Mapping):
            raise self.make_error("type", input=_show(value))

        errors: dict[str, list[str]] = {}
        for name, size in value.items():
            if not _DIM_NAME.match(name):
                errors[name] = [self.error_messages["name"].format(input=_show(name))]
            elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
                message = self.error_messages["value"]
                errors[name] = [message.format(name=_show(name), input=_show(size))]
        if errors:
            raise ValidationError(errors)

        return dict(value)


class LayerField(fields.Field):
    """One item of a ``layers`` list, loaded by the schema of its ``kind``."""

    default_error_messages = {
        "type": "a layer must be an object with a 'kind'; got {input}",
        "kind_missing": "missing: every layer and group needs a 'kind'; allowed:"
        " {choices}",
        "kind_unknown": "unknown layer kind {input}; allowed: {choices}{hint}",
    }

    def _deserialize(self, value: Any, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            raise self.make_error("type", input=_show(value))

        choices = ", ".join(core.ITEM_KINDS)
        if "kind" not in value:
            message = self.error_messages["kind_missing"].format(choices=choices)
            raise ValidationError({"kind": [message]})
        kind = value["kind"]
        schema = _schema_for_kind(kind) if isinstance(kind, str) else None
        if schema is None:
            message = self.error_messages["kind_unknown"].format(
                input=_show(kind),
                choices=choices,
                hint=_did_you_mean(kind, core.ITEM_KINDS),
            )
            raise ValidationError({"kind": [message]})

        return schema.load(value)


def _layer_list(what: str, **kwargs) -> fields.List:
    return fields.List(
        LayerField(),
        error_messages={"invalid": f"{what} takes a list of layers and groups"},
        validate=validators.Length(
            min=1, error=f"{what} needs at least one layer; got an empty list"
        ),
        **kwargs,
    )


def _layout() -> fields.String:
    return _choice(
        core.LAYOUTS,
        "layout",
        metadata={
            "default": "out_in",
            "description": "How the framework stores a 2-D weight: out_in"
            " (PyTorch) or in_out (GPT-2 Conv1D, Keras). Shapes are always"
            " reported in PyTorch's layout.",
        },
    )


# --- Schemas ------------------------------------------------------------------


class StrictSchema(Schema):
    """Refuses unknown fields, naming the allowed ones; explains missing fields.

    marshmallow stores the class-level ``unknown`` template as it is; it is
    filled in by :meth:`handle_error`, which knows the field's name. ``what``
    names the object in messages; ``instead`` maps a field people reach for
    by habit to what the object takes in its place.
    """

    class Meta:
        unknown = RAISE

    what: ClassVar[str] = "object"
    instead: ClassVar[dict[str, str]] = {}
    error_messages = {
        "unknown": "unknown field {input} in {what}; allowed fields: {allowed}{hint}",
        "required": "missing: {what} needs {input}{choices}",
        "null": "{input} must not be null; got null: give a value, or leave the"
        " field out where it is optional",
        "type": "must be a JSON object",
    }

    def handle_error(self, error: ValidationError, data: Any, *, many, **kwargs):
        if not isinstance(error.messages, dict):
            return

        allowed = sorted(
            field.data_key or name for name, field in self.load_fields.items()
        )
        explained = {}
        for key, messages in error.messages.items():
            if isinstance(messages, list):
                messages = [self._explain(key, text, allowed) for text in messages]
            explained[key] = messages
        raise ValidationError(explained, data=data, valid_data=error.valid_data)

    def _explain(self, key: Any, text: Any, allowed: list[str]) -> Any:
        what = f"{'an' if self.what[0] in 'aeiou' else 'a'} {self.what}"
        if text == self.error_messages["unknown"]:
            hint = _did_you_mean(key, allowed)
            if key in self.instead:
                hint = f"; {self.instead[key]}"
            return text.format(
                input=_show(key), what=what, allowed=", ".join(allowed), hint=hint
            )
        if text in (_REQUIRED, _NULL):
            template = self.error_messages["required" if text == _REQUIRED else "null"]
            return template.format(
                input=_show(key), what=what, choices=self._choices(key)
            )

        return text

    def _choices(self, key: Any) -> str:
        """``"; allowed: pre, post, none"`` for a field with a list of words."""
        field = next(
            (
                field
                for name, field in self.load_fields.items()
                if (field.data_key or name) == key
            ),
            None,
        )
        for validator in getattr(field, "validators", ()):
            if isinstance(validator, validators.OneOf):
                return f"; allowed: {', '.join(map(str, validator.choices))}"

        return ""


class _LayerSchema(StrictSchema):
    """Fields every plain layer has."""

    name = Name(metadata={"description": "Default: the index in the parent list."})
    bias = StrictBoolean(metadata={"description": "Whether the layer has a bias."})
    activation = ActivationField(
        metadata={"description": "The activation that follows the layer."}
    )
    layout = _layout()
    tied_to = fields.String(
        metadata={
            "description": "Full dotted name of the layer whose weight this layer"
            " shares, such as wte or h.0.attn.q (an LM head tied to the token"
            " embedding); weight shapes must agree. The tied weight is counted"
            " once."
        }
    )
    in_features = Size(data_key="in", required=True)
    out_features = Size(data_key="out", required=True)


class LinearLayerSchema(_LayerSchema):
    what = "linear layer"
    kind = _choice(("linear",), "kind", required=True)

    @post_load
    def make(self, data: dict, **kwargs) -> core.LinearSpec:
        return core.LinearSpec(**data)


class ConvLayerSchema(_LayerSchema):
    what = "convolution"
    kind = _choice(core.CONV_KINDS, "kind", required=True)
    kernel_size = KernelSize(
        required=True,
        metadata={"description": "One size for every spatial dim or one per dim."},
    )
    groups = Size(metadata={"default": 1})
    stride = SpatialArgument(minimum=1, metadata={"description": "Ignored."})
    padding = SpatialArgument(
        minimum=0, words=("same", "valid"), metadata={"description": "Ignored."}
    )

    @post_load
    def make(self, data: dict, **kwargs) -> core.ConvSpec:
        data.pop("stride", None)
        data.pop("padding", None)
        return core.ConvSpec(**data)


class EmbeddingLayerSchema(_LayerSchema):
    what = "embedding"
    kind = _choice(("embedding",), "kind", required=True)

    @post_load
    def make(self, data: dict, **kwargs) -> core.EmbeddingSpec:
        return core.EmbeddingSpec(**data)


class NormLayerSchema(_LayerSchema):
    what = "norm layer"
    kind = _choice(core.NORM_KINDS, "kind", required=True)
    out_features = Size(
        data_key="out", metadata={"description": "Optional; must equal in."}
    )

    @post_load
    def make(self, data: dict, **kwargs) -> core.NormSpec:
        return core.NormSpec(**data)


class AttentionLayerSchema(StrictSchema):
    what = "attention layer"
    instead = {
        "in": "an attention layer takes d_model, its input and output width,"
        " instead of in and out",
        "out": "an attention layer takes d_model, its input and output width,"
        " instead of in and out",
    }
    kind = _choice(("attention",), "kind", required=True)
    name = Name()
    d_model = Size(required=True)
    n_heads = Size(required=True)
    n_kv_heads = Size(metadata={"description": "Default: n_heads."})
    d_head = Size(metadata={"description": "Default: d_model / n_heads."})
    fused_qkv = StrictBoolean(metadata={"default": False})
    bias = StrictBoolean(metadata={"default": True})
    layout = _layout()

    @post_load
    def make(self, data: dict, **kwargs) -> core.AttentionSpec:
        return core.AttentionSpec(**data)


class GatedMlpLayerSchema(StrictSchema):
    what = "gated MLP"
    instead = {
        "in": "a gated MLP takes d_model, its input and output width, and d_ff,"
        " its hidden width, instead of in and out",
        "out": "a gated MLP takes d_model, its input and output width, and d_ff,"
        " its hidden width, instead of in and out",
    }
    kind = _choice(("gated_mlp",), "kind", required=True)
    name = Name()
    d_model = Size(required=True)
    d_ff = Size(required=True)
    activation = ActivationField(
        metadata={"default": "silu", "description": "Applied to the gate."}
    )
    bias = StrictBoolean(metadata={"default": False})
    layout = _layout()

    @post_load
    def make(self, data: dict, **kwargs) -> core.GatedMlpSpec:
        return core.GatedMlpSpec(**data)


class ResidualNormSchema(StrictSchema):
    what = "residual group's norm_layer"
    kind = _choice(core.NORM_KINDS, "kind", metadata={"default": "layer_norm"})
    name = Name(metadata={"default": "norm"})
    bias = StrictBoolean(
        metadata={"description": "Default: true for layer and batch norm."}
    )

    @post_load
    def make(self, data: dict, **kwargs) -> core.NormLayerSpec:
        return core.NormLayerSpec(**data)


class ResidualGroupSchema(StrictSchema):
    what = "residual group"
    kind = _choice(("residual",), "kind", required=True)
    name = Name(metadata={"description": "Default: no path segment."})
    norm = _choice(core.NORM_PLACEMENTS, "norm placement", required=True)
    norm_layer = fields.Nested(ResidualNormSchema)
    layers = _layer_list("a residual branch", required=True)
    shortcut = _layer_list(
        "a shortcut",
        metadata={
            "description": "Layers of a projection shortcut (a ResNet"
            " downsample) replacing the identity; named in the group like the"
            " branch layers."
        },
    )

    @post_load
    def make(self, data: dict, **kwargs) -> core.ResidualGroup:
        data["layers"] = tuple(data["layers"])
        data["shortcut"] = tuple(data.get("shortcut", ()))
        return core.ResidualGroup(**data)


class RepeatGroupSchema(StrictSchema):
    what = "repeat group"
    kind = _choice(("repeat",), "kind", required=True)
    name = Name(metadata={"description": "Default: no path segment."})
    count = Size(required=True)
    layers = _layer_list("a repeat group", required=True)

    @post_load
    def make(self, data: dict, **kwargs) -> core.RepeatGroup:
        data["layers"] = tuple(data["layers"])
        return core.RepeatGroup(**data)


class SequentialGroupSchema(StrictSchema):
    what = "sequential group"
    kind = _choice(("sequential",), "kind", required=True)
    name = Name(metadata={"description": "Default: no path segment."})
    layers = _layer_list("a sequential group", required=True)

    @post_load
    def make(self, data: dict, **kwargs) -> core.SequentialGroup:
        data["layers"] = tuple(data["layers"])
        return core.SequentialGroup(**data)


SCHEMA_BY_KIND: dict[str, type[StrictSchema]] = {
    "linear": LinearLayerSchema,
    **dict.fromkeys(core.CONV_KINDS, ConvLayerSchema),
    "embedding": EmbeddingLayerSchema,
    **dict.fromkeys(core.NORM_KINDS, NormLayerSchema),
    "attention": AttentionLayerSchema,
    "gated_mlp": GatedMlpLayerSchema,
    "residual": ResidualGroupSchema,
    "repeat": RepeatGroupSchema,
    "sequential": SequentialGroupSchema,
}
_schema_instances: dict[type[Schema], Schema] = {}


def _schema_for_kind(kind: str) -> Schema | None:
    schema_class = SCHEMA_BY_KIND.get(kind)
    if schema_class is None:
        return None
    if schema_class not in _schema_instances:
        _schema_instances[schema_class] = schema_class()

    return _schema_instances[schema_class]


class SpecSchema(StrictSchema):
    """A whole spec: ``{"dims": {...}, "layers": [...]}``.

    Before loading, the raw lists are measured against ``limits`` (list length,
    nesting depth), so an oversized spec raises
    :class:`initlab.core.errors.LimitExceeded` before any work.
    """

    what = "spec"
    error_messages = {"type": f"must be {SPEC_SHAPE}"}
    dims = Dims(metadata={"description": "Named sizes; default none."})
    layers = _layer_list("a spec", required=True)

    def __init__(self, *, limits: core.SpecLimits | None = None, **kwargs):
        super().__init__(**kwargs)
        self.limits = limits or core.SpecLimits()

    @pre_load
    def refuse_oversized_lists(self, data: Any, **kwargs) -> Any:
        pending = [(data, (), -1)]
        while pending:
            node, path, depth = pending.pop()
            if not isinstance(node, Mapping):
                continue
            for key in ("layers", "shortcut"):
                items = node.get(key)
                if isinstance(items, list):
                    core.check_list_limits(
                        len(items), depth + 1, (*path, key), self.limits
                    )
                    pending.extend(
                        (item, (*path, key, index), depth + 1)
                        for index, item in enumerate(items)
                    )

        return data

    @post_load
    def make(self, data: dict, **kwargs) -> core.Spec:
        return core.Spec(dims=data.get("dims", {}), layers=tuple(data["layers"]))


def load_spec(data: Any, limits: core.SpecLimits | None = None) -> core.Spec:
    """Load a spec from parsed JSON.

    Raises ``marshmallow.ValidationError`` (messages keyed by field name and
    list index, so ``layers.3.in`` is ``messages["layers"][3]["in"]``) and
    :class:`initlab.core.errors.LimitExceeded` for a list over ``limits``
    (default :class:`~initlab.core.spec.SpecLimits`).
    """
    return SpecSchema(limits=limits).load(data)


# --- OpenAPI ------------------------------------------------------------------

# Components in the order they are registered; the layer union refers to them.
_SCHEMA_COMPONENTS: tuple[tuple[str, type[Schema]], ...] = (
    ("LinearLayer", LinearLayerSchema),
    ("ConvLayer", ConvLayerSchema),
    ("EmbeddingLayer", EmbeddingLayerSchema),
    ("NormLayer", NormLayerSchema),
    ("AttentionLayer", AttentionLayerSchema),
    ("GatedMlpLayer", GatedMlpLayerSchema),
    ("ResidualNorm", ResidualNormSchema),
    ("ResidualGroup", ResidualGroupSchema),
    ("RepeatGroup", RepeatGroupSchema),
    ("SequentialGroup", SequentialGroupSchema),
    ("Spec", SpecSchema),
)


def _json_components() -> dict[str, dict]:
    size = {"$ref": _COMPONENTS + "Size"}
    return {
        "Size": {
            "description": "A positive integer, or the name of an entry of dims.",
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": core.DIM_NAME_PATTERN},
            ],
        },
        "KernelSize": {
            "description": "One size for every spatial dim, or one per dim.",
            "oneOf": [size, {"type": "array", "items": dict(size), "minItems": 1}],
        },
        "Dims": {
            "description": "Named sizes, referred to by name from any size field.",
            "type": "object",
            "propertyNames": {"pattern": core.DIM_NAME_PATTERN},
            "additionalProperties": {"type": "integer", "minimum": 1},
        },
        "Activation": _activation_json(),
    }


def _activation_json() -> dict:
    parameters = {}
    for name, allowed in ACTIVATION_PARAMETER_RANGES.items():
        low = "minimum" if allowed.low_inclusive else "exclusiveMinimum"
        high = "maximum" if allowed.high_inclusive else "exclusiveMaximum"
        parameters[name] = {"type": "number", low: allowed.low, high: allowed.high}
    defaults = "; ".join(
        f"{name}: " + ", ".join(f"{key} = {value:g}" for key, value in own.items())
        for name, own in ACTIVATION_PARAMETERS.items()
        if own
    )

    return {
        "description": "The activation that follows a layer: a name, or an object"
        f" with the name and the activation's own parameters ({defaults}).",
        "oneOf": [
            {"type": "string", "enum": list(ACTIVATION_NAMES)},
            {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "enum": list(ACTIVATION_NAMES)},
                    **parameters,
                },
                "additionalProperties": False,
            },
        ],
    }


def _spec_field_properties(self, field: fields.Field, **kwargs: Any) -> dict:
    """apispec attribute function for the custom fields of this module.

    ``self`` is apispec's ``OpenAPIConverter``.
    """
    if isinstance(field, SpatialArgument):
        integer = {"type": "integer", "minimum": field.minimum}
        options = [integer, {"type": "array", "items": dict(integer), "minItems": 1}]
        if field.words:
            options.append({"type": "string", "enum": list(field.words)})
        return {"oneOf": options}

    components = {
        LayerField: "Layer",
        KernelSize: "KernelSize",
        Size: "Size",
        Dims: "Dims",
        ActivationField: "Activation",
    }
    name = components.get(type(field))
    return {"$ref": _COMPONENTS + name} if name else {}


def _layer_union(converter) -> dict:
    """The ``Layer`` component: one of the kinds' schemas, chosen by ``kind``."""
    refs = {
        schema: converter.resolve_nested_schema(schema)
        for schema in dict.fromkeys(SCHEMA_BY_KIND.values())
    }
    return {
        "description": "A layer or a group of layers, told apart by kind.",
        "oneOf": list(refs.values()),
        "discriminator": {
            "propertyName": "kind",
            "mapping": {
                kind: refs[schema]["$ref"] for kind, schema in SCHEMA_BY_KIND.items()
            },
        },
    }


def add_spec_components(spec: APISpec) -> None:
    """Register the spec schemas as OpenAPI 3.1 components of ``spec``.

    ``spec`` must use :class:`MarshmallowPlugin`; call this before registering
    a schema that nests :class:`SpecSchema`. Adds ``Spec``, ``Layer`` (the
    union), one component per layer and group kind, and ``Size``,
    ``KernelSize``, ``Dims`` and ``Activation``. Calling it twice changes
    nothing.
    """
    plugin = next(
        (each for each in spec.plugins if isinstance(each, MarshmallowPlugin)), None
    )
    if plugin is None or plugin.converter is None:
        raise ValueError(
            "add_spec_components needs an APISpec built with"
            " plugins=[MarshmallowPlugin()]"
        )

    converter = plugin.converter
    if not hasattr(converter, _spec_field_properties.__name__):
        converter.add_attribute_function(_spec_field_properties)

    registered = spec.components.schemas
    for name, component in _json_components().items():
        if name not in registered:
            spec.components.schema(name, component)
    for name, schema in _SCHEMA_COMPONENTS:
        key = make_schema_key(resolve_schema_instance(schema))
        if name not in registered and key not in converter.refs:
            spec.components.schema(name, schema=schema)
    if "Layer" not in registered:
        spec.components.schema("Layer", _layer_union(converter))
