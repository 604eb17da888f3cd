"""The registries of the model's design switches: one per kind of thing, each a name -> class table.

A value of a switch (``model.attention: cosine``, ``head.kind: fpn``) names a kind; the kind is one small class,
registered under that name where it is defined::

    @SIMILARITIES.register("cosine")
    class ScaledCosine(Similarity): ...

This module imports nothing but the standard library, so a config validates its switches without torch: each
registry declares the names of its built-in kinds and the module that defines them, and loads that module the
first time a class is asked for. A kind defined anywhere else (a plugin, a test) joins with the same decorator;
``unregister`` takes it out again. ``docs/extending.md`` walks through adding a kind of each registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from swin_lit.typed import fail


class Registry:
    """The kinds of one switch. ``key`` is the config key whose values it holds (error messages name it),
    ``builtin`` the names ``module`` registers when imported, in the order listings show them; ``absent``, when
    set, is the value that means "no kind" (``relative: none``): allowed, but never a kind's name."""

    def __init__(self, key: str, what: str, module: str, builtin: tuple[str, ...], absent: str | None = None,
                 facts: dict[str, dict] | None = None) -> None:
        self.key, self.what, self.module, self.builtin, self.absent = key, what, module, tuple(builtin), absent
        self.facts = facts or {}  # built-in name -> {attribute: value} that validation reads before any import
        self._classes: dict[str, type] = {}

    # -- registering ------------------------------------------------------------------------------------
    def register(self, name: str):
        """Class decorator: make the class the kind ``name`` (it gets ``cls.name = name``)."""

        def decorate(cls: type) -> type:
            if not name.isidentifier() or name == self.absent:
                other = f" other than {self.absent!r}" if self.absent else ""
                raise ValueError(f"{cls.__name__}: a {self.what} kind needs an identifier name{other}, got {name!r}")
            known = self._classes.get(name)
            if known is not None and known is not cls:
                raise ValueError(f"{self.what} kind {name!r} is already registered ({known.__qualname__})")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorate

    def unregister(self, name: str) -> None:
        """Take a kind registered outside the package out again (built-in kinds stay)."""
        if name in self.builtin:
            raise ValueError(f"{self.what} kind {name!r} is built in; it cannot be unregistered")
        del self._classes[name]

    # -- reading (names without importing anything) ----------------------------------------------------
    def names(self) -> tuple[str, ...]:
        """Every kind's name: the built-in ones first, then those registered since, in registration order."""
        return self.builtin + tuple(n for n in self._classes if n not in self.builtin)

    def allowed(self) -> tuple[str, ...]:
        """The values the config key takes: ``absent`` (if any), then every kind's name."""
        return ((self.absent,) if self.absent else ()) + self.names()

    def check(self, value: str, key: str | None = None) -> None:
        """ConfigError naming ``key`` (default: the registry's) and the allowed values unless ``value`` is one."""
        if value not in self.allowed():
            fail(key or self.key, f"got {value!r}; allowed values are {', '.join(map(repr, self.allowed()))}")

    def fact(self, name: str, attribute: str):
        """A class attribute of kind ``name`` (e.g. ``normalised``): a registered class's own, else the value the
        registry declares for a built-in kind (no import), else the built-in module's class (imports it)."""
        if name in self._classes:
            return getattr(self._classes[name], attribute)
        if attribute in self.facts.get(name, {}):
            return self.facts[name][attribute]
        return getattr(self[name], attribute)

    def having(self, attribute: str) -> tuple[str, ...]:
        """Names of the kinds whose ``attribute`` is true (e.g. the window-normalised relative biases)."""
        return tuple(n for n in self.names() if self.fact(n, attribute))

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    # -- classes (the built-in module is imported on first use) ----------------------------------------
    def __getitem__(self, name: str) -> type:
        if name not in self._classes and name in self.builtin:
            importlib.import_module(self.module)
        if name not in self._classes:
            self.check(name)
            raise LookupError(f"{self.module} did not register the built-in {self.what} kind {name!r}")
        return self._classes[name]

    get = __getitem__

    def items(self) -> list[tuple[str, type]]:
        return [(name, self[name]) for name in self.names()]

    def values(self) -> list[type]:
        return [cls for _, cls in self.items()]

    def __repr__(self) -> str:
        return f"Registry({self.key!r}: {', '.join(self.names())})"


SIMILARITIES = Registry("attention", "attention similarity", "swin_lit.models.attention", ("dot", "cosine"))
RELATIVE_BIASES = Registry("relative", "relative position bias", "swin_lit.models.position",
                           ("table", "cpb_log", "cpb_linear"), absent="none",
                           facts={"table": {"normalised": False, "transfer_methods": ("bicubic",)},
                                  "cpb_log": {"normalised": True, "transfer_methods": ("extrapolate", "renormalize")},
                                  "cpb_linear": {"normalised": True,
                                                 "transfer_methods": ("extrapolate", "renormalize")}},
                           )  # pinned to the classes by a test
HEADS = Registry("kind", "dense head", "swin_lit.models.head_kinds", ("upernet", "fpn", "linear"))
NORM_PLACEMENTS = Registry("norm", "norm placement", "swin_lit.models.placement", ("pre", "res_post"))
SHIFTS = Registry("shift", "shift kind", "swin_lit.models.placement", ("cyclic", "none", "pad"))  # the order the
# config's error message has always listed them in (specs' tests match it)
WINDOWS = Registry("windows", "window kind", "swin_lit.models.window_kinds", ("partition", "sliding"),
                   facts={"partition": {"shifts": True, "partitions": True},
                          "sliding": {"shifts": False, "partitions": False}})  # pinned to the classes by a test

# How a relative bias moves to a larger window (Swin V2 Table 1): the choices a study stores for its transfer
# cells' ``method`` param (fixed for a study's life), and the methods each kind supports (its first: the paper's).
TRANSFER_METHODS = ("bicubic", "extrapolate", "renormalize")


def transfer_methods(relative: str) -> tuple[str, ...]:
    """The transfer methods of a ``relative`` kind, torch-free; ``none`` (no bias to move) takes ``bicubic``."""
    return ("bicubic",) if relative == RELATIVE_BIASES.absent else tuple(RELATIVE_BIASES.fact(relative,
                                                                                            "transfer_methods"))
