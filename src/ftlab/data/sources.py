"""Where dataset rows come from: one reader per file type, each streaming (position, row) pairs.

    source = open_source(Path("data/train.parquet"))
    for n, row, error in source.rows: ...   # n is a line (jsonl/json/csv) or a row index (parquet/HF)

Types, chosen by what the path is:

    .jsonl                 one JSON object per line; streamed line by line (bounded memory)
    .json                  one top-level array of objects; read whole (keep big data in .jsonl)
    .parquet               pyarrow, streamed in record batches of 1,024 rows
    .csv                   header row + one row per record (stdlib csv: it reports the line each
                           record starts on and keeps every cell a string, so the label '0' stays
                           '0'; pyarrow.csv infers types and reports no lines)
    a directory            an HF `datasets` Dataset saved with save_to_disk (memory-mapped arrow)
    dataset_info.json      a LLaMA-Factory registry; the spec names one entry with
                           `name_in_registry:`; its file_name (relative to the registry) is read
                           as above with the entry's formatting (alpaca/sharegpt), columns and tags

Positions: `line` n is 1-based in the file; `row` i is the 0-based index (df.iloc[i], ds[i]).
Whole-file problems (missing, unreadable, wrong type) raise DataError; row problems come back as
(n, None, "what is wrong; what to do") so the caller can report every bad row at once.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import json
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.errors import DataError
from ftlab.plugins import did_you_mean

Item = tuple[int, Any, "str | None"]  # (line or row, object, problem)

_WHITESPACE = re.compile(r"[ \t\r\n]*")  # JSON's four whitespace characters
_BOM = b"\xef\xbb\xbf"  # files saved by Windows editors start with a byte-order mark
BATCH_ROWS = 1024  # parquet/arrow rows decoded at a time: ~1 MB of 1 kB rows, flat in memory
CSV_FIELD_LIMIT = 64 << 20  # stdlib default is 131,072 chars; a long reasoning trace can pass it
# Chat rows nest 4 levels ({"messages": [{"content": ...}]}); 64 leaves room for any metadata and
# stops a hostile row long before Python's recursion limit (1,000) in json, pydantic or copying.
MAX_DEPTH = 64
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # a \ud800-\udfff escape: legal JSON, not encodable alone

# LLaMA-Factory column roles -> ftlab's row keys (see LLaMA-Factory data/README.md).
LF_COLUMNS = {
    "alpaca": {"prompt": "instruction", "query": "input", "response": "output", "system": "system",
               "history": "history"},
    "sharegpt": {"messages": "conversations", "system": "system"},
}
LF_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
           "system_tag": "system"}
LF_REMOTE = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")


@dataclass
class Source:
    """Rows of one dataset plus what a registration says about reading them."""

    path: Path  # the data file named in messages
    unit: str  # "line" or "row"
    rows: Iterator[Item]
    format: str | None = None  # forced by a LLaMA-Factory entry
    columns: dict[str, str] = field(default_factory=dict)  # ftlab key -> source column
    tags: dict[str, str] | None = None  # sharegpt turn keys/roles when they are not from/value


def open_source(path: Path, name_in_registry: str | None = None) -> Source:
    """The reader for `path`; a LLaMA-Factory registry needs `name_in_registry`."""
    path = Path(path)
    if check_kind(path) == "dir":
        if name_in_registry is not None:
            raise DataError(f"{path}: name_in_registry is set but the path is a directory; point path at dataset_info.json")
        return Source(path, "row", _hf_rows(path))
    if name_in_registry is not None and path.suffix.lower() != ".json":
        raise DataError(
            f"{path}: name_in_registry names an entry of a LLaMA-Factory dataset_info.json; "
            "point path at the registry or drop name_in_registry"
        )
    if path.name == "dataset_info.json" or name_in_registry is not None:
        return _registration(path, name_in_registry)
    return _file_source(path)


def _file_source(path: Path) -> Source:
    suffix = path.suffix.lower()
    readers = {".jsonl": ("line", _jsonl_rows), ".json": ("line", _json_rows), ".csv": ("line", _csv_rows),
               ".parquet": ("row", _parquet_rows)}
    if suffix not in readers:
        raise DataError(
            f"{path}: unsupported file type '{path.suffix}'; use .jsonl, .json, .csv, .parquet, "
            "an HF dataset directory (save_to_disk) or a LLaMA-Factory dataset_info.json"
        )
    unit, reader = readers[suffix]
    return Source(path, unit, reader(path))


def check_kind(path: Path) -> str:
    """"file" or "dir" (an HF dataset directory); anything else raises DataError before a byte is
    read: opening a FIFO blocks until a writer comes, and a device never ends."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror}); check its permissions") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    raise DataError(f"{path}: is {kind}, not a data file; point path at a regular file (copy the data into one)")


