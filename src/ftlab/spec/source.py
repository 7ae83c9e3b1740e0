"""Read a YAML spec keeping the line of every key, so errors can say where they are.

    data, lines = read_yaml(Path("spec.yaml"))
    lines[("train", "learning_rate")]  # -> 14

Hostile input gets one message with a line, never a hang or a traceback: the file must be UTF-8
without control characters, at most MAX_BYTES long, nested at most MAX_DEPTH levels deep, and
its aliases may add at most MAX_ALIAS_NODES nodes (a 2.5 kB "billion laughs" file expands to
10^9 nodes; a real spec has none or a handful). Parsing uses libyaml (yaml.CSafeLoader) when
PyYAML was built with it: ~10x faster than the pure-Python loader on a 100,000-point sweep.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

from ftlab.errors import SpecError

Path_ = tuple[str | int, ...]

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_BYTES = 32 * 1024 * 1024  # a 100,000-point explicit sweep is ~5 MB
MAX_DEPTH = 40  # a spec nests ~6 levels; the checks that walk it recurse once per level
MAX_ALIAS_NODES = 100_000
MAX_INT_DIGITS = 4000  # Python refuses to parse longer integers (sys.int_info.default_max_str_digits)
# YAML 1.1's printable set, minus what it allows (tab, LF, CR, NEL): these are never meant.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
CLIP = 80


def clip(value: Any, limit: int = CLIP) -> str:
    """repr of a value for an error message, cut to ~`limit` characters."""
    return clip_text(repr(value), limit)


def clip_text(text: str, limit: int = CLIP) -> str:
    """A plain string for an error message, cut to ~`limit` characters."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 15] + f"...({len(text)} chars)"


