"""A clock for tests of code that measures time: it moves only when the test moves it."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when told: ``clock()`` reads it, ``advance(s)`` moves it on by ``s`` seconds."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
