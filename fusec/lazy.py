"""Names a package imports on first use (PEP 562), so that importing the package stays cheap.

    __getattr__, __dir__ = lazy_names("fusec.tune", {"tune_graph": "fusec.tune.tuner"}, globals(), __all__)

The first lookup of a name imports its module and keeps the value in the package's namespace, so
every later lookup is an ordinary attribute. fusec, fusec.rewrite and fusec.tune use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable


def lazy_names(package: str, where: dict[str, str], namespace: dict, exported: Iterable[str]
               ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level `__getattr__` and `__dir__` of `package`: each name in `where` comes from
    the module `where[name]`; `exported` (its __all__) is listed by dir() whether loaded or not."""
    exported = tuple(exported)

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # the next lookup is an ordinary attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exported))

    return __getattr__, __dir__