def read_text(path: Path, what: str = "spec file") -> str:
    """The file's text; SpecError naming line and column for non-UTF-8 bytes or control characters."""
    shown = clip_text(str(path), 200)
    try:
        if not path.is_file():
            raise SpecError([f"{what} not found: {shown}"])
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SpecError([f"{what} is {size:,} bytes; the limit is {MAX_BYTES:,}"], source=shown)
        raw = path.read_bytes()
    except (OSError, ValueError) as err:  # ENAMETOOLONG, EACCES, an embedded NUL byte
        raise SpecError([f"cannot read {what} {shown}: {clip_text(getattr(err, 'strerror', None) or err)}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line, col = _line_col(raw, err.start, b"\n")
        raise SpecError(
            [f"line {line}, column {col}: byte 0x{raw[err.start]:02x} is not UTF-8; save the file as UTF-8"], source=shown
        ) from None
    bad = CONTROL.search(text)
    if bad:
        line, col = _line_col(text, bad.start(), "\n")
        raise SpecError(
            [f"line {line}, column {col}: control character U+{ord(bad.group()):04X} is not allowed in YAML; remove it"],
            source=shown,
        )
    return text


def _line_col(text, index: int, newline) -> tuple[int, int]:
    line = text.count(newline, 0, index) + 1
    return line, index - (text.rfind(newline, 0, index) + 1) + 1


def read_yaml(path: Path, what: str = "spec file") -> tuple[Any, "Lines"]:
    """Parse `path`; return (plain data, Lines: yaml path tuple -> 1-based line)."""
    path = Path(path)
    text = read_text(path, what)
    source = clip_text(str(path), 200)
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, Lines(None)
        problems = check_tree(node) if "*" in text else check_plain_tree(node)
        if problems:
            raise SpecError(problems, source=source)
        try:
            data = loader.construct_document(node)
        except (ValueError, OverflowError, TypeError) as err:  # a timestamp like 2024-13-45, a huge exponent
            raise SpecError([f"{_culprit(loader, node)}: cannot read this value: {clip_text(err)}"], source=source) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError([f"{where}YAML syntax error: {clip_text(problem, 200)}"], source=source) from None
    finally:
        loader.dispose()
    return data, Lines(node)


def _culprit(loader: Any, root: yaml.Node) -> str:
    """The line of the first scalar the constructor refuses (the tree is small: check_tree passed)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            try:
                loader.construct_object(node, deep=True)
            except Exception:  # noqa: BLE001 - whatever it raises, this node is the one to name
                return _at(node)
        stack.extend(reversed(_children(node)))
    return "somewhere in the file"


def check_plain_tree(root: yaml.Node) -> list[str]:
    """check_tree for a file without aliases (no '*' in it): a plain walk, no sharing to measure
    (a 100,000-point sweep is a million nodes: this is ~3x faster than the general walk)."""
    problems: list[str] = []
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    scalar = yaml.ScalarNode
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return [f"{_at(node)}: nested more than {MAX_DEPTH} levels deep; a spec needs fewer than 10"]
        if type(node) is scalar:
            if len(node.value) > MAX_INT_DIGITS and node.tag.endswith(":int"):
                problems.append(f"{_at(node)}: an integer of {len(node.value):,} digits; no spec field takes one")
            continue
        if isinstance(node, yaml.MappingNode):
            problems += _key_problems(node)
            for key, value in node.value:
                if type(key) is not scalar:
                    stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in node.value)
    return problems


def check_tree(root: yaml.Node) -> list[str]:
    """Depth, alias expansion, recursion, duplicate and non-scalar keys, over the distinct nodes
    (iterative and memoised: linear in the file's size even when aliases make the tree huge)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    problems: list[str] = []
    own = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        kids = _children(node)
        if finished:
            open_.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if depth[key] > MAX_DEPTH:
                return [f"{_at(node)}: nested more than {MAX_DEPTH} levels deep; a spec needs fewer than 10"]
            if size[key] > own + MAX_ALIAS_NODES:
                return [f"{_at(node)}: aliases expand this value to more than {own + MAX_ALIAS_NODES:,} nodes; write it out"]
            continue
        if key in size:
            continue
        if key in open_:
            return [f"{_at(node)}: recursive alias (a value that contains itself)"]
        open_.add(key)
        own += 1
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            problems += _key_problems(node)
        elif isinstance(node, yaml.ScalarNode) and node.tag.endswith(":int") and len(node.value) > MAX_INT_DIGITS:
            problems.append(f"{_at(node)}: an integer of {len(node.value):,} digits; no spec field takes one")
        for kid in kids:
            if id(kid) in open_:
                return [f"{_at(kid)}: recursive alias (a value that contains itself)"]
            if id(kid) not in size:
                stack.append((kid, False))
    return problems


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _key_problems(node: yaml.MappingNode) -> list[str]:
    problems = []
    seen: set[str] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            problems.append(f"{_at(key_node)}: a key must be a plain name, not a list or mapping")
        elif key_node.value in seen and key_node.value != "<<":
            problems.append(f"{_at(key_node)}, {clip_text(key_node.value)}: duplicate key")
        else:
            seen.add(key_node.value)
    return problems


def _at(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


class Lines:
    """Line of a YAML path, found on demand in the composed node tree (errors are few; a 100,000-point
    sweep has ~800,000 paths, which a precomputed table would hold at ~150 MB)."""

    def __init__(self, root: yaml.Node | None):
        self.root = root

    def find(self, at: Path_) -> yaml.Node | None:
        node = self.root
        for part in at:
            if isinstance(node, yaml.MappingNode):
                # After construction merge keys (<<) are flattened in; the last entry for a key wins.
                node = next((v for k, v in reversed(node.value) if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
            else:
                return None
            if node is None:
                return None
        return node

    def key_line(self, at: Path_) -> int | None:
        """Line of the key `at[-1]` (for a mapping entry), else of the value at `at`."""
        if not at:
            return self.root.start_mark.line + 1 if self.root is not None else None
        parent = self.find(at[:-1])
        if isinstance(parent, yaml.MappingNode):
            for k, _ in reversed(parent.value):
                if isinstance(k, yaml.ScalarNode) and k.value == str(at[-1]):
                    return k.start_mark.line + 1
            return None
        node = self.find(at)
        return node.start_mark.line + 1 if node is not None else None

    def __contains__(self, at: Path_) -> bool:
        return self.key_line(at) is not None

    def __getitem__(self, at: Path_) -> int:
        line = self.key_line(at)
        if line is None:
            raise KeyError(at)
        return line


def format_path(at: Path_) -> str:
    """("datasets", 2, "path") -> "datasets[2].path"."""
    out = ""
    for part in at:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = clip_text(str(part), 40)
            out += f".{text}" if out else text
    return out or "(top level)"


def line_of(at: Path_, lines: Lines | dict) -> int | None:
    """Line of `at`, or of its nearest ancestor that has one."""
    for cut in range(len(at), -1, -1):
        if at[:cut] in lines:
            return lines[at[:cut]]
    return None


def safe_is_file(path: Path) -> bool:
    """Path.is_file that answers False for paths the OS refuses (too long, NUL bytes) instead of raising."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


# Output directories of the experiments a spec `requires:` (ftlab.spec.plan), while it is validated:
# a path inside one (a judge model another spec trains) is produced before this spec runs.
_PENDING: ContextVar[tuple[Path, ...]] = ContextVar("ftlab_pending_outputs", default=())


@contextmanager
def pending_outputs(dirs: list[Path]):
    token = _PENDING.set(_PENDING.get() + tuple(dirs))
    try:
        yield
    finally:
        _PENDING.reset(token)


def produced_by_required(path: Path) -> Path | None:
    """The required experiment's output directory that `path` lies in, if any."""
    try:
        path = path.resolve()
    except (OSError, ValueError, RuntimeError):
        return None
    return next((d for d in _PENDING.get() if path == d or d in path.parents), None)


def safe_exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def env_int(name: str, default: int) -> int:
    """An integer setting from the environment (FTLAB_MAX_RUNS=200000); SpecError when it is not one."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SpecError([f"environment variable {name}={clip(raw)} is not an integer"]) from None
