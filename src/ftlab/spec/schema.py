"""The experiment spec as typed, validated models (one YAML file -> `Experiment`).

Sweep, seeds and controls are parsed by `ftlab.spec.sweep` (they shape the set of runs); every
other field is validated here after `${var}` references were filled in for a sweep point.
Fields marked RUNTIME do not change results and are left out of run identity.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Fields that do not change results: left out of run identity (see ftlab.spec.identity).
RUNTIME_FIELDS: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("description",),
    ("output_dir",),
    ("run_name",),
    ("sweep",),
    ("seeds",),
    ("controls",),
    ("cluster",),
    ("presets",),
    ("preset",),
    ("train", "logging_steps"),
    ("eval", "batch_size"),
    ("train", "report_to"),
    ("report",),
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TinyModel(Strict):
    """A tiny random-init model that ftlab builds itself (offline), with a locally trained tokenizer."""

    architecture: Literal["qwen2", "llama"] = "qwen2"
    hidden_size: int = Field(64, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    num_kv_heads: int = Field(2, ge=1)
    intermediate_size: int = Field(256, ge=8)
    vocab_size: int = Field(512, ge=300, description="BPE vocabulary incl. 256 byte tokens")
    max_position_embeddings: int = Field(1024, ge=16)
    seed: int = Field(0, description="weight init seed")
    tokenizer_corpus: list[str] = Field(
        default_factory=lambda: ["train"], description="names of datasets whose text trains the tokenizer"
    )


class Model(Strict):
    """The base model: an HF id or local directory (`path`), or a tiny model built by ftlab (`tiny`)."""

    path: str | None = Field(None, description="HF hub id or local directory (relative to the spec)")
    tiny: TinyModel | None = None


class Task(Strict):
    type: Literal["classification"] = "classification"
    labels: list[str] = Field(min_length=2, description="the label set, e.g. [P, N]")
    positive: str | None = Field(None, description="positive label for precision/recall (default: first)")
    label_field: str | None = Field(None, description="row column holding the label (default: the answer)")

    @property
    def positive_label(self) -> str:
        return self.positive if self.positive is not None else self.labels[0]


class Generate(Strict):
    """A dataset made by a built-in generator (offline demos and tests)."""

    name: str = Field(description="generator name, e.g. hem")
    n: int = Field(gt=0, description="number of examples")
    split: str | None = Field(None, description="generator split (default: the dataset's role)")
    seed: int = 0


class Resample(Strict):
    """Resample a labelled train set to a positive fraction at a fixed total (seed 002's proportions)."""

    positive_fraction: float | str | None = Field(None, description="e.g. 1/4 or 0.25")
    positives: int | None = Field(None, ge=0, description="exact positive count (overrides the fraction)")
    total: int | None = Field(None, gt=0, description="output size (default: the input size)")
    replace: bool = Field(False, description="draw the shortfall with replacement when a class is too small")
    seed: int = 0


class Dataset(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", description="split name used in metrics")
    role: Literal["train", "valid", "test"]
    path: str | None = Field(None, description="JSONL/JSON file (relative to the spec)")
    generate: Generate | None = None
    format: Literal["auto", "sharegpt", "messages", "prompt_completion", "alpaca"] = "auto"
    limit: int | None = Field(None, gt=0, description="keep only the first N rows")
    resample: Resample | None = None


class Lora(Strict):
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class Quantization(Strict):
    """How QLoRA loads the frozen base (bitsandbytes)."""

    bits: Literal[4, 8] = 4
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True


class Method(Strict):
    name: Literal["full", "lora", "qlora"] = "lora"
    lora: Lora = Lora()
    quantization: Quantization = Quantization()


class LossWeighting(Strict):
    """Sample-level class weighting (seed 002): `accept` multiplies the loss of positive-label
    samples by gamma, `reject` that of negative-label samples; `none`/`baseline` weight nothing."""

    variant: Literal["none", "baseline", "accept", "reject"] = "none"
    gamma: float = Field(1.0, ge=0)


class Train(Strict):
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="overrides epochs when set")
    learning_rate: float = Field(1e-4, gt=0)
    batch_size: int = Field(8, gt=0, description="per-device batch size")
    grad_accum: int = Field(1, gt=0)
    max_length: int = Field(512, gt=0, description="tokens; longer examples are truncated")
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    optimizer: Literal["adamw_torch", "adamw_torch_fused", "sgd", "adafactor"] = Field(
        "adamw_torch_fused", description="fused AdamW: one kernel per step (bench/train_throughput)"
    )
    save_steps: int | None = Field(None, gt=0, description="checkpoint every N steps (epoch ends always)")
    keep_last: int | None = Field(None, gt=0, description="keep only the newest N checkpoints")
    group_by_length: bool = Field(
        True, description="batch examples of similar length (less padding; see bench/train_throughput)"
    )
    compile: bool = Field(
        False,
        description="torch.compile each transformer block (regional); costs 15-40 s per run on CPU,"
        " pays off on long runs (bench/train_throughput)",
    )
    loss: LossWeighting = LossWeighting()
    gpus: int = Field(1, ge=1, description="GPUs per run; >1 launches through accelerate")
    distributed: Literal["ddp", "fsdp"] = "ddp"
    logging_steps: int = Field(10, gt=0, description="RUNTIME")
    report_to: list[Literal["none", "tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=lambda: ["none"],
        description="RUNTIME: training trackers (HF report_to); tensorboard writes under train/checkpoints/runs/",
    )


class Select(Strict):
    split: str = Field("valid", description="dataset (role valid) that picks the best checkpoint")
    metric: str = "accuracy"
    evaluator: str = Field("logits", description="whose metric picks the checkpoint")
    higher_is_better: bool = True


class EvaluatorSpec(BaseModel):
    """One evaluator on some splits; its other keys are the evaluator's own options
    (validated against that evaluator's Options model, see ftlab.evaluate.evaluators)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    splits: list[str] | None = Field(None, description="default: the eval splits")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class FewShot(Strict):
    """A fixed few-shot pool drawn from train with a seed and removed from training (seed 001);
    evaluation prompts get its first k examples as earlier chat turns."""

    pool: int = Field(8, gt=0, description="pool size drawn from the train dataset")
    k: int = Field(3, ge=0, description="examples shown per prompt (the pool's first k)")
    seed: int = 0


class Eval(Strict):
    splits: list[str] | None = Field(None, description="datasets to evaluate (default: all valid and test)")
    batch_size: int = Field(32, gt=0, description="RUNTIME")
    select: Select = Select()
    exclude_final: bool = Field(False, description="skip the last checkpoint (seed 000: intermediate only)")
    test_fraction: float | None = Field(
        None, gt=0, le=1, description="seeded downsample of test splits; null = the full test split"
    )
    test_seed: int = 0
    group_by: list[str] = Field(default_factory=list, description="data columns for per-group metrics")
    expected: dict[str, int] = Field(default_factory=dict, description="declared example counts per split")
    evaluators: list[EvaluatorSpec] = Field(default_factory=lambda: [EvaluatorSpec(name="logits")], min_length=1)


class CheckSpec(BaseModel):
    """One declared check (report.checks); its other keys are the kind's options
    (validated against that kind's Options model, see ftlab.report.checks)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Report(Strict):
    """What the report stage checks and draws beyond its defaults (ftlab.report)."""

    checks: list[CheckSpec] = Field(default_factory=list, description="threshold, monotonic, compare, range")
    plots: list[str] = Field(
        default_factory=list, description="plots to draw, e.g. [metric_vs:ece, heatmap] (default: chosen from the sweep)"
    )


class Experiment(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    description: str = ""
    output_dir: str | None = Field(None, description="default: runs/<name> beside the spec")
    run_name: str | None = Field(None, description="template over sweep variables, e.g. lr{lr}")
    cluster: str | None = Field(None, description="RUNTIME: SLURM cluster profile file (relative to the spec)")
    model: Model
    task: Task
    datasets: list[Dataset] = Field(min_length=1)
    method: Method = Method()
    train: Train = Train()
    fewshot: FewShot | None = None
    eval: Eval = Eval()
    report: Report = Report()
    # Parsed by ftlab.spec.sweep; typed loosely here so their errors come from there, with paths.
    sweep: list[Any] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0])
    controls: list[Any] = Field(default_factory=list)
    # Named blocks of settings (seed 001's simple/medium/strong); `preset` picks one and the spec's
    # own values override it. Applied in ftlab.spec.plan before validation.
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    preset: str | None = None

    def dataset(self, name: str) -> Dataset | None:
        return next((d for d in self.datasets if d.name == name), None)

    def datasets_with_role(self, role: str) -> list[Dataset]:
        return [d for d in self.datasets if d.role == role]

    def eval_splits(self) -> list[str]:
        if self.eval.splits is not None:
            return list(self.eval.splits)
        return [d.name for d in self.datasets if d.role in ("valid", "test")]
