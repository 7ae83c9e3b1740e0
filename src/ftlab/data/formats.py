"""Read chat datasets in the common row formats into Examples, reporting every bad row at once.

    from ftlab.data.formats import load_examples, write_examples, read_examples
    examples = load_examples(Path("data/train.jsonl"), labels=["P", "N"])
    write_examples(run_dir / "train.jsonl", examples)   # ftlab's normalised form
    read_examples(run_dir / "train.jsonl")

Files are .jsonl (one object per line) or .json (one top-level array of objects). Row formats,
detected per row unless `format` forces one:

    sharegpt           {"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}]}
    messages           {"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}]}
    prompt_completion  {"prompt": str | messages, "completion": str | messages}  or  {"prompt", "label"}
    alpaca             {"instruction": ..., "input": ... (optional), "output": ..., "system": (optional)}

Problems are reported as one DataError, "<path>, line <n>: <what is wrong>", so a user fixes the
whole file in one pass instead of one row per run.
"""

from __future__ import annotations

import bisect
import json
import re
from pathlib import Path
from typing import Any

from ftlab.atomic import write_jsonl
from ftlab.data.example import ROLES, Example
from ftlab.errors import DataError
from ftlab.plugins import did_you_mean

FORMATS = ("sharegpt", "messages", "prompt_completion", "alpaca")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
_WHITESPACE = re.compile(r"[ \t\r\n]*")  # JSON's four whitespace characters
MAX_REPORTED = 10  # enough to see the pattern; a broken 50k-row file should not print 50k lines

Messages = list[dict[str, str]]


class RowError(Exception):
    """One row is unusable; the message says what is wrong and what to do."""


def load_examples(
    path: Path,
    *,
    format: str = "auto",
    labels: list[str] | None = None,
    label_field: str | None = None,
    require_answer: bool = True,
) -> list[Example]:
    """Read a .jsonl/.json dataset; raise one DataError listing every bad row.

    labels=None: no label check (every Example.label is None; a generation task).
    require_answer=False: a row with a prompt and no answer gives Example.completion=None
    (evaluation-only splits); True (train) reports such a row as bad."""
    path = Path(path)
    if format != "auto" and format not in FORMATS:
        raise DataError(
            f"Unknown data format '{format}'.{did_you_mean(format, FORMATS)} "
            f"Available: auto, {', '.join(FORMATS)}"
        )
    rows, problems = read_rows(path)
    examples = []
    for line, row in rows:
        try:
            examples.append(parse_row(row, f"{path.name}:{line}", format, labels, label_field, require_answer))
        except RowError as e:
            problems.append((line, str(e)))
    if problems:
        raise DataError(describe_problems(path, problems))
    if not examples:
        raise DataError(f"{path}: the file has no rows; add examples or point the spec at another file")
    return examples


def write_examples(path: Path, examples: list[Example]) -> None:
    """Write ftlab's normalised JSONL (one Example.to_json per line), atomically."""
    write_jsonl(Path(path), [e.to_json() for e in examples])


def read_examples(path: Path) -> list[Example]:
    """Read a file written by write_examples; an empty file is an empty list."""
    path = Path(path)
    rows, problems = read_rows(path)
    examples = []
    for line, row in rows:
        try:
            examples.append(Example.from_json(row))
        except ValueError as e:
            problems.append((line, f"{e}; this file should be written by ftlab, regenerate it"))
    if problems:
        raise DataError(describe_problems(path, problems))
    return examples


def describe_problems(path: Path, problems: list[tuple[int, str]]) -> str:
    problems = sorted(problems, key=lambda p: p[0])
    lines = [f"{path}, line {line}: {what}" for line, what in problems[:MAX_REPORTED]]
    if len(problems) > MAX_REPORTED:
        lines.append(f"... and {len(problems) - MAX_REPORTED} more")
    if len(problems) == 1:
        return lines[0]
    return f"{path}: {len(problems)} bad rows\n" + "\n".join(lines)


# ---- files -> (line, object) ----------------------------------------------------------------


