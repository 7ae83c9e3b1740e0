"""The stage contract shared by every stage and runner (see contract.py, inputs.py, identity.py).

    data/<dataset>  ->  model/tiny  ->  [curate/<dataset>]  ->  train/<run>  ->  eval/<run>  ->  report
    data/<dataset>  ->  [baseline/<model>]  ------------------------------------------->  report

Each stage is `run(inputs, ctx) -> StageResult` over a frozen, typed input model; one function
(`identity`) hashes every input model, so what a stage reads and what keys its cached result
cannot drift apart. ftlab.graph builds the graph of tasks; ftlab.runners decide where they run.
"""

from ftlab.contract.task import (
    DONE, KEEPS_OUTPUTS, REPORT_KEY, STAGE_ORDER, STARTED, StageContext, StageResult, Task, baseline_key, checkpoint_key,
    context, curate_key, data_key,
    done_outputs, eval_key, execute, is_done, missing_deps, model_key, prepare_dir, run_key, run_stage,
    select_tasks, split_checkpoint_key, stage_function, train_key,
)
from ftlab.contract.hashing import STAGE_VERSIONS, Memo, identity, result_key

__all__ = [
    "DONE", "KEEPS_OUTPUTS", "REPORT_KEY", "STAGE_ORDER", "STAGE_VERSIONS", "STARTED", "Memo", "StageContext",
    "StageResult", "Task", "baseline_key", "checkpoint_key", "context", "curate_key", "data_key", "done_outputs", "eval_key", "execute", "identity", "is_done",
    "missing_deps", "model_key", "prepare_dir", "result_key", "run_key", "run_stage", "select_tasks",
    "split_checkpoint_key", "stage_function", "train_key",
]