def _hf_dir(path: Path) -> None:
    if not (path / "state.json").is_file() and not (path / "dataset_dict.json").is_file():
        raise DataError(
            f"{path}: is a directory but not an HF dataset saved with save_to_disk (no state.json); "
            "point path at a data file or at the saved dataset's directory"
        )


def data_digest(path: Path, name_in_registry: str | None = None) -> str:
    """sha256 of everything a dataset reads: the file, every file of an HF directory, or a
    registry entry plus its data, so editing the data re-runs the stages that used it. What the
    path is gets checked first (open_source's rules), so planning never blocks on a FIFO nor
    hashes a directory that is no dataset."""
    path = Path(path)
    h = hashlib.sha256()
    kind = check_kind(path)
    if kind == "file" and (path.name == "dataset_info.json" or name_in_registry is not None):
        entry = _registry_entry(path, name_in_registry)
        h.update(json.dumps(entry, sort_keys=True).encode())
        path = path.parent / entry["file_name"]
        kind = check_kind(path)
    if kind == "dir":
        _hf_dir(path)
        files = []
        for p in sorted(path.rglob("*")):
            if not p.is_dir():
                check_kind(p)  # a FIFO inside the dataset directory would block the read
                files.append(p)
    else:
        files = [path]
    for f in files:
        h.update(str(f.relative_to(path) if kind == "dir" else f.name).encode() + b"\0")
        try:
            with open(f, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    h.update(block)
        except OSError as e:
            raise DataError(f"{f}: cannot read the file ({e.strerror}); check its permissions and the disk") from None
    return h.hexdigest()


# ---- JSON ---------------------------------------------------------------------------------------


def _jsonl_rows(path: Path) -> Iterator[Item]:
    # Binary lines split on b"\n" only: U+2028 inside a JSON string is legal and must not split a
    # row, and a bad byte costs one line, not the file.
    n = 0
    with _open_binary(path) as f:
        try:
            for n, raw in enumerate(f, start=1):
                if n == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM):]
                if not raw.strip():
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    yield n, None, f"not UTF-8 text (byte {e.start} of the line); re-save the file as UTF-8"
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as e:
                    yield n, None, f"not valid JSON ({e.msg}, column {e.colno}); each line must be one JSON object"
                    continue
                except RecursionError:
                    yield n, None, _TOO_DEEP
                    continue
                problem = json_problem(obj, text)
                yield n, None if problem else obj, problem
        except OSError as e:
            raise DataError(f"{path}, line {n + 1}: cannot read the file ({e.strerror}); check the disk") from None


_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep; flatten the row (chat rows need 4 levels)"


