"""`make test` runs the drawing tests one at a time on one worker and the light page tests on
another (tests/conftest.py); pytest-xdist schedules by a ``@group`` suffix it writes into
each test's node id. With pytest 9.2 and pytest-xdist 3.8 the suffix was lost (9.2 keeps
node ids elsewhere), and without the conftest's hook running first so were the groups it
adds by fixture: the drawing tests ran side by side on every worker, silently."""

from __future__ import annotations

import pytest

from .conftest import PAGES


@PAGES
def test_the_test_groups_reach_pytest_xdist(request: pytest.FixtureRequest) -> None:
    """Every grouped test of this run, those the conftest groups by their fixtures too."""
    grouped = [i for i in request.session.items if i.get_closest_marker("xdist_group")]
    assert request.node in grouped
    if getattr(request.config.option, "loadgroup", False):  # a worker of --dist loadgroup
        lost = [i.nodeid for i in grouped if "@" not in i.nodeid]
        assert not lost, (
            f"pytest-xdist lost the group of {lost[:3]}: the groups were added after it read "
            "them, or pytest and pytest-xdist disagree on node ids (install requirements.lock)"
        )
