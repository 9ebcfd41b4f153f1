"""Maintenance (SPEC 4's cleanup, sync and fix-stuck, SPEC 7).

- `cleanup_job`: undo what a failed or cancelled job left in the bucket (and its sources).
- `sync_job`, `fix_stuck`: recover jobs whose worker died, whose message was lost, or whose
  cancel nobody finished. The rules themselves are pure, in `rules.py`.
- `run_scheduled_maintenance`: the 5-minute schedule: fix-stuck, pending sends, then retention.
- `delete_finished_job`, `clear_finished`: DELETE and clear, cleaning a failed or cancelled job
  up first and keeping a completed job's published objects out of every cleanup.
"""

from chalicelib.maintenance.cleanup import cleanup_job
from chalicelib.maintenance.context import MaintenanceServices
from chalicelib.maintenance.removal import clear_finished, delete_finished_job
from chalicelib.maintenance.scheduled import remove_expired_jobs, run_scheduled_maintenance
from chalicelib.maintenance.stuck import fix_stuck, sync_job

__all__ = [
    "MaintenanceServices",
    "cleanup_job",
    "clear_finished",
    "delete_finished_job",
    "fix_stuck",
    "remove_expired_jobs",
    "run_scheduled_maintenance",
    "sync_job",
]
