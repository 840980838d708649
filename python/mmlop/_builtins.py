"""Names that ship with mmlop register themselves on first use, not on ``import mmlop``.

The built-in offline world (base ``mmlop-world``, datasets ``world/<name>``) lives in :mod:`mmlop.world`, above
``data/`` and ``model/`` in the dependency order. The registries of those layers call :func:`ensure_registered`
when a lookup misses, so ``load_base("mmlop-world")`` and ``load_dataset("world/shapes")`` work without the
lower layers importing the world (the provider is named here, as a string, and imported only then).
"""

from __future__ import annotations

import importlib

#: Modules with a ``register()`` that registers their names; imported once, on the first missed lookup.
PROVIDERS = ("mmlop.world.builtin",)

_registered = False


def ensure_registered() -> None:
    """Register every built-in provider's names (idempotent; a no-op after the first call)."""
    global _registered
    if _registered:
        return
    _registered = True  # set first: a provider's register() may itself look names up
    for module in PROVIDERS:
        importlib.import_module(module).register()
