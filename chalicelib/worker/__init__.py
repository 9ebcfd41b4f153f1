"""The upload worker (SPEC 6): one queue message in, one job's turn done."""

from chalicelib.worker.handler import handle_message
from chalicelib.worker.results import Action, WorkerOptions, WorkerResult

__all__ = ["Action", "WorkerOptions", "WorkerResult", "handle_message"]
