"""A fresh PostgreSQL database per test on the server at 127.0.0.1:5432 (``.ci/run`` starts it).

Each test gets a database of its own, created before and dropped (WITH FORCE: a killed
server's sessions too) after, so pytest-xdist workers never see each other's rows.
``TOWNHALL_TEST_POSTGRES`` names another server's maintenance database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get(
    "TOWNHALL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def url_of(database: str) -> str:
    """ADMIN_URL with another database (its user, password and host kept)."""
    return ADMIN_URL.split("?", 1)[0].rsplit("/", 1)[0] + "/" + database


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database, dropped when the block ends."""
    name = f"townhall_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url_of(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
