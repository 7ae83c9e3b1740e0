"""SLURM's warning (SIGUSR1) that comes while a task's spec and graph still load is remembered, not
fatal: in CI a 1-minute train job warned then ended without output or a record."""

from __future__ import annotations

import os
import signal

from ftlab.runners.slurm import requeue


def test_a_warning_before_the_handlers_is_remembered_not_fatal():
    before = signal.getsignal(signal.SIGUSR1)
    try:
        requeue.catch_early()
        os.kill(os.getpid(), signal.SIGUSR1)  # with the default action this process would end here
        assert requeue._early["reason"] == requeue.WARNING
    finally:
        requeue._early["reason"] = None
        signal.signal(signal.SIGUSR1, before)
