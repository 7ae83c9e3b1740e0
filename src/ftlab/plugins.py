"""Named extension points: register by decorator, look up with a did-you-mean on typos.

    generators = Plugins("data generator")

    @generators.register("hem")
    def hem(...): ...

    generators.get("hme")  # UnknownNameError: Unknown data generator 'hme'. Did you mean 'hem'? Available: hem
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from ftlab.errors import UnknownNameError

T = TypeVar("T")


def load_entry(entry: str):
    """"package.module:name" -> that object, imported now (lm-eval's lazy registration: naming a
    component imports nothing until it is used)."""
    import importlib

    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return " Did you mean 'x'?" for the closest choice, or "" when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


class Plugins(Generic[T]):
    """A name -> object table for one kind of extension point."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            available = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownNameError(
                f"Unknown {self.kind} '{name}'.{did_you_mean(name, self._items)} Available: {available}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
