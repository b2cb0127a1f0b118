"""The base of every component config (kept free of torch so listing plugins stays fast)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["ComponentConfig"]


class ComponentConfig(BaseModel):
    """Base of every model, dataset and metric config: typed, documented, and strict.

    Subclasses declare fields with defaults and a ``Field(description=...)``; an unknown key
    is an error, never a silently ignored typo. A float is finite: ``.inf`` or ``.nan`` is
    an error (a record would store it as ``null``).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, protected_namespaces=(), allow_inf_nan=False
    )
