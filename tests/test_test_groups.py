"""`make test` runs the drawing tests one at a time on one worker and the light page tests on
another (tests/conftest.py); pytest-xdist schedules by a ``@group`` suffix it writes into
each test's node id. With pytest 9.2 and pytest-xdist 3.8 the suffix was lost (9.2 keeps
node ids elsewhere) and the drawing tests ran side by side on every worker, silently."""

from __future__ import annotations

import pytest

from .conftest import PAGES


@PAGES
def test_the_test_groups_reach_pytest_xdist(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("xdist_group")
    assert marker is not None and marker.args == ("pages",)
    if getattr(request.config.option, "loadgroup", False):  # a worker of --dist loadgroup
        assert request.node.nodeid.endswith("@pages"), (
            f"{request.node.nodeid}: pytest-xdist lost the group; install requirements.lock"
        )
