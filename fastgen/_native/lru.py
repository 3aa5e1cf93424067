"""A bounded, thread-safe cache of device objects (graphs, workspaces) made on first use."""
from __future__ import annotations

import threading
from collections import OrderedDict


class LeastRecentlyUsed:
    """At most ``limit`` values by key; past that, the least recently used one is dropped."""

    def __init__(self, limit: int):
        self.limit = limit
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key, make):
        """The value of ``key``, made by ``make()`` (under the lock) on first use."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                value = make()
                self._items[key] = value
                while len(self._items) > self.limit:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(key)
            return value

    def values(self) -> list:
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