def json_problem(obj: Any, text: str) -> str | None:
    """What makes a decoded JSON value unusable although it parsed: nesting deeper than MAX_DEPTH
    (json, pydantic and copying recurse), or a lone UTF-16 surrogate ("\\ud800"), which decodes
    but cannot be written as UTF-8. `text` is the value's source; the walks run only when it could
    hold either, so a plain row costs two scans of its text."""
    if text.count("{") + text.count("[") > MAX_DEPTH:
        stack = [(obj, 1)]
        while stack:
            value, depth = stack.pop()
            if depth > MAX_DEPTH:
                return _TOO_DEEP
            children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
            stack += [(c, depth + 1) for c in children if isinstance(c, (dict, list))]
    if _SURROGATE.search(text):
        stack2: list[tuple[Any, str]] = [(obj, "")]
        while stack2:
            value, where = stack2.pop()
            if isinstance(value, dict):
                for k, v in value.items():
                    name = f"{where}.{k}" if where else str(k)
                    if not _encodable(str(k)):
                        return "a key holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair); fix or drop the row"
                    stack2.append((v, name))
            elif isinstance(value, list):
                stack2 += [(v, f"{where}[{i}]") for i, v in enumerate(value)]
            elif isinstance(value, str) and not _encodable(value):
                at = f"'{where}'" if where else "the value"
                return (f"{at} holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair), "
                        "which is not text; fix or drop the row")
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_rows(path: Path) -> Iterator[Item]:
    """Decode a top-level array item by item so each item keeps the line it starts on."""
    text = _read_text(path)
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(offset: int) -> int:
        return bisect.bisect_left(newlines, offset) + 1

    decoder = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if i == len(text):
        return
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
            yield e.lineno, None, f"not valid JSON ({e.msg}, column {e.colno})"
            return
        except RecursionError:
            yield line_at(i), None, _TOO_DEEP + "; the items after it were not read"
            return
        problem = json_problem(obj, text[i:end])
        yield line_at(i), None if problem else obj, problem
        i = _skip_ws(text, end)
        closed = text.startswith("]", i)
        if not closed and not text.startswith(",", i):
            yield line_at(i), None, "expected ',' or ']' after the array item"
            return
        i = _skip_ws(text, i + 1) if not closed else i
    i = _skip_ws(text, i + 1)
    if i < len(text):
        yield line_at(i), None, "unexpected text after the closing ']'"


def _skip_ws(text: str, i: int) -> int:
    return _WHITESPACE.match(text, i).end()  # type: ignore[union-attr]  # "*" always matches


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1)
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte {column} of the line); re-save the file as UTF-8") from None


def _open_binary(path: Path):
    try:
        return open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror})") from None


# ---- CSV, parquet, HF ---------------------------------------------------------------------------


def _csv_rows(path: Path) -> Iterator[Item]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with _open_binary(path) as f:
        reader = csv.reader(_utf8_lines(path, f))
        try:
            header = next(reader, None)
            if header is None:
                return
            repeated = sorted({h for h in header if header.count(h) > 1})
            if repeated:
                raise DataError(f"{path}, line 1: the header names {', '.join(map(repr, repeated))} twice; rename the columns")
            end = reader.line_num
            for cells in reader:
                # csv.reader yields [] for a blank line, so the line after the last record's end
                # is exactly where this one starts, even when a quoted cell spans lines.
                start, end = end + 1, reader.line_num
                if not cells:
                    continue
                swallowed = _swallowed_rows(cells, len(header)) if end - start >= UNCLOSED_LINES else None
                if swallowed is None and len(cells) != len(header):
                    yield start, None, (
                        f"has {len(cells)} cells, the header has {len(header)}; quote cells that contain commas"
                    )
                elif swallowed is not None:
                    k, rows = swallowed
                    column = f"'{header[k]}'" if k < len(header) else f"{k + 1}"
                    yield start, None, (
                        f"the quoted cell {column} opened here runs to line {end} and holds {rows} lines "
                        "shaped like rows: an unclosed quote merged them; close the quote (or double it, \"\", "
                        "inside the cell)"
                    )
                else:
                    yield start, dict(zip(header, cells)), None
        except csv.Error as e:
            raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({e}); fix the quoting") from None
        except OSError as e:
            raise DataError(f"{path}, after line {reader.line_num}: cannot read the file ({e.strerror}); check the disk") from None


def _utf8_lines(path: Path, f) -> Iterator[str]:
    """The file's lines decoded one at a time, so a bad byte is reported on its own line (a text
    stream decodes 8 kB blocks ahead of the csv reader's line count). Lines keep their endings:
    the csv reader needs them inside quoted cells."""
    for n, raw in enumerate(f, start=1):
        if n == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}, line {n}: not UTF-8 text (byte {e.start} of the line); re-save the file as UTF-8") from None


UNCLOSED_LINES = 3  # a record spanning more lines than this is checked for rows swallowed by a quote


