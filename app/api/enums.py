"""Enum query parameters that accept any case: the Marquez UI sends enum names in UPPERCASE, the spec
documents lowercase values."""

from __future__ import annotations

from enum import StrEnum


class CaseInsensitiveEnum(StrEnum):
    @classmethod
    def _missing_(cls, value):
        lowered = str(value).lower()
        return next((member for member in cls if member.value.lower() == lowered), None)
