"""Plugins found by name: the families (harness/families/) and the datasets (harness/datasets/).

A kind of plugin is a package whose modules each end with `<ATTRIBUTE> = <an instance>`: every
module of the package (names without a leading `_`, but `base`) is imported and registered,
then the modules named in an environment variable (comma-separated module names or .py paths,
read in every process, Ray workers included), then any passed to `load_module` or `register`.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

NAME = re.compile(r"[a-z][a-z0-9_]*")


class Registry:
    """The plugins of one kind, by name. `check(plugin, others)` raises ValueError for a plugin
    that cannot be registered (its own rules: names that collide, ...)."""

    def __init__(self, kind: str, package: str, attribute: str, cls: type, env: str,
                 check: Callable[[Any, list[Any]], None] = lambda plugin, others: None):
        self.kind, self.package, self.attribute, self.cls, self.env, self.check = (
            kind, package, attribute, cls, env, check)
        self.plugins: dict[str, Any] = {}
        self.discovered = False

    def register(self, plugin: Any) -> Any:
        """Add a plugin, replacing one of the same name."""
        if not NAME.fullmatch(plugin.name or ""):
            raise ValueError(f"{self.kind} name {plugin.name!r}: use lower-case letters, digits and '_'")
        self.check(plugin, [p for p in self.plugins.values() if p.name != plugin.name])
        self.plugins[plugin.name] = plugin
        return plugin

    def unregister(self, name: str) -> None:
        self.plugins.pop(name, None)

    def load_module(self, name_or_path: str | Path) -> Any:
        """Import a plugin module (a module name, or a .py file) and register what it names."""
        text = str(name_or_path)
        if text.endswith(".py"):
            path = Path(text)
            spec = importlib.util.spec_from_file_location(f"harness_{self.kind}_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise ValueError(f"{path}: cannot be imported")
            module: ModuleType = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(text)
        plugin = getattr(module, self.attribute, None)
        if not isinstance(plugin, self.cls):
            raise ValueError(f"{text}: has no {self.attribute} = <a {self.cls.__module__}.{self.cls.__name__}>")
        return self.register(plugin)

    def discover(self) -> None:
        if self.discovered:
            return
        self.discovered = True
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_") and info.name != "base":
                self.load_module(f"{self.package}.{info.name}")
        for extra in filter(None, (x.strip() for x in os.environ.get(self.env, "").split(","))):
            self.load_module(extra)

    def find(self, name: str) -> Any | None:
        self.discover()
        return self.plugins.get(name)

    def get(self, name: str) -> Any:
        plugin = self.find(name)
        if plugin is None:
            raise KeyError(f"{self.kind} {name!r} is not one of {', '.join(sorted(self.plugins))}")
        return plugin

    def all(self) -> list[Any]:
        self.discover()
        return list(self.plugins.values())