def _swallowed_rows(cells: list[str], width: int) -> tuple[int, int] | None:
    """(cell index, line count) when a cell's inner lines read as whole CSV records of `width`
    cells, at least 3 of them and most of its lines: what an unclosed quote does to the rows after
    it. A multi-line answer in prose rarely has every line split into exactly `width` cells."""
    for k, cell in enumerate(cells):
        lines = [line for line in cell.split("\n")[1:] if line.strip()]
        if len(lines) < UNCLOSED_LINES:
            continue
        rowlike = sum(1 for cells in csv.reader(lines) if len(cells) == width and all(c.strip() for c in cells))
        if rowlike >= UNCLOSED_LINES and rowlike * 2 > len(lines):
            return k, rowlike
    return None


def _parquet_rows(path: Path) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # Buffered column reads: without buffer_size pyarrow reads a whole column chunk at once, and
        # a pandas/pyarrow export of 10^6 rows is one row group, so that would be the whole file
        # (bench/data/run.py: 200k rows in one row group, 163 -> 115 MB peak RSS).
        pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable parquet file ({e}); re-export it with pandas/pyarrow") from None
    i = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                yield i, row, None
                i += 1
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}, row {i}: cannot decode the rest of the file ({e}); re-export it") from None


def _hf_rows(path: Path) -> Iterator[Item]:
    _hf_dir(path)
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot load the HF dataset ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds)
        raise DataError(
            f"{path}: holds the splits {', '.join(splits)}; point path at one of them, e.g. {path / splits[0]}"
        )
    import pyarrow as pa

    i = 0
    try:
        for batch in ds.iter(batch_size=BATCH_ROWS):
            keys = list(batch)
            for values in zip(*(batch[k] for k in keys)):
                yield i, dict(zip(keys, values)), None
                i += 1
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}, row {i}: cannot decode the rest of the dataset ({e}); save it again") from None


# ---- LLaMA-Factory registry ----------------------------------------------------------------------


def _registry_entry(path: Path, name: str | None) -> dict[str, Any]:
    text = _read_text(path)
    try:
        info = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise DataError(f"{path}: {_TOO_DEEP}") from None
    problem = json_problem(info, text)
    if problem:
        raise DataError(f"{path}: {problem}")
    if not isinstance(info, dict) or not all(isinstance(v, dict) for v in info.values()):
        raise DataError(f"{path}: a LLaMA-Factory dataset_info.json maps dataset names to objects")
    names = sorted(info)
    if name is None:
        raise DataError(f"{path}: is a LLaMA-Factory registry; set name_in_registry to one of: {', '.join(names)}")
    if name not in info:
        raise DataError(f"{path}: no dataset '{name}'.{did_you_mean(name, names)} Available: {', '.join(names)}")
    entry = info[name]
    where = f"{path}, dataset '{name}'"
    if "file_name" not in entry:
        remote = [k for k in LF_REMOTE if k in entry]
        if remote:
            raise DataError(f"{where}: loads from {remote[0]}; ftlab reads local files only: download it and give file_name")
        raise DataError(f"{where}: has no file_name; add the data file's name (relative to {path.parent})")
    if entry.get("ranking"):
        raise DataError(f"{where}: ranking (preference) data is not supported; register SFT data")
    if entry.get("num_samples") is not None:
        raise DataError(f"{where}: num_samples is not read by ftlab; drop it and use the dataset's limit: instead")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in LF_COLUMNS:
        raise DataError(f"{where}: formatting '{formatting}' is not supported; use alpaca or sharegpt")
    unknown = sorted(set(entry.get("columns") or {}) - set(LF_COLUMNS[formatting]) - {"tools"})
    if unknown:
        raise DataError(
            f"{where}: columns {', '.join(unknown)} are not supported for {formatting} "
            f"(ftlab reads {', '.join(LF_COLUMNS[formatting])})"
        )
    return entry


def _registration(path: Path, name: str | None) -> Source:
    entry = _registry_entry(path, name)
    formatting = entry.get("formatting", "alpaca")
    columns = {LF_COLUMNS[formatting][k]: v for k, v in (entry.get("columns") or {}).items() if k != "tools"}
    tags = {**LF_TAGS, **(entry.get("tags") or {})}
    data = path.parent / entry["file_name"]
    if not data.exists():
        raise DataError(f"{path}, dataset '{name}': file_name '{entry['file_name']}' not found at {data}")
    source = open_source(data)
    source.format = formatting
    source.columns = columns
    source.tags = tags if formatting == "sharegpt" and tags != LF_TAGS else None
    return source
