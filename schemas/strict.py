"""Base class for every configuration model: unknown keys and wrong types are errors."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    # Defaults are not validated: they are written here, not read from a file, and a Path default would
    # fail the strict validation of config files (`validate_document`), where a path is given as text.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, validate_default=False)


def validate_document(model: type[Model], raw: dict) -> Model:
    """Validate a parsed YAML/TOML document with strict types: a quoted number is not a number and a
    boolean is not a number (nor a number a boolean). Validated as JSON, so paths and choices are
    still given as strings; dates and non-string keys are read as their text."""
    return model.model_validate_json(json.dumps(raw, default=str), strict=True)
