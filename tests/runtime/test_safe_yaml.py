"""User YAML is parsed without alias bombs, encoding tracebacks or unbounded errors."""

from __future__ import annotations

import pytest

from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.safe_yaml import load_yaml, read_yaml


def alias_bomb(levels: int = 9, fan_out: int = 9) -> str:
    """The classic "billion laughs": each level lists the previous one ``fan_out`` times."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * fan_out)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * fan_out)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_it_is_expanded() -> None:
    text = alias_bomb()
    assert len(text) < 2048  # 9**9 strings once expanded
    with pytest.raises(ConfigError, match="expand to more than") as info:
        load_yaml(text, file="pipeline.yaml")
    assert info.value.context["file"] == "pipeline.yaml"


def test_ordinary_aliases_still_work() -> None:
    assert load_yaml("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}


def test_self_referencing_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="refers to a node that contains it"):
        load_yaml("&a [*a]")


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(ConfigError, match="nesting too deep"):
        load_yaml("[" * 50_000)


def test_non_utf8_names_the_file_and_offset(tmp_path) -> None:
    path = tmp_path / "metadata.yaml"
    path.write_bytes(b"rosbag2_bagfile_information:\n  version: \xff\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert info.value.context == {"file": str(path), "offset": 40}
    assert "not UTF-8" in str(info.value)


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("a: 1\nb: [1,\n", file="x.yaml")
    assert info.value.context["line"] == 3


def test_python_tags_stay_refused() -> None:
    with pytest.raises(ConfigError):
        load_yaml("!!python/object/apply:os.system ['true']")


def test_unreadable_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_yaml(tmp_path / "absent.yaml")
