"""The stage contract shared by every stage and runner (see task.py, inputs.py, hashing.py, layout.py).

Each stage is `run(inputs, ctx) -> StageResult` over a frozen, typed input model; one function
(`identity`) hashes every input model, so what a stage reads and what keys its cached result
cannot drift apart. Which stages exist is the stage table (ftlab.stages); ftlab.graph builds the
graph of tasks; ftlab.runners decide where they run; `execute` is the one way into a stage.
"""

from ftlab.contract.hashing import Memo, identity, result_key
from ftlab.contract.task import (
    DONE, ERROR, REPORT_KEY, STARTED, Stage, StageContext, StageResult, Task, baseline_key, checkpoint_key, context,
    curate_key, data_key, done_outputs, eval_key, execute, execute_rank, is_done, load_entry, missing_deps, model_key,
    prepare_dir, run_key, run_stage, split_checkpoint_key, train_key,
)

__all__ = [
    "DONE", "ERROR", "REPORT_KEY", "STARTED", "Memo", "Stage", "StageContext", "StageResult", "Task", "baseline_key",
    "checkpoint_key", "context", "curate_key", "data_key", "done_outputs", "eval_key", "execute", "execute_rank",
    "identity", "is_done", "load_entry", "missing_deps", "model_key", "prepare_dir", "result_key", "run_key",
    "run_stage", "split_checkpoint_key", "train_key",
]
