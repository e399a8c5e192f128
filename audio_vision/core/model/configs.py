# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by every config dataclass: strict dict round-trips."""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar('T')


def config_from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    """Build dataclass `cls` from a dict, refusing unknown keys with a message naming them."""
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f'{cls.__name__}: unknown key(s) {unknown}; known: {sorted(names)}')
    for f in dataclasses.fields(cls):
        # Tuples survive YAML/JSON as lists; convert back so configs compare equal.
        if f.name in data and isinstance(data[f.name], list) and 'tuple' in str(f.type):
            data[f.name] = tuple(data[f.name])
    return cls(**data)


def config_to_dict(config) -> dict[str, Any]:
    return dataclasses.asdict(config)
