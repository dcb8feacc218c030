"""YAML that a user hands fusionrt (pipelines, rigs, drive metadata), read without surprises.

``yaml.safe_load`` already refuses Python tags, but it expands aliases: a 2 KB file of nested
anchors ("billion laughs") describes billions of nodes, and any code that walks or copies the
result exhausts memory. :func:`load_yaml` composes the node graph first (aliases stay shared
references there, so composing is cheap), counts the nodes the document would have once every
alias is expanded, and refuses a document above ``max_nodes`` or one whose aliases refer to
themselves, before anything is constructed. Bytes that are not UTF-8 and YAML syntax errors are
reported the same way: one :class:`ConfigError` naming the file (and the line, when known).

PyYAML has no such limit of its own (ruamel.yaml neither), hence this small module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fusionrt.runtime.errors import ConfigError

__all__ = ["MAX_YAML_NODES", "load_yaml", "read_yaml"]

#: Nodes a document may expand to. A large rig or pipeline has a few thousand.
MAX_YAML_NODES = 200_000


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes under ``root`` with aliases expanded; stops counting once past ``limit``.

    Shared nodes (anchors) are counted once per reference, memoised by identity, so the
    walk costs the size of the composed graph, not of its expansion. Raises ``ValueError``
    for a node that contains itself.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise ValueError("an alias refers to a node that contains it")
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > limit:
                    break
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node) + size(value_node)
                if total > limit:
                    break
        on_path.discard(key)
        sizes[key] = total
        return total

    return size(root)


def load_yaml(
    text: str | bytes, *, file: str | Path | None = None, max_nodes: int = MAX_YAML_NODES
) -> Any:
    """Parse one YAML document safely (see the module docstring); ``None`` for an empty one.

    ``file`` only names the source in errors. Raises :class:`ConfigError`.
    """
    where = None if file is None else str(file)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
                file=where,
                offset=exc.start,
            ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        try:
            size = _expanded_size(node, max_nodes)
        except (ValueError, RecursionError) as exc:
            message = str(exc) if isinstance(exc, ValueError) else "nesting too deep"
            raise ConfigError(f"refused YAML: {message}", file=where) from None
        if size > max_nodes:
            raise ConfigError(
                f"refused YAML: its aliases expand to more than {max_nodes} nodes", file=where
            )
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"not valid YAML: {problem}", file=where, line=line) from None
    except RecursionError:
        raise ConfigError("refused YAML: nesting too deep", file=where) from None


def read_yaml(path: str | Path, *, max_nodes: int = MAX_YAML_NODES) -> Any:
    """:func:`load_yaml` of a file; an unreadable file is a :class:`ConfigError` naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    return load_yaml(data, file=path, max_nodes=max_nodes)
