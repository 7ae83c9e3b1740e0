"""Each stage's typed, frozen inputs: what it reads, and (by annotation) what enters its identity.

A field is identity unless marked (see ftlab.contract.hashing): Runtime fields are where things
live or how fast they run, TaskOnly fields are in the eval task's identity but not in each cached
result's key. Stages read these attributes, never string keys, so what a stage reads and what its
identity hashes are one list. tests/contract/test_contract.py checks that every identity field moves
the identity and no runtime field does.

Paths are runtime: a dependency's identity stands for its outputs (deps are hashed too).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ftlab.spec.schema import (
    Dataset, FeaturizerSpec, FilterSpec, Method, Quantization, Report, Task, TinyModel, Train,
)
from ftlab.contract.hashing import OmitNone, Runtime, SpecSection, TaskOnly

PATH = Runtime("where it lives; the producing task's identity is hashed through deps")


class StageInputs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class FewshotDraw(StageInputs):
    """The few-shot pool the train set gives up (seed 001: shots never trained on)."""

    pool: int
    seed: int


class DataInputs(StageInputs):
    dataset: Dataset
    labels: list[str] | None = Field(description="task labels; None for a generation task (no label check)")
    positive: str | None
    label_field: str | None
    fewshot: FewshotDraw | None = Field(None, description="set on the train set only")
    file: Annotated[str | None, Runtime("where the data is; its content is hashed as `digest`")] = None
    # content, not path: an edited file (or a registry's data file, an HF dataset dir) re-runs its stages
    digest: Annotated[str | None, OmitNone()] = None
    system: Annotated[str | None, OmitNone()] = Field(None, description="task.system: given to prompts that have none")
    require_answer: Annotated[bool | None, OmitNone()] = Field(
        None, description="default: True for role train, False otherwise (eval splits may hold prompt-only rows)")


class ModelInputs(StageInputs):
    """Build a tiny model (`tiny` + `corpus`) or convert a GGUF file (`gguf_sha256` + `gguf_file`)."""

    tiny: Annotated[TinyModel | None, OmitNone()] = None
    corpus: Annotated[list[str], PATH] = Field(default_factory=list, description="data dirs whose text trains the tokenizer")
    gguf_sha256: Annotated[str | None, OmitNone()] = Field(None, description="the GGUF file's content: its identity")
    gguf_file: Annotated[str | None, Runtime("where the GGUF file is; its content is hashed as gguf_sha256")] = None


class TrainInputs(StageInputs):
    run_id: Annotated[str, Runtime("the run id also covers eval settings, which must not retrain")]
    kind: str = Field(description="sweep | random_init (a fresh copy of the base's architecture)")
    seed: int
    positive: str | None
    base_id: str = Field(serialization_alias="base", description="identity of the base model")
    base_dir: Annotated[str, PATH] = Field(description="model dir or HF id")
    data_dir: Annotated[str, PATH]
    method: Method
    # RUNTIME in the spec (schema.RUNTIME_FIELDS): logging_steps, report_to, and the kernel choices
    # attention, padding_free, liger (same loss, another kernel). precision is identity (it changes
    # the numbers); at its default `auto` it is left out of the dump, so existing ids hold.
    train: Annotated[Train, SpecSection(("train",))]


class EvaluatorRun(StageInputs):
    """One evaluator of a run: its splits, and its options resolved at plan time (templates inlined)."""

    name: str
    splits: list[str]
    options: dict[str, Any]
    needs_model: bool = True


class Selection(StageInputs):
    """eval.select with its defaults resolved: the first evaluator, the metric's own direction."""

    split: str
    metric: str
    evaluator: str
    higher_is_better: bool
    include_step_0: bool = False
    # None is "best": omitted from identities, so specs that do not say keep their eval results.
    checkpoint: Annotated[str | None, OmitNone()] = None


class EvalSettings(StageInputs):
    """The eval settings that change scores (eval.batch_size does not)."""

    exclude_final: bool
    test_fraction: float | dict[str, float | None] | None
    test_seed: int
    group_by: list[str]
    expected: dict[str, int]


