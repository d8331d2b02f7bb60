"""Every step type a process knows: the built-in activity types, then plugins by entry point.

A plugin is an installed package that declares, in the group ``playbook.step_types``, an entry point
named after its type whose value is the module registering it (``@step_handler("name", WithModel)``).
The CLI (`validate`, `schema`, `show` …) and every worker load them, so a type is known everywhere at once.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from .steps import STEP_HANDLERS

ENTRY_POINT_GROUP = "playbook.step_types"
BUILTIN_MODULES = ("activities.outside", "activities.script", "activities.database", "activities.file")


class PluginError(Exception):
    """A step-type plugin that cannot be loaded, named with its package's entry point."""


def load_step_types() -> list[str]:
    """Import the built-in step-type modules and every installed plugin; the names of the plugin types."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    loaded = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            point.load()
        except Exception as exc:  # a broken plugin is named, never a traceback from somewhere inside it
            raise PluginError(f"step type plugin {point.name!r} ({point.value}): {type(exc).__name__}: {exc}") from None
        if point.name not in STEP_HANDLERS:
            raise PluginError(
                f"step type plugin {point.name!r} ({point.value}) registers no step type {point.name!r}"
                " (decorate its handler with @step_handler)"
            )
        loaded.append(point.name)
    return loaded