def read_rows(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, str]]]:
    """Return ((line, row) for each object, (line, problem) for each unreadable row)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        # utf-8-sig: files saved by Windows editors start with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); re-save the file as UTF-8") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        items = _jsonl_items(text)
    elif suffix == ".json":
        items = _json_array_items(path, text)
    else:
        raise DataError(f"{path}: unsupported file type '{path.suffix}'; use .jsonl or .json")
    rows, problems = [], []
    for line, obj, error in items:
        if error is not None:
            problems.append((line, error))
        elif not isinstance(obj, dict):
            problems.append((line, f"expected a JSON object, got {_json_type(obj)}"))
        else:
            rows.append((line, obj))
    return rows, problems


def _jsonl_items(text: str) -> list[tuple[int, Any, str | None]]:
    items: list[tuple[int, Any, str | None]] = []
    # split("\n"), not splitlines(): U+2028 inside a JSON string is legal and must not split a row.
    for n, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            items.append((n, json.loads(raw), None))
        except json.JSONDecodeError as e:
            items.append((n, None, f"not valid JSON ({e.msg}, column {e.colno}); each line must be one JSON object"))
    return items


def _json_array_items(path: Path, text: str) -> list[tuple[int, Any, str | None]]:
    """Decode a top-level array item by item so each item keeps the line it starts on."""
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(offset: int) -> int:
        return bisect.bisect_left(newlines, offset) + 1

    decoder = json.JSONDecoder()
    items: list[tuple[int, Any, str | None]] = []
    i = _skip_ws(text, 0)
    if i == len(text):
        return items
    if not text.startswith("[", i):
        raise DataError(
            f"{path}, line {line_at(i)}: a .json file must hold one array of objects, [{{...}}, ...]; "
            "for one object per line name the file .jsonl"
        )
    i = _skip_ws(text, i + 1)
    closed = text.startswith("]", i)
    while not closed:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            # Past a syntax error the item boundaries are unknown, so stop here.
            items.append((e.lineno, None, f"not valid JSON ({e.msg}, column {e.colno})"))
            return items
        items.append((line_at(i), obj, None))
        i = _skip_ws(text, end)
        closed = text.startswith("]", i)
        if not closed and not text.startswith(",", i):
            items.append((line_at(i), None, "expected ',' or ']' after the array item"))
            return items
        i = _skip_ws(text, i + 1) if not closed else i
    i = _skip_ws(text, i + 1)
    if i < len(text):
        items.append((line_at(i), None, "unexpected text after the closing ']'"))
    return items


def _skip_ws(text: str, i: int) -> int:
    return _WHITESPACE.match(text, i).end()  # type: ignore[union-attr]  # "*" always matches


def _json_type(obj: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if obj is None else names.get(type(obj), type(obj).__name__)


# ---- row -> Example -------------------------------------------------------------------------


def parse_row(
    row: dict[str, Any],
    source: str,
    format: str,
    labels: list[str] | None,
    label_field: str | None,
    require_answer: bool = True,
) -> Example:
    """Convert one row; raise RowError saying what is wrong and what to do.

    With require_answer=False a row with a prompt and no answer (absent, null or blank) gives
    completion=None; with labels=None no label is read or checked (label stays None)."""
    fmt = format if format != "auto" else detect_format(row)
    prompt, completion, used = PARSERS[fmt](row, require_answer)
    label = None
    if labels is not None and (completion is not None or label_field is not None):
        label = extract_label(row, completion or "", labels, label_field)
    meta = {k: v for k, v in row.items() if k not in used and k != label_field}
    if "source" in meta:
        # Many hub datasets have their own "source" column; keep it rather than overwrite it.
        meta["row_source"] = meta.pop("source")
    meta["source"] = source
    return Example(prompt=prompt, completion=completion, label=label, meta=meta)


def detect_format(row: dict[str, Any]) -> str:
    for key, fmt in (("conversations", "sharegpt"), ("messages", "messages"),
                     ("instruction", "alpaca"), ("prompt", "prompt_completion")):
        if key in row:
            return fmt
    keys = ", ".join(repr(k) for k in row) or "none"
    raise RowError(
        f"unknown row format (keys: {keys}); give 'conversations' (sharegpt), 'messages', "
        "'prompt' + 'completion', or 'instruction' + 'output' (alpaca); other column names "
        "can be mapped with the dataset's columns: {prompt: <column>, completion: <column>}"
    )


def extract_label(row: dict[str, Any], completion: str, labels: list[str], label_field: str | None) -> str:
    """The label column if named, else the completion itself, else its last \\boxed{...}."""
    if label_field is not None:
        if row.get(label_field) is None:
            raise RowError(f"missing label field '{label_field}'; add it to the row or change task.label_field")
        label = str(row[label_field]).strip()
    else:
        label = completion.strip()
        boxed = last_boxed(completion)
        if label not in labels and boxed is not None:
            label = boxed
    if label not in labels:
        shown = label if len(label) <= 60 else label[:57] + "..."
        raise RowError(
            f"label {shown!r} is not in the label set {labels!r}; fix the row or add the label to task.labels"
        )
    return label


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (braces may nest, as in \\boxed{\\text{A}}), stripped."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i = start + len("\\boxed{")
    depth = 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip()
    return None


NO_ANSWER = "; rows without an answer are accepted only in valid/test splits"


def _sharegpt(row: dict[str, Any], require_answer: bool) -> tuple[Messages, str | None, set[str]]:
    turns = _field(row, "conversations", list)
    messages = []
    for k, turn in enumerate(turns):
        where = f"conversations[{k}]"
        if not isinstance(turn, dict):
            raise RowError(f"{where} must be an object with 'from' and 'value'")
        who = turn.get("from")
        if who not in SHAREGPT_ROLES:
            raise RowError(f"{where}.from is {who!r}; use one of {', '.join(SHAREGPT_ROLES)}")
        value = turn.get("value")
        if not isinstance(value, str):
            raise RowError(f"{where}.value must be a string")
        messages.append({"role": SHAREGPT_ROLES[who], "content": value})
    prompt, completion = _split_last(messages, "conversations", require_answer)
    return prompt, completion, {"conversations"}


def _messages(row: dict[str, Any], require_answer: bool) -> tuple[Messages, str | None, set[str]]:
    prompt, completion = _split_last(_message_list(row, "messages"), "messages", require_answer)
    return prompt, completion, {"messages"}


def _prompt_completion(row: dict[str, Any], require_answer: bool) -> tuple[Messages, str | None, set[str]]:
    if "prompt" not in row:
        raise RowError("missing 'prompt'; add it or check the format")
    raw = row["prompt"]
    if isinstance(raw, str):
        if not raw.strip():
            raise RowError("'prompt' is empty; write the question or drop the row")
        prompt = [{"role": "user", "content": raw}]
    elif isinstance(raw, list):
        prompt = _message_list(row, "prompt")
    else:
        raise RowError(f"'prompt' must be a string or a list of messages, got {_json_type(raw)}")
    raw = row.get("completion")
    if not require_answer and _blank(raw) and _blank(row.get("label")):
        return prompt, None, {"prompt", "completion"}
    if "completion" in row:
        if isinstance(raw, str):
            completion = raw
        else:
            # A conversational completion may carry turns before the answer; they are context.
            before, completion = _split_last(_message_list(row, "completion"), "completion", True)
            prompt = prompt + before
        if not completion.strip():
            raise RowError(f"'completion' is empty; write the answer or drop the row{NO_ANSWER}")
        return prompt, completion, {"prompt", "completion"}
    if row.get("label") is not None:
        return prompt, str(row["label"]), {"prompt", "label"}
    raise RowError(f"has 'prompt' but no 'completion' (or 'label'); add the answer{NO_ANSWER}")


def _alpaca(row: dict[str, Any], require_answer: bool) -> tuple[Messages, str | None, set[str]]:
    instruction = _field(row, "instruction", str)
    output = None if not require_answer and _blank(row.get("output")) else _field(row, "output", str)
    extra = row.get("input")
    if extra is not None and not isinstance(extra, str):
        raise RowError(f"'input' must be a string, got {_json_type(extra)}")
    system = row.get("system")
    if system is not None and not isinstance(system, str):
        raise RowError(f"'system' must be a string, got {_json_type(system)}")
    user = instruction + ("\n\n" + extra if extra else "")
    prompt = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return prompt, output, {"instruction", "input", "output", "system"}


PARSERS = {"sharegpt": _sharegpt, "messages": _messages, "prompt_completion": _prompt_completion, "alpaca": _alpaca}


def _blank(value: Any) -> bool:
    """No answer: absent, null, or a blank string (CSV and parquet write missing cells as '')."""
    return value is None or (isinstance(value, str) and not value.strip())


def _field(row: dict[str, Any], key: str, kind: type) -> Any:
    """row[key], present, of `kind`, and not empty."""
    if key not in row:
        raise RowError(f"missing '{key}'; add it or check the format")
    value = row[key]
    if not isinstance(value, kind):
        want = "a string" if kind is str else "an array" if kind is list else kind.__name__
        raise RowError(f"'{key}' must be {want}, got {_json_type(value)}")
    if not (value.strip() if isinstance(value, str) else value):
        raise RowError(f"'{key}' is empty; fill it in or drop the row")
    return value


def _message_list(row: dict[str, Any], key: str) -> Messages:
    messages = []
    for k, m in enumerate(_field(row, key, list)):
        if not isinstance(m, dict):
            raise RowError(f"{key}[{k}] must be an object with 'role' and 'content'")
        if m.get("role") not in ROLES:
            raise RowError(f"{key}[{k}].role is {m.get('role')!r}; use one of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            raise RowError(f"{key}[{k}].content must be a string")
        messages.append({"role": m["role"], "content": m["content"]})
    return messages


def _split_last(messages: Messages, key: str, require_answer: bool) -> tuple[Messages, str | None]:
    """The last message is the answer to train on, so it must be the assistant's and not empty.
    Without require_answer, a conversation ending in a user turn (or a blank assistant turn) is
    a prompt with no answer."""
    last = messages[-1]
    if not require_answer and (last["role"] != "assistant" or not last["content"].strip()):
        prompt = messages if last["role"] != "assistant" else messages[:-1]
        if not any(m["role"] == "user" for m in prompt):
            raise RowError(f"'{key}' has no user message; add the question")
        return prompt, None
    if last["role"] != "assistant":
        raise RowError(
            f"the last message in '{key}' is from {last['role']!r}; it must be the assistant's answer{NO_ANSWER}"
        )
    if not last["content"].strip():
        raise RowError(f"the last (assistant) message in '{key}' is empty; write the answer or drop the row")
    if key != "completion" and len(messages) < 2:
        raise RowError(f"'{key}' has only the answer; add the user message before it")
    return messages[:-1], last["content"]