class EvalInputs(StageInputs):
    run_id: Annotated[str, TaskOnly("a result is the run's own; the source identity says what was scored")]
    source: str = Field(description="what is scored: the train task's identity, or the base model's")
    # Runtime because `source` hashes it already (a train identity includes its base's).
    base_source: Annotated[str, Runtime("the base model's identity, which keys step 0's result shared by every run of that base")] = ""
    base_dir: Annotated[str, PATH]
    train_dir: Annotated[str | None, PATH] = Field(description="None: an untuned control, the base as it is")
    split_dirs: Annotated[dict[str, str], PATH]
    split_ids: Annotated[dict[str, str], TaskOnly("each result hashes its own split's identity")]
    roles: dict[str, str]
    task: Task
    select: Annotated[Selection, TaskOnly("chooses among results; changes no score")]
    batch_size: Annotated[int, Runtime("how many examples per forward pass")]
    # QLoRA checkpoints are scored on the same 4-bit base they were trained on.
    quantization: Quantization | None
    evaluators: Annotated[list[EvaluatorRun], TaskOnly("each result hashes its own evaluator and options")]
    eval: EvalSettings
    fewshot_k: int | None = None
    fewshot_splits: list[str] | None = Field(None, description="splits shown the shots (None: all)")
    fewshot_pool_id: str | None = Field(None, description="identity of the data task holding the pool")
    fewshot_pool_dir: Annotated[str | None, PATH] = None
    # The train answers give a classification task's answer shape (\boxed{Accept}: data/answers.py);
    # each result hashes the template it used.
    train_data: Annotated[str, PATH]


class CurateInputs(StageInputs):
    """A dataset's `curate:` filters over the examples its data task wrote (ftlab.curate)."""

    # As the spec gives them: a filter's defaults are its code's (a changed default bumps the curate row's version in ftlab.stages).
    filters: list[FilterSpec] = Field(serialization_alias="curate", description="applied in order")
    model_id: str | None = Field(serialization_alias="model", description="identity of the model a difficulty filter asks; None: no filter asks one")
    data_id: str = Field(serialization_alias="data", description="identity of the data task curated")
    labels: list[str] | None = Field(description="the task's label set (difficulty on a classification task); None: generation")
    dataset: Annotated[str, Runtime("names the task and its directory; what is curated is `data`")]
    data_dir: Annotated[str, PATH]
    model_dir: Annotated[str | None, PATH] = Field(None, description="model dir or HF id")
    batch_size: Annotated[int, Runtime("how many examples per forward pass of the difficulty filter")] = 32


class BaselineInputs(StageInputs):
    """One classical model fitted on train features, chosen on the selection split (ftlab.baselines)."""

    model: str = Field(description="registered baseline model, e.g. random_forest")
    featurizer: FeaturizerSpec
    seed: int
    select: Selection
    labels: list[str] | None
    positive: str | None
    splits: list[str] = Field(description="the splits scored, sorted")
    run_id: Annotated[str, Runtime("derived from this task's identity")]
    name: Annotated[str, Runtime("the run's name in tables: baseline_<model>")]
    index: Annotated[int, Runtime("the run's row in the registry, after the plan's runs")]
    task: Annotated[Task, Runtime("recorded in the run's config; the fit reads only labels and positive, hashed above")]
    train_dir: Annotated[str, PATH]
    split_dirs: Annotated[dict[str, str], PATH]


class ReportInputs(StageInputs):
    evals: dict[str, str] = Field(description="run name -> eval dir (baselines: baseline_<model> -> its dir)")
    splits: list[str] = Field(description="valid chose, test reports: valid splits first")
    report: Report
    select: Selection
    spec: str
    name: str
    run_ids: list[str] = Field(description="the plan's runs, not every run the registry remembers")
    variables: list[str] = Field(description="sweep variables in sweep order, for tables")
    # Added with curation: an experiment without it keeps its report identity.
    curations: Annotated[dict[str, str] | None, OmitNone()] = Field(None, description="curate task key -> its dir")
    # A task with more than two labels: precision, recall, F1 and AUROC are this label against the rest,
    # and the table says so (a 3-class summary showed "precision 1.000" with no word of which class).
    one_vs_rest: Annotated[str | None, OmitNone()] = Field(None, description="the positive label of a task with more than two labels")
