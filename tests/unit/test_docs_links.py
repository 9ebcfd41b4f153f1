"""The README and docs/ link only to files inside the repository, and every such file exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_link_is_a_web_page_or_a_file_of_the_repository(page: Path) -> None:
    wrong = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "#")):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            wrong.append(target)
    assert wrong == []


def test_docs_cover_every_part_of_the_contract() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in ("jobs.md", "http-api.md", "errors.md", "queue.md", "websocket.md", "configuration.md"):
        assert f"]({page})" in index
        assert (ROOT / "docs" / page).exists()
