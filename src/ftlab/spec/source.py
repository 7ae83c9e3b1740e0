"""Read a YAML spec keeping the line of every key, so errors can say where they are.

    data, lines = read_yaml(Path("spec.yaml"))
    lines[("train", "learning_rate")]  # -> 14
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ftlab.errors import SpecError

Path_ = tuple[str | int, ...]


def read_yaml(path: Path) -> tuple[Any, dict[Path_, int]]:
    """Parse `path`; return (plain data, {yaml path tuple: 1-based line})."""
    path = Path(path)
    if not path.is_file():
        raise SpecError([f"spec file not found: {path}"])
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError([f"{where}YAML syntax error: {problem}"], source=str(path)) from None
    lines: dict[Path_, int] = {}
    duplicates: list[str] = []
    if node is not None:
        _walk(node, (), lines, duplicates)
    if duplicates:
        raise SpecError(duplicates, source=str(path))
    return data, lines


def _walk(node: yaml.Node, at: Path_, lines: dict[Path_, int], duplicates: list[str]) -> None:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                duplicates.append(f"line {key_node.start_mark.line + 1}, {format_path(at + (key,))}: duplicate key")
            seen.add(key)
            lines[at + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, at + (key,), lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, at + (i,), lines, duplicates)


def format_path(at: Path_) -> str:
    """("datasets", 2, "path") -> "datasets[2].path"."""
    out = ""
    for part in at:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def line_of(at: Path_, lines: dict[Path_, int]) -> int | None:
    """Line of `at`, or of its nearest ancestor that has one."""
    for cut in range(len(at), -1, -1):
        if at[:cut] in lines:
            return lines[at[:cut]]
    return None
