"""ftlab: run LLM fine-tuning research experiments end to end from one spec.

Pipeline: spec -> plan (runs) -> data -> train -> eval (every checkpoint) -> report,
executed by a runner (local or SLURM) and recorded in one SQLite registry.

    import ftlab
    ftlab.validate("spec.yaml"); ftlab.plan("spec.yaml"); ftlab.run("spec.yaml")
    ftlab.results("spec.yaml"); ftlab.report("spec.yaml").html

The functions live in ftlab.api and are imported on first use, so `import ftlab` stays light
(no torch, no pandas) and `ftlab plan` never imports torch.
"""

import os

from ftlab.version import __version__

# Before torch loads (it reads this once): torch backs tensors of 2 MiB and more with huge pages,
# which makes the train stage's bounded CPU heap cheap (train/memory.py; SmolLM2 LoRA: 143 tokens/s
# with them at the stage's 2 MiB threshold, 99 at 1 MiB where most blocks miss them, 81 at 1 MiB
# without). Set it to 0 to opt out; with torch imported before ftlab it has no effect.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

API = ("validate", "plan", "run", "submit", "status", "cancel", "report", "results", "export_mlflow")
__all__ = ["__version__", *API]


def __getattr__(name: str):
    if name in API:
        from ftlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'ftlab' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
