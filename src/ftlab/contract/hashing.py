"""The one function that turns a stage's typed inputs into its identity (and the eval cache key).

    task_id = identity(stages.row("train"), inputs, deps)            # a stage task's identity
    key = result_key(eval_inputs, evaluator=..., split=..., ...)     # one cached eval result

Every field of a stage's input model is identity unless its annotation says otherwise:
    Runtime("why")     not hashed: where things live (paths), how fast (batch size)
    TaskOnly("why")    in the task's identity, not in each cached result's key (eval's list of evaluators)
    SpecSection(path)  a spec section: its RUNTIME_FIELDS under `path` are not hashed (train.logging_steps)
    OmitNone()         hashed only when set: a field added after identities were first recorded keeps them
The payload is {"v", "stage", "stage_version", "inputs", "deps"}, hashed as stable_hash would hash it
(sorted keys, compact); the JSON of field values that many tasks share is kept in a `Memo`, so a
100,000-run plan dumps its shared datasets and evaluator lists once, not once per run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from pydantic import BaseModel

from ftlab.spec.identity import IDENTITY_VERSION, _dumps
from ftlab.spec.schema import RUNTIME_FIELDS

@dataclass(frozen=True)
class Runtime:
    """Not part of the identity: changes where or how fast, never what a stage produces."""

    why: str


@dataclass(frozen=True)
class TaskOnly:
    """Part of the task's identity but not of each cached (checkpoint, evaluator, split) result's key."""

    why: str


@dataclass(frozen=True)
class SpecSection:
    """The field holds the spec section at `path`; RUNTIME_FIELDS below it are left out."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class OmitNone:
    """Hashed only when not None (added after identities were first recorded: old ones stay valid)."""


@dataclass(frozen=True)
class FieldRole:
    name: str
    key: str  # the name in the payload (a serialization alias keeps an older payload's key)
    role: str  # "identity" | "runtime" | "task"
    drop: tuple[tuple[str, ...], ...]  # runtime paths inside the value (SpecSection)
    omit_none: bool
    quoted: str  # the key as JSON


_ROLES: dict[type, tuple[FieldRole, ...]] = {}


def field_roles(model: type[BaseModel]) -> tuple[FieldRole, ...]:
    """Each field's role in the identity, read once per input model from its annotations."""
    roles = _ROLES.get(model)
    if roles is None:
        found = []
        for name, info in model.model_fields.items():
            role, drop, omit = "identity", (), False
            for mark in info.metadata:
                if isinstance(mark, Runtime):
                    role = "runtime"
                elif isinstance(mark, TaskOnly):
                    role = "task"
                elif isinstance(mark, SpecSection):
                    drop = tuple(p[len(mark.path):] for p in RUNTIME_FIELDS if p[: len(mark.path)] == mark.path)
                elif isinstance(mark, OmitNone):
                    omit = True
            key = info.serialization_alias or name
            found.append(FieldRole(name, key, role, drop, omit, encode_basestring_ascii(key)))
        roles = _ROLES[model] = tuple(sorted(found, key=lambda r: r.key))
    return roles


class Memo:
    """JSON text of field values by object: a value shared by many tasks (the same Dataset object,
    the same evaluator list) is dumped once. Holds the objects, so their ids are never reused."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[Any, tuple, str]] = {}

    def text(self, value: Any, drop: tuple[tuple[str, ...], ...] = ()) -> str:
        kind = type(value)
        if kind is str:  # run ids, paths: the most common values, ~10x faster than the encoder
            return encode_basestring_ascii(value)
        if value is None:
            return "null"
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return int.__repr__(value)  # what json writes; the encoder's general path costs ~10x
        if kind is float:
            return _dumps(value)
        hit = self._texts.get(id(value))
        if hit is not None and hit[0] is value and hit[1] == drop:
            return hit[2]
        text = _dumps(_plain(value, drop))
        self._texts[id(value)] = (value, drop, text)
        return text


def _plain(value: Any, drop: tuple[tuple[str, ...], ...]) -> Any:
    """JSON-able form of a field value, runtime paths removed."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, (list, tuple)):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    elif isinstance(value, dict):
        value = {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in value.items()}
    for path in drop:
        node = value
        for part in path[:-1]:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return value


def inputs_json(inputs: BaseModel, *, scope: str = "task", memo: Memo | None = None) -> str:
    """The hashed fields of `inputs` as sorted, compact JSON. scope "task": identity and task-only
    fields; scope "result": identity fields only (what one cached eval result depends on)."""
    text = (memo or Memo()).text
    values = inputs.__dict__  # pydantic keeps field values here; getattr per field is slower
    parts = [f"{quoted}:{text(values[name], drop)}" for name, quoted, drop, omit in _hashed(type(inputs), scope)
             if not (omit and values[name] is None)]
    return "{" + ",".join(parts) + "}"


_HASHED: dict[tuple[type, str], list[tuple[str, str, tuple, bool]]] = {}


def _hashed(model: type[BaseModel], scope: str) -> list[tuple[str, str, tuple, bool]]:
    """(name, quoted key, runtime paths inside, omit when None) of the fields hashed in `scope`, sorted by key."""
    found = _HASHED.get((model, scope))
    if found is None:
        wanted = ("identity", "task") if scope == "task" else ("identity",)
        found = _HASHED[(model, scope)] = [(r.name, r.quoted, r.drop, r.omit_none) for r in field_roles(model) if r.role in wanted]
    return found


def identity(stage, inputs: BaseModel, deps: list[str] | tuple[str, ...] = (), *, memo: Memo | None = None) -> str:
    """A stage task's identity: its hashed inputs plus its dependencies' identities, versioned by
    the stage's row of the stage table (`stage`: a ftlab.contract.Stage, its name and version).

    Same text as stable_hash({"v", "stage", "stage_version", "inputs", "deps": sorted(deps)})."""
    deps_text = ",".join(map(encode_basestring_ascii, sorted(deps)))
    text = (
        f'{{"deps":[{deps_text}],"inputs":{inputs_json(inputs, memo=memo)},'
        f'"stage":{_dumps(stage.name)},"stage_version":{stage.version},"v":{IDENTITY_VERSION}}}'
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def result_key(inputs: BaseModel, **specific: Any) -> str:
    """The key of one cached eval result: the eval inputs' identity fields (not the task-only
    ones) plus what is specific to the result (evaluator and version, options, checkpoint, the
    split's data identity, the answer template). A new eval input field is in it by default."""
    text = f'{{"inputs":{inputs_json(inputs, scope="result")},"result":{_dumps(specific)},"v":{IDENTITY_VERSION}}}'
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
