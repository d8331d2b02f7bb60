"""The Web UI in a real browser: an execution waiting for a person is listed under its search-attribute filter.

Needs Debian's chromium (skipped without it); scripts/ui_check.py runs the same check by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.ui_check import check_web_ui, find_chromium

CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_web_ui_lists_the_waiting_execution_under_its_filter(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    execution_id = check_web_ui(CHROMIUM, screenshots=tmp_path)
    assert execution_id.startswith("org_demo/customer.create.v1/")
    for name in ("web-ui.png", "web-ui-decoded.png", "web-ui-execution.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
