"""Choosing the source that opens a drive: by what each registered source says it can read.

``fusionrt run --source PATH`` (and ``bench``, ``fleet run``) never names a source in code:
every registered source that reads recordings is asked :meth:`Source.can_open
<fusionrt.runtime.components.Source.can_open>`, and the one that says yes opens the path —
the built-in ``rosbag``, ``kitti`` and ``nuscenes`` and any third-party source alike.
``--source-kind NAME`` chooses one instead (two that both can, or a drive only one of several
formats can be read as). Every refusal is one :class:`ConfigError` naming the path: none can
(listing what each expects), several can (naming them), the chosen one is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fusionrt.runtime.components import Source
from fusionrt.runtime.errors import ConfigError, FusionError, PluginError
from fusionrt.runtime.live import LiveSource
from fusionrt.runtime.registry import ComponentInfo, Registry

__all__ = ["can_open", "open_source", "recorded_sources", "source_class"]


def recorded_sources(registry: Registry) -> list[ComponentInfo]:
    """The registered sources that read recordings (live inputs open no path), by name."""
    return [info for info in registry.components("source") if not issubclass(info.cls, LiveSource)]


def _can_open(info: ComponentInfo, path: Path) -> bool:
    try:
        return bool(info.cls.can_open(path))  # type: ignore[attr-defined]
    except Exception as exc:  # a plugin's bug must name the plugin, not look like our error
        raise PluginError(
            f"source {info.name!r}: can_open raised {type(exc).__name__}: {exc}",
            component=info.name,
            **info.plugin.where(),
        ) from exc


def _described(infos: Sequence[ComponentInfo]) -> str:
    return "; ".join(
        f"{info.name}: {getattr(info.cls, 'opens', '') or 'no description'}" for info in infos
    )


def source_class(path: Path, registry: Registry, kind: str | None = None) -> type[Source]:
    """The source class that opens ``path``: the one named ``kind``, else the one registered
    source that can open it (see the module docstring)."""
    recorded = recorded_sources(registry)
    if kind is not None:
        chosen = next((info for info in recorded if info.name == kind), None)
        if chosen is None:
            known = ", ".join(info.name for info in recorded) or "none"
            raise ConfigError(
                f"no source {kind!r} reads recordings (installed: {known})",
                key="--source-kind",
            )
        return chosen.cls
    willing = [info for info in recorded if _can_open(info, path)]
    if len(willing) == 1:
        return willing[0].cls
    if willing:
        names = ", ".join(f"{i.name} ({i.plugin.distribution})" for i in willing)
        raise ConfigError(
            f"several sources can open this drive: {names}; choose one with --source-kind",
            path=str(path),
        )
    raise ConfigError(
        f"no installed source can open this drive ({_described(recorded) or 'none installed'})",
        path=str(path),
    )


def can_open(path: Path, registry: Registry, kind: str | None = None) -> bool:
    """Whether a registered source (the one named ``kind``) can open ``path``: what tells a
    drive among the matches of ``fleet run --drives 'drives/*'``."""
    path = Path(path)
    return any(
        _can_open(info, path)
        for info in recorded_sources(registry)
        if kind is None or info.name == kind
    )


def open_source(
    path: Path, registry: Registry, topics: Sequence[str] | None, kind: str | None = None
) -> Source:
    """The drive at ``path``, only ``topics`` of it (``None``: all), opened by the source
    :func:`source_class` chooses. The source's own errors (a broken drive) pass through."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("no drive at this path", path=str(path))
    cls = source_class(path, registry, kind)
    try:
        source: Source = cls(path, topics=None if topics is None else list(topics))  # type: ignore[call-arg]
    except FusionError:
        raise
    except TypeError as exc:  # not built as the contract says: cls(path, topics=...)
        raise PluginError(
            f"source {cls.name!r} cannot be opened as {cls.__name__}(path, topics=...): {exc}",
            component=cls.name,
        ) from exc
    return source
