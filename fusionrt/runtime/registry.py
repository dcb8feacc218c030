"""The plugin manager: built-in plugins and entry points, component lookup and listing.

Built-in plugins are modules registered through exactly the same path as third-party plugins
found through the entry-point group ``fusionrt``: their registration hooks are called once, each
returned class is checked against the base class of its kind, and a name used twice within a
kind is an error naming both plugins. Nothing here runs per message.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from fusionrt.runtime import hookspecs
from fusionrt.runtime.components import COMPONENT_BASES
from fusionrt.runtime.errors import PluginError

HOOK_PREFIX = "fusionrt_"

#: Registration hook of each component kind.
REGISTRATION_HOOKS: dict[str, str] = {
    "sensor": "fusionrt_sensors",
    "source": "fusionrt_sources",
    "sink": "fusionrt_sinks",
    "model": "fusionrt_models",
    "backend": "fusionrt_backends",
    "fuser": "fusionrt_fusers",
}

#: Modules of the built-in plugins, registered like third-party plugins (name = module name).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "fusionrt.plugins.sensors.camera",
    "fusionrt.plugins.sensors.lidar",
    "fusionrt.plugins.sensors.radar",
    "fusionrt.plugins.sensors.text",
    "fusionrt.plugins.sources",
    "fusionrt.plugins.sinks",
    "fusionrt.plugins.ros2",
    "fusionrt.plugins.models.reference.model",
    "fusionrt.plugins.fusers.components",
    "fusionrt.runtime.engines.plugin",
)


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """Where a plugin comes from: its registered name, distribution and entry point."""

    name: str
    distribution: str
    version: str
    entry_point: str | None = None
    module: str = ""

    def where(self) -> dict[str, str | None]:
        """The identifying fields, as keyword context for errors."""
        return {
            "plugin": self.name,
            "distribution": self.distribution,
            "entry_point": self.entry_point,
        }


@dataclass(frozen=True, slots=True)
class ComponentInfo:
    """A component class contributed by a plugin."""

    kind: str
    name: str
    cls: type
    plugin: PluginInfo

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description for ``fusionrt plugins --json``."""
        return {
            "kind": self.kind,
            "name": self.name,
            "class": f"{self.cls.__module__}.{self.cls.__qualname__}",
            "plugin": self.plugin.name,
            "distribution": self.plugin.distribution,
            "version": self.plugin.version,
            "entry_point": self.plugin.entry_point,
        }


