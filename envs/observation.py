"""The environment's observation built in one pass: every key's values are written into one float64 buffer, then one
divide, one clip to the space's bounds and one float32 cast make all keys at once.

Each key of the returned dict is a view of that step's new float32 array (nothing of it is reused by later steps),
so the observation costs a handful of numpy calls instead of three or four per key. The values are those of the
per-key rule ``clip(value / scale, low, high).astype(float32)``, element by element.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class ObservationPacker:
    """The float64 buffer of one env's observation and the scale each element is divided by.

    Args:
        space: The env's ``Dict`` of ``Box`` observation space (bounds of the clip, shapes and float32 dtype).
        order: The keys in the order of the returned dict.
        shapes: Shape of a key's view of the buffer where it is not flat (e.g. ``(H, I)`` for a history), so a
            caller writes a 2-D block with one assignment.
        scales: Divisor of a key's values, broadcast to its shape (keys not named are divided by 1).
    """

    def __init__(
        self,
        space: spaces.Dict,
        order: tuple[str, ...],
        shapes: dict[str, tuple[int, ...]],
        scales: dict[str, np.ndarray | float],
    ) -> None:
        self._slices: dict[str, slice] = {}
        total = 0
        for key in order:
            size = int(np.prod(space[key].shape))
            self._slices[key] = slice(total, total + size)
            total += size
        self._shapes = {key: shapes.get(key, (part.stop - part.start,)) for key, part in self._slices.items()}
        self.raw = np.zeros(total)
        """(total,) the observation's values before scaling and clipping, written through :attr:`views`."""
        self.views = self._views()
        """Key → writable view of :attr:`raw` in the key's shape."""
        self._scale = np.ones(total)
        self._low = np.empty(total)
        self._high = np.empty(total)
        for key, part in self._slices.items():
            view_shape = self.views[key].shape
            self._scale[part] = np.broadcast_to(np.asarray(scales.get(key, 1.0), dtype=float), view_shape).ravel()
            self._low[part] = np.asarray(space[key].low, dtype=float).ravel()
            self._high[part] = np.asarray(space[key].high, dtype=float).ravel()
        self._scaled = np.empty(total)

    def _views(self) -> dict[str, np.ndarray]:
        return {key: self.raw[part].reshape(self._shapes[key]) for key, part in self._slices.items()}

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the views (pickling would copy them apart from :attr:`raw`); they are made again."""
        return {key: value for key, value in self.__dict__.items() if key != "views"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.views = self._views()

    def pack(self) -> dict[str, np.ndarray]:
        """The observation of what :attr:`raw` holds now: key → float32 (flat, the space's shape)."""
        scaled = np.divide(self.raw, self._scale, out=self._scaled)
        np.maximum(scaled, self._low, out=scaled)
        np.minimum(scaled, self._high, out=scaled)
        packed = scaled.astype(np.float32)
        return {key: packed[part] for key, part in self._slices.items()}
