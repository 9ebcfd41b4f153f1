"""The chaos run's jobs: the mix asked for, and an order in which no master waits on a job not yet sent."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from chaos.workload import JOBS_PER_FILM, Kind, Mix, Workload


def test_thirty_jobs_hold_every_kind_and_each_master_follows_its_film(tmp_path: Path) -> None:
    mix = Mix.for_jobs(30)
    jobs = Workload(tmp_path, random.Random(7), "t").build(mix, video_mib=(1, 1))

    assert len(jobs) == 30 and len({job.job_id for job in jobs}) == 30
    kinds = Counter(job.kind for job in jobs)
    assert kinds[Kind.MASTER] == mix.films and kinds[Kind.HLS] == 3 * mix.films + mix.extra_renditions
    assert all(kinds[kind] >= 1 for kind in Kind)
    seen: set[str] = set()
    for job in jobs:
        film = job.body["resourceId"]
        if job.kind == Kind.MASTER:
            siblings = [j for j in jobs if j.body["resourceId"] == film and j.kind != Kind.MASTER]
            assert len(siblings) == JOBS_PER_FILM - 1
            assert all(sibling.job_id in seen for sibling in siblings), f"{job.job_id} comes before its film"
        seen.add(job.job_id)