class _FusionPluginManager(pluggy.PluginManager):
    """Also accepts unmarked module-level ``fusionrt_*`` functions as hook implementations.

    Like pytest does for ``pytest_*``: a plugin author who forgets ``@hookimpl`` is not
    silently ignored.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return {
                    "wrapper": False,
                    "hookwrapper": False,
                    "optionalhook": False,
                    "tryfirst": False,
                    "trylast": False,
                    "specname": None,
                }
        return opts


class Registry:
    """All plugins of a session and the components they contribute."""

    def __init__(self) -> None:
        self.pm = _FusionPluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, PluginInfo] = {}
        self._components: dict[tuple[str, str], ComponentInfo] = {}
        self.disabled: frozenset[str] = frozenset()

    @classmethod
    def create(
        cls,
        disabled: Iterable[str] = (),
        *,
        builtins: Sequence[str] = BUILTIN_PLUGINS,
        entry_points: bool = True,
    ) -> Registry:
        """A registry with the built-in plugins and (by default) every installed entry point.

        ``disabled`` names plugins to skip (built-in module names or entry-point names), like
        pytest's ``-p no:NAME``.
        """
        registry = cls()
        registry.disabled = frozenset(disabled)
        for module_name in builtins:
            if module_name in registry.disabled:
                continue
            version = _version_of("fusionrt")
            info = PluginInfo(module_name, "fusionrt", version, None, module_name)
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                message = f"built-in plugin failed to import: {exc}"
                raise PluginError(message, **info.where()) from exc
            registry.register(module, info)
        if entry_points:
            registry.load_entry_points()
        return registry

    # -- registration ---------------------------------------------------------------------

    def load_entry_points(self, group: str = hookspecs.ENTRY_POINT_GROUP) -> None:
        """Import and register every entry point of ``group`` that is not disabled."""
        for entry_point in sorted(metadata.entry_points(group=group), key=lambda ep: ep.name):
            if entry_point.name in self.disabled or entry_point.name in self._plugins:
                continue
            dist = entry_point.dist
            info = PluginInfo(
                name=entry_point.name,
                distribution=dist.name if dist is not None else "<unknown>",
                version=dist.version if dist is not None else "",
                entry_point=f"{entry_point.name} = {entry_point.value}",
                module=entry_point.module,
            )
            try:
                plugin = entry_point.load()
            except Exception as exc:
                raise PluginError(
                    f"entry point failed to import: {type(exc).__name__}: {exc}", **info.where()
                ) from exc
            self.register(plugin, info)

    def register(self, plugin: object, info: PluginInfo) -> None:
        """Register ``plugin`` (a module or object with hook functions) and its components."""
        if info.name in self._plugins:
            raise PluginError("a plugin with this name is already registered", **info.where())
        try:
            self.pm.register(plugin, name=info.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"invalid hook implementation: {exc}", **info.where()) from exc
        except ValueError as exc:
            raise PluginError(f"cannot register plugin: {exc}", **info.where()) from exc
        try:
            self._check_hooks_known(plugin, info)
            self._plugins[info.name] = info
            for kind in REGISTRATION_HOOKS:
                for cls in self._call_registration(plugin, kind, info):
                    self._add_component(kind, cls, info)
        except PluginError:
            self.pm.unregister(plugin)
            self._plugins.pop(info.name, None)
            self._components = {k: c for k, c in self._components.items() if c.plugin != info}
            raise

    def _check_hooks_known(self, plugin: object, info: PluginInfo) -> None:
        for hook_caller in self.pm.get_hookcallers(plugin) or []:
            if hook_caller.spec is None:
                raise PluginError(
                    f"implements unknown hook {hook_caller.name!r} (known: "
                    f"{', '.join(sorted(_known_hooks()))})",
                    **info.where(),
                )

    def _call_registration(self, plugin: object, kind: str, info: PluginInfo) -> list[type]:
        hook_caller = getattr(self.pm.hook, REGISTRATION_HOOKS[kind])
        classes: list[type] = []
        for impl in hook_caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                returned = impl.function()
            except Exception as exc:
                raise PluginError(
                    f"{impl.function.__name__}() raised {type(exc).__name__}: {exc}",
                    **info.where(),
                ) from exc
            if returned is None:
                continue
            if isinstance(returned, type) or not isinstance(returned, Iterable):
                raise PluginError(
                    f"{impl.function.__name__}() must return a list of classes, "
                    f"got {type(returned).__name__}",
                    **info.where(),
                )
            classes.extend(returned)
        return classes

    def _add_component(self, kind: str, cls: Any, info: PluginInfo) -> None:
        base = COMPONENT_BASES[kind]
        shown = getattr(cls, "__qualname__", repr(cls))
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"{kind} component must be a subclass of {base.__module__}.{base.__qualname__}",
                component=shown,
                **info.where(),
            )
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"{kind} component has no `name` class attribute", component=shown, **info.where()
            )
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
            raise PluginError(
                f"{kind} component leaves abstract methods unimplemented: {missing}",
                component=name,
                **info.where(),
            )
        existing = self._components.get((kind, name))
        if existing is not None:
            raise PluginError(
                f"{kind} name {name!r} is already provided by plugin {existing.plugin.name!r} "
                f"(distribution {existing.plugin.distribution!r}, entry point "
                f"{existing.plugin.entry_point!r})",
                component=name,
                **info.where(),
            )
        self._components[(kind, name)] = ComponentInfo(kind, name, cls, info)

    # -- lookup ---------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """The pluggy hook relay, for lifecycle and observer hooks."""
        return self.pm.hook

    def plugins(self) -> list[PluginInfo]:
        """Registered plugins in registration order."""
        return list(self._plugins.values())

    def components(self, kind: str | None = None) -> list[ComponentInfo]:
        """Registered components (of one kind, or all), sorted by kind and name."""
        if kind is not None and kind not in REGISTRATION_HOOKS:
            raise PluginError(f"unknown component kind {kind!r}; kinds: {list(REGISTRATION_HOOKS)}")
        found = [c for (k, _), c in self._components.items() if kind in (None, k)]
        return sorted(found, key=lambda c: (c.kind, c.name))

    def component(self, kind: str, name: str) -> ComponentInfo:
        """The component of ``kind`` named ``name``; a ``PluginError`` lists what exists."""
        info = self._components.get((kind, name))
        if info is None:
            known = ", ".join(c.name for c in self.components(kind)) or "none"
            raise PluginError(f"no {kind} named {name!r} (installed {kind}s: {known})")
        return info


def _known_hooks() -> list[str]:
    return [name for name in dir(hookspecs) if name.startswith(HOOK_PREFIX)]


def _version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""
