"""Domain exceptions. The library raises these; only the CLI turns them into a message and an exit code."""

from __future__ import annotations


class FtlabError(Exception):
    """Any problem ftlab reports to the user as one clear message (never a traceback)."""


class SpecError(FtlabError):
    """The experiment spec is invalid; carries every problem found, each with its YAML path."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        count = len(self.problems)
        lines = [f"{head}{count} problem{'s' if count != 1 else ''} in the spec:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class DataError(FtlabError):
    """A dataset file is missing or malformed, or a row's label is not in the label set."""


class ModelError(FtlabError):
    """A model or tokenizer cannot be built or loaded."""


class StageError(FtlabError):
    """A pipeline stage failed or was asked for something it cannot do."""


class Interrupted(StageError):
    """A stage stopped on request (a SLURM warning signal, SIGTERM) after saving what it needs to
    resume: the train stage a complete checkpoint. Run again, it resumes from there."""

    def __init__(self, message: str, *, reason: str, checkpoint: str | None = None, step: int | None = None):
        super().__init__(message)
        self.reason, self.checkpoint, self.step = reason, checkpoint, step


class RegistryError(FtlabError):
    """The experiment registry (SQLite) cannot be read or written."""


class UnknownNameError(FtlabError):
    """A name looked up in a plugin registry (evaluator, parser, generator...) does not exist."""


class SlurmError(FtlabError):
    """A SLURM command (sbatch, squeue, scancel) failed, or a cluster profile is invalid."""


class RequirementNotDone(StageError):
    """A spec this one `requires:` has tasks not done, so this one cannot be submitted yet."""
