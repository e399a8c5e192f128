# SPDX-License-Identifier: Apache-2.0
"""The semantic class table shared by the simulator, the models and the nodes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SemanticClass:
    id: int
    name: str
    color: tuple[int, int, int]  # RGB, 0..255


@dataclass(frozen=True)
class ClassTable:
    classes: tuple[SemanticClass, ...]

    def __post_init__(self):
        ids = [c.id for c in self.classes]
        if ids != list(range(len(ids))):
            raise ValueError(f'class ids must be 0..{len(ids) - 1} in order, got {ids}')
        if len(ids) > 255:
            raise ValueError('at most 255 classes fit in a mono8 image')

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def id_of(self, name: str) -> int:
        for c in self.classes:
            if c.name == name:
                return c.id
        raise KeyError(f'unknown class {name!r}; known: {self.names}')

    def palette(self) -> np.ndarray:
        """(num_classes, 3) uint8 RGB colours, indexable by class id."""
        return np.array([c.color for c in self.classes], dtype=np.uint8)

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """(H, W) class ids -> (H, W, 3) uint8 RGB. Ids outside the table become black."""
        palette = np.concatenate([self.palette(), np.zeros((256 - len(self), 3), np.uint8)])
        return palette[labels.astype(np.uint8)]

    def to_list(self) -> list[dict]:
        return [{'id': c.id, 'name': c.name, 'color': list(c.color)} for c in self.classes]

    @classmethod
    def from_list(cls, rows: list[dict]) -> 'ClassTable':
        return cls(tuple(SemanticClass(int(r['id']), str(r['name']), tuple(int(v) for v in r['color']))
                         for r in rows))


#: segmentation label of a pixel whose class is unknown (e.g. a bag without a segmentation topic): any id
#: outside the class table is unknown; training ignores such pixels (core.model.encoding) and the metrics skip them
IGNORE_LABEL = 255
#: the classes of the room's shell (what the sonar layout draws), never a body
ROOM_CLASSES = ('wall', 'floor', 'ceiling')

# Structural classes first, then one class per sound-source type of the simulator.
DEFAULT_CLASS_TABLE = ClassTable((
    SemanticClass(0, 'wall', (174, 199, 232)),
    SemanticClass(1, 'floor', (140, 86, 75)),
    SemanticClass(2, 'ceiling', (199, 199, 199)),
    SemanticClass(3, 'person', (214, 39, 40)),
    SemanticClass(4, 'appliance', (44, 160, 44)),
    SemanticClass(5, 'alarm', (255, 127, 14)),
))
