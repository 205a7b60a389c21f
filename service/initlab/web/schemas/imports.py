"""Requests and responses of the spec importers and presets.

``POST /v1/specs/import`` takes a Hugging Face ``config.json`` or a torchvision
architecture; ``POST /v1/specs/expand`` a preset's name and parameters; both
answer with the spec. The same objects are accepted in place of a spec by every
endpoint that takes one: ``"spec": {"import": {...}}`` or ``"spec": {"preset":
{"name": ..., ...}}`` (:data:`SPEC_SOURCE_COMPONENT` documents the three).
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validates_schema

from initlab.core.importers import IMPORT_FORMATS
from initlab.web.schemas.spec import OneOfWithHint, StrictSchema

SPEC_SOURCE_COMPONENT = "SpecSource"


def _component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


class ObjectField(fields.Field):
    """Any JSON object, passed on as it is (its keys are checked downstream)."""

    default_error_messages = {"invalid": "must be a JSON object; got {input}"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata.setdefault("type", "object")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any):
        if not isinstance(value, dict):
            raise self.make_error("invalid", input=type(value).__name__)
        return value


class ImportRequestSchema(StrictSchema):
    """A model description to import: a Hugging Face config or a torchvision arch."""

    what = "import"

    format = fields.String(
        required=True,
        validate=OneOfWithHint(IMPORT_FORMATS, "import format"),
        metadata={
            "description": "`huggingface` (a config.json in `config`) or"
            " `torchvision` (a model name in `arch`).",
            "enum": list(IMPORT_FORMATS),
        },
    )
    config = ObjectField(
        metadata={
            "description": "huggingface: the model's config.json, as it is. Model"
            " types: gpt2, llama, mistral, bert, t5, vit."
        }
    )
    head = fields.String(
        load_default="default",
        metadata={
            "description": "huggingface: which head to build: `default` (the"
            " model as commonly counted: LM heads for gpt2, llama, mistral and t5,"
            " the pooler for bert, the classifier for a ViT config that lists"
            " ViTForImageClassification), `none`, `lm`, `pooler` or `classifier`.",
            "default": "default",
        },
    )
    arch = fields.String(
        metadata={
            "description": "torchvision: resnet18, resnet34, resnet50, resnet101,"
            " resnet152, wide_resnet50_2, wide_resnet101_2, resnext50_32x4d,"
            " resnext101_32x8d or resnext101_64x4d."
        }
    )
    options = ObjectField(
        load_default=dict,
        metadata={
            "description": "torchvision: the constructor's options (num_classes,"
            " groups, width_per_group, zero_init_residual).",
            "default": {},
        },
    )

    @validates_schema(pass_original=True)
    def check_format_fields(
        self, data: dict[str, Any], original: Any, **kwargs: Any
    ) -> None:
        form = data.get("format")
        if form not in _TAKES:
            return
        needed = _TAKES[form][0]
        if needed not in data:
            raise ValidationError(f"missing: a {form} import needs {needed!r}", needed)
        other = next(name for name in _TAKES if name != form)
        for name in _TAKES[other]:
            if isinstance(original, dict) and name in original:
                raise ValidationError(
                    f"{name!r} belongs to a {other} import; a {form} import takes"
                    f" {' and '.join(repr(each) for each in _TAKES[form])}",
                    name,
                )


# The fields each format takes, the required one first.
_TAKES = {"huggingface": ("config", "head"), "torchvision": ("arch", "options")}


class ImportedSpecResponseSchema(StrictSchema):
    """A spec built by an importer or a preset, with what a user checks it by."""

    spec = fields.Raw(
        required=True,
        metadata={
            "description": "The spec, ready to post to any endpoint.",
            "allOf": [_component("Spec")],
        },
    )
    source = fields.String(
        required=True,
        metadata={
            "description": "`huggingface:<model_type>`, `torchvision:<arch>`"
            " or `preset:<name>`."
        },
    )
    parameter_count = fields.Integer(
        required=True,
        metadata={
            "description": "Scalar parameters, tied tensors once: compare"
            " with the real model's."
        },
    )
    residual_branch_count = fields.Integer(required=True)
    scale_dims = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={
            "description": "The sizes a user scales (d_model, d_ff, n_heads,"
            " d_head, n_layer; width for conv nets) and their values."
        },
    )
    derived_dims = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "Keys of scale_dims that are derived, not dims"
            " of the spec (d_head = d_model/n_heads)."
        },
    )
    notes = fields.List(fields.String(), required=True)


def spec_source_json_schema() -> dict[str, Any]:
    """The OpenAPI component: a spec, an import, or a preset in place of a spec."""
    return {
        "description": 'A spec, or an object that builds one: {"import": {...}}'
        ' as the body of /v1/specs/import, or {"preset": {"name": ...,'
        " <parameter>: ...}} with the parameters of GET /v1/presets.",
        "oneOf": [
            _component("Spec"),
            {
                "type": "object",
                "required": ["import"],
                "additionalProperties": False,
                "properties": {"import": _component("ImportRequest")},
            },
            {
                "type": "object",
                "required": ["preset"],
                "additionalProperties": False,
                "properties": {
                    "preset": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}},
                        "additionalProperties": True,
                    }
                },
            },
        ],
    }


class PresetParameterSchema(StrictSchema):
    name = fields.String(required=True)
    type = fields.String(
        required=True,
        metadata={
            "enum": ["integer", "integer_list", "boolean", "string", "activation"]
        },
    )
    default = fields.Raw(
        required=True,
        allow_none=True,
        metadata={"description": "null: derived from the others, or off."},
    )
    allowed = fields.String(required=True, metadata={"description": "In words."})
    description = fields.String(required=True)
    minimum = fields.Integer()
    maximum = fields.Integer()
    choices = fields.List(fields.Raw())
    min_items = fields.Integer()
    max_items = fields.Integer()


class PresetSchema(StrictSchema):
    name = fields.String(required=True)
    description = fields.String(required=True)
    parameters = fields.List(fields.Nested(PresetParameterSchema), required=True)


class PresetsResponseSchema(StrictSchema):
    presets = fields.List(fields.Nested(PresetSchema), required=True)
