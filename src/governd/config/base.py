"""The base of every config model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Frozen, and unknown keys are errors (a typo is never silently ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
