"""Optional dependencies: one place that says what to install when one is missing."""

from __future__ import annotations

import importlib.util

from .errors import MissingDependencyError

# what each optional module is called on import, and the extra that installs it
EXTRAS = {"torch": ("PyTorch", "torch")}


def require(module: str, feature: str) -> None:
    """Raise :class:`MissingDependencyError` naming the extra to install if ``module`` is absent.

    ``find_spec`` also honours ``sys.modules[module] = None`` (how tests hide a package), so the
    check sees what ``import`` would see without importing anything.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise missing(module, feature)


def missing(module: str, feature: str) -> MissingDependencyError:
    """The error for ``feature`` lacking the optional ``module``: what to install, in one line."""
    name, extra = EXTRAS[module]
    return MissingDependencyError(f"{feature} needs {name}, which is not installed: pip install 'rawcv[{extra}]'",
                                  name=module)
