"""A minimal observer signal for the Qt-free core.

The architecture guide suggests psygnal; its compiled (mypyc) 0.16.1 wheel aborted the
interpreter with "none_dealloc: deallocating None" after our undo property tests (the pure-Python
build did not), so the core keeps this small, dependency-free version with the same
connect/disconnect/emit shape. Bound methods are held weakly, so a view that goes away without
disconnecting is dropped instead of called.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any


class SignalInstance:
    __slots__ = ("_slots", "__weakref__")

    def __init__(self) -> None:
        self._slots: list[Any] = []  # callables or weakref.WeakMethod

    def connect(self, slot: Callable) -> Callable:
        ref = weakref.WeakMethod(slot) if hasattr(slot, "__self__") and hasattr(slot, "__func__") else slot
        self._slots.append(ref)
        return slot

    def disconnect(self, slot: Callable | None = None) -> None:
        if slot is None:
            self._slots.clear()
            return
        for i, ref in enumerate(self._slots):
            target = ref() if isinstance(ref, weakref.WeakMethod) else ref
            if target == slot:
                del self._slots[i]
                return
        raise ValueError(f"{slot!r} is not connected")

    def emit(self, *args: Any) -> None:
        dead = False
        for ref in list(self._slots):
            if isinstance(ref, weakref.WeakMethod):
                slot = ref()
                if slot is None:
                    dead = True
                    continue
            else:
                slot = ref
            slot(*args)
        if dead:
            self._slots = [r for r in self._slots if not (isinstance(r, weakref.WeakMethod) and r() is None)]

    def __len__(self) -> int:
        return len(self._slots)


class Signal:
    """Class attribute that gives each instance its own SignalInstance."""

    def __init__(self, *types: type) -> None:
        self.types = types
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        inst = obj.__dict__.get(self.name)
        if inst is None:
            inst = obj.__dict__[self.name] = SignalInstance()
        return inst
