"""A cell's id: one variant x one seed (in a search, also a trial index), or such a trained cell moved to a
larger image and window with one transfer method. Built and parsed here only.

    "model.shift=none|seed=1"                                a train cell (factorial variant name)
    "w/o shifting|trial=3|seed=0"                            a search trial of a named variant
    "model.shift=none|seed=1|to=384:24|method=bicubic"       a transfer cell of the first

A variant name never holds ``|`` (the spec refuses one), so the parts split on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """Where a transfer cell moves its trained cell: image size, window size, method."""

    img_size: int
    window_size: int
    method: str


@dataclass(frozen=True)
class CellId:
    variant: str
    seed: int
    search_index: int | None = None
    target: Target | None = None

    def __str__(self) -> str:
        text = f"{self.variant}|seed={self.seed}" if self.search_index is None else (
            f"{self.variant}|trial={self.search_index}|seed={self.seed}")
        if self.target is not None:
            text += f"|to={self.target.img_size}:{self.target.window_size}|method={self.target.method}"
        return text

    @property
    def trained(self) -> CellId:
        """The train cell (a transfer cell's source; a train cell itself)."""
        return CellId(self.variant, self.seed, self.search_index)

    @property
    def is_transfer(self) -> bool:
        return self.target is not None

    @classmethod
    def parse(cls, text: str) -> CellId:
        """The id ``str(cell)`` gave; ValueError for text no cell id has."""
        variant, *parts = str(text).split("|")
        fields: dict[str, str] = {}
        for part in parts:
            key, sep, value = part.partition("=")
            if not sep or key in fields or key not in ("trial", "seed", "to", "method"):
                raise ValueError(f"not a cell id: {text!r} (part {part!r})")
            fields[key] = value
        try:
            target = None
            if "to" in fields or "method" in fields:
                img, window = fields["to"].split(":")
                target = Target(int(img), int(window), fields["method"])
            search = int(fields["trial"]) if "trial" in fields else None
            cell = cls(variant, int(fields["seed"]), search, target)
        except (KeyError, ValueError):
            raise ValueError(f"not a cell id: {text!r}") from None
        if str(cell) != text:
            raise ValueError(f"not a cell id: {text!r} (its parts are out of order)")
        return cell

    @classmethod
    def try_parse(cls, text: str) -> CellId | None:
        try:
            return cls.parse(text)
        except ValueError:
            return None
