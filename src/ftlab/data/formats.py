"""Read chat datasets in the common row formats into Examples, reporting every bad row at once.

    from ftlab.data.formats import load_examples, write_examples, read_examples
    examples = load_examples(Path("data/train.jsonl"), labels=["P", "N"])
    write_examples(run_dir / "train.jsonl", examples)   # ftlab's normalised form
    read_examples(run_dir / "train.jsonl")

Files are .jsonl, .json, .csv, .parquet, HF dataset directories or LLaMA-Factory registrations
(sources.py reads them, streaming where the type allows). Row formats, detected per row unless
`format` (or a registration) forces one; `columns` renames other column names to these keys:

    sharegpt           {"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}],
                        "system": ... (optional, LLaMA-Factory's system column)}
    messages           {"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}]}
    prompt_completion  {"prompt": str | messages, "completion": str | messages}  or  {"prompt", "label"}
    alpaca             {"instruction": ..., "input": ... (optional), "output": ..., "system": (optional),
                        "history": [[instruction, response], ...] (optional)}

Prompt-only rows (no answer) are accepted with require_answer=False and give completion=None.

Problems are reported as one DataError, "<path>, line <n>: <what is wrong>" ("row <i>" for
parquet/HF rows), so a user fixes the whole file in one pass instead of one row per run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ftlab.atomic import write_lines
from ftlab.data.example import ROLES, Example
from ftlab.data.sources import open_source
from ftlab.errors import DataError
from ftlab.plugins import did_you_mean

FORMATS = ("sharegpt", "messages", "prompt_completion", "alpaca")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
MAX_REPORTED = 10  # enough to see the pattern; a broken 50k-row file should not print 50k lines
# Keys that `columns:` may map, and which of them a row cannot do without.
COLUMN_KEYS = ("prompt", "completion", "label", "system", "messages", "conversations", "instruction", "input",
               "output", "history")
_ANSWER_KEYS = {"completion", "output", "label"}
_OPTIONAL_KEYS = {"system", "input", "history"}

Messages = list[dict[str, str]]


class RowError(Exception):
    """One row is unusable; the message says what is wrong and what to do."""


class Problems:
    """Bad rows of one file: the first MAX_REPORTED kept in order, the rest counted (bounded memory
    on a 10^6-row file that is wrong everywhere)."""

    def __init__(self, path: Path, unit: str = "line"):
        self.path, self.unit = Path(path), unit
        self.first: list[tuple[int, str]] = []
        self.count = 0

    def add(self, n: int, what: str) -> None:
        self.count += 1
        if len(self.first) < MAX_REPORTED:
            self.first.append((n, what))

    def lines(self) -> list[str]:
        """One "<path>, <unit> <n>: <problem>" per kept problem, then "... and K more"."""
        out = [f"{self.path}, {self.unit} {n}: {what}" for n, what in self.first]
        if self.count > len(self.first):
            out.append(f"... and {self.count - len(self.first)} more")
        return out

    def message(self) -> str:
        if self.count == 1:
            return self.lines()[0]
        return f"{self.path}: {self.count} bad rows\n" + "\n".join(self.lines())


def load_examples(
    path: Path,
    *,
    format: str = "auto",
    labels: list[str] | None = None,
    label_field: str | None = None,
    require_answer: bool = True,
    columns: dict[str, str] | None = None,
    name_in_registry: str | None = None,
) -> list[Example]:
    """Read a dataset (any type sources.py reads); raise one DataError listing every bad row.

    labels=None: no label check (every Example.label is None; a generation task).
    require_answer=False: a row with a prompt and no answer gives Example.completion=None
    (evaluation-only splits); True (train) reports such a row as bad.
    columns: ftlab key -> the file's column, e.g. {"prompt": "question", "completion": "answer",
    "label": "verdict"} (a mapped label column is the label field unless label_field is given).
    name_in_registry: the entry to read when path is a LLaMA-Factory dataset_info.json."""
    return list(iter_examples(path, format=format, labels=labels, label_field=label_field,
                              require_answer=require_answer, columns=columns, name_in_registry=name_in_registry))


def iter_examples(
    path: Path,
    *,
    format: str = "auto",
    labels: list[str] | None = None,
    label_field: str | None = None,
    require_answer: bool = True,
    columns: dict[str, str] | None = None,
    name_in_registry: str | None = None,
    problems: Problems | None = None,
) -> Iterator[Example]:
    """Stream Examples in file order (the arguments are load_examples'). Bad rows go to
    `problems` when given; otherwise one DataError listing them is raised after the last row,
    so a caller writing rows as they come must treat its output as void on error."""
    path = Path(path)
    if format != "auto" and format not in FORMATS:
        raise DataError(
            f"Unknown data format '{format}'.{did_you_mean(format, FORMATS)} "
            f"Available: auto, {', '.join(FORMATS)}"
        )
    unknown = sorted(set(columns or {}) - set(COLUMN_KEYS))
    if unknown:
        raise DataError(f"{path}: columns may map {', '.join(COLUMN_KEYS)}; not {', '.join(unknown)}")
    source = open_source(path, name_in_registry)
    mapping = {**source.columns, **(columns or {})}
    _check_mapping(source.path, mapping)
    fmt = source.format if format == "auto" and source.format else format
    if "label" in mapping and label_field in (None, mapping["label"]):
        label_field = "label"  # _remap renames the mapped column to "label"
    own = problems is None
    problems = Problems(source.path, source.unit) if own else problems
    problems.path, problems.unit = source.path, source.unit
    found = False
    prefix = f"{source.path.name}:" if source.unit == "line" else f"{source.path.name}#"
    for n, row, error in source.rows:
        found = True
        if error is None and not isinstance(row, dict):
            error = f"expected a JSON object, got {_json_type(row)}"
        if error is not None:
            problems.add(n, error)
            continue
        try:
            row = _remap(row, mapping, source.tags, require_answer)
            yield parse_row(row, f"{prefix}{n}", fmt, labels, label_field, require_answer)
        except RowError as e:
            problems.add(n, str(e))
    if own and problems.count:
        raise DataError(problems.message())
    if own and not found:
        raise DataError(f"{source.path}: the file has no rows; add examples or point the spec at another file")


def write_examples(path: Path, examples: Iterable[Example]) -> int:
    """Write ftlab's normalised JSONL (one Example.to_json per line), atomically and streaming
    (an iterator is written as it is consumed); returns the number written."""
    return write_lines(Path(path), (json.dumps(e.to_json(), sort_keys=True, default=str) + "\n" for e in examples))


def read_examples(path: Path) -> list[Example]:
    """Read a file written by write_examples; an empty file is an empty list."""
    path = Path(path)
    source = open_source(path)
    problems = Problems(path, source.unit)
    examples = []
    for line, row, error in source.rows:
        if error is None:
            try:
                examples.append(Example.from_json(row))
                continue
            except ValueError as e:
                error = f"{e}; this file should be written by ftlab, regenerate it"
        problems.add(line, error)
    if problems.count:
        raise DataError(problems.message())
    return examples


def _remap(row: dict[str, Any], columns: dict[str, str], tags: dict[str, str] | None, require_answer: bool) -> dict:
    """Rename the file's columns to ftlab's keys; turn registry-tagged sharegpt turns into from/value."""
    if columns:
        mapped = set(columns.values())
        out = {k: v for k, v in row.items() if k not in mapped}
        for key, column in columns.items():
            if column in row:
                out[key] = row[column]
            elif key not in _OPTIONAL_KEYS and (require_answer or key not in _ANSWER_KEYS):
                raise RowError(f"missing column '{column}' (columns.{key}); check the column name or fix the row")
        row = out
    turns = row.get("conversations")
    if tags and isinstance(turns, list):
        roles = {tags["user_tag"]: "human", tags["assistant_tag"]: "gpt", tags["system_tag"]: "system"}
        row = {**row, "conversations": [
            {"from": roles.get(t.get(tags["role_tag"]), t.get(tags["role_tag"])), "value": t.get(tags["content_tag"])}
            if isinstance(t, dict) else t
            for t in turns
        ]}
    return row


def _check_mapping(path: Path, mapping: dict[str, str]) -> None:
    """One column feeds one key: mapping prompt and completion to one column would train the model
    to repeat its input. The label may share the answer's column (the label is read from it)."""
    by_column: dict[str, list[str]] = {}
    for key, column in mapping.items():
        by_column.setdefault(column, []).append(key)
    for column, keys in by_column.items():
        if len([k for k in keys if k != "label"]) > 1 or (
                "label" in keys and len(keys) > 1 and not set(keys) - {"label"} <= _ANSWER_KEYS):
            raise DataError(
                f"{path}: columns maps {' and '.join(keys)} to the same column '{column}'; "
                "give each its own column"
            )


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
    # A prompt-only row (completion None) has a label only if its label column holds one.
    if labels is not None and (completion is not None or (label_field is not None and row.get(label_field) is not None)):
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
    system = row.get("system")  # LLaMA-Factory's sharegpt keeps the system prompt in its own column
    if isinstance(system, str) and system.strip() and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    prompt, completion = _split_last(messages, "conversations", require_answer)
    return prompt, completion, {"conversations", "system"} if isinstance(system, str) else {"conversations"}


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
        _check_prompt(prompt, completion)
        return prompt, completion, {"prompt", "completion"}
    if row.get("label") is not None:
        _check_prompt(prompt, str(row["label"]))
        return prompt, str(row["label"]), {"prompt", "label"}
    raise RowError(f"has 'prompt' but no 'completion' (or 'label'); add the answer{NO_ANSWER}")


def _check_prompt(prompt: Messages, completion: str) -> None:
    """A prompt of messages answered by `completion`: it asks something, and it does not end with
    an assistant turn (the answer would follow an answer)."""
    if not any(m["role"] == "user" for m in prompt):
        raise RowError("'prompt' has no user message; add the question")
    if prompt[-1]["role"] == "assistant":
        raise RowError("'prompt' ends with an assistant turn, so the completion is a second answer in a row; "
                       "end the prompt with the user's turn")


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
    prompt = ([{"role": "system", "content": system}] if system else []) + _history(row.get("history"))
    prompt.append({"role": "user", "content": user})
    return prompt, output, {"instruction", "input", "output", "system", "history"}


def _history(history: Any) -> Messages:
    """LLaMA-Factory's alpaca history: earlier [instruction, response] pairs, oldest first."""
    if history is None:
        return []
    if not isinstance(history, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in history
    ):
        raise RowError("'history' must be a list of [instruction, response] string pairs")
    return [m for q, a in history for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]


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


def _check_turns(messages: Messages, key: str) -> None:
    """Two assistant turns in a row are two answers to one question (a lost user turn, or a reply
    split in two): the template would train on a turn that answers nothing."""
    for k in range(1, len(messages)):
        if messages[k]["role"] == messages[k - 1]["role"] == "assistant":
            raise RowError(
                f"'{key}' has two assistant turns in a row ({key}[{k - 1}] and {key}[{k}]); "
                "merge them or add the user turn between them"
            )


def _split_last(messages: Messages, key: str, require_answer: bool) -> tuple[Messages, str | None]:
    """The last message is the answer to train on, so it must be the assistant's and not empty.
    Without require_answer, a conversation ending in a user turn (or a blank assistant turn) is
    a prompt with no answer."""
    _check_turns(messages, key)
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
    if key != "completion" and not any(m["role"] == "user" for m in messages[:-1]):
        raise RowError(f"'{key}' has no user message before the answer; add the question")
    return messages[:-1], last["content"]
