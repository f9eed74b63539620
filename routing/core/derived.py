"""Values of the core's frozen data computed once, on first use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

_Owner = TypeVar("_Owner")
_Value = TypeVar("_Value")


class derived(Generic[_Owner, _Value]):
    """A value computed on first access and stored on the instance.

    Like ``functools.cached_property`` without its per-access lock (Python 3.11), which costs
    more than the values it guards on the decision path; writes the instance ``__dict__``
    directly, so it works on frozen dataclasses.
    """

    def __init__(self, fn: Callable[[_Owner], _Value]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> derived[_Owner, _Value]: ...

    @overload
    def __get__(self, obj: _Owner, owner: type | None = None) -> _Value: ...

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value
        return value
