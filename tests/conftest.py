"""Shared fixtures: settings on a temporary home, databases (SQLite and PostgreSQL), tool contexts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.missions import create_mission
from orchestrator.db.schema import upgrade
from orchestrator.recorder import DatabaseRecorder
from tests.support.databases import create_pg_database, drop_pg_database
from tools.context import ToolContext


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end)."""
    url, name = create_pg_database()
    upgrade(url)
    yield url
    from orchestrator.db.engine import engine_for

    engine_for(url).dispose()
    drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on PostgreSQL, schema at head."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    url = f"sqlite:///{tmp_path / 'orchestrator.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'orchestrator.db'}"
    upgrade(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=sqlite_url, _env_file=None)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


@pytest.fixture
def tool_ctx(workspace: Path, settings: Settings) -> ToolContext:
    """A ToolContext on an empty workspace of a real mission row; artifacts land in the database."""
    url = settings.resolved_database_url
    with session_scope(url) as session:
        mission_id = create_mission(session, text="Mission: test", spec={"objective": "test"},
                                    workspace=str(workspace)).id
    return ToolContext(workspace=workspace, mission_id=mission_id, agent="ml-engineer", step="implement",
                       settings=settings, recorder=DatabaseRecorder(url, mission_id, agent="ml-engineer",
                                                                    step="implement"))


# Parallel runs (pytest-xdist; scripts/test runs the suite on two workers). Tests that share an expensive module
# fixture (a whole mission, a live server, a browser) stay on one worker so it is made once, not once per worker.
# Each worker has its own session fixtures (its own PostgreSQL database), its own tmp_path tree and free ports.


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``-n N`` alone distributes by group (``--dist loadgroup``), not test by test."""
    if getattr(config.option, "numprocesses", None) and config.option.dist == "no":
        config.option.dist = "loadgroup"
        config.option.loadscopereorder = False  # the order is set below (``_longest_first``)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent under -p no:xdist
def pytest_configure_node(node: Any) -> None:
    """Tell each worker how the run is distributed (a worker parses the command line again, without the line
    above, so it would not know ``-n N`` alone means groups)."""
    node.workerinput["orch_dist"] = node.config.getvalue("dist")


def _module_bound(item: pytest.Item) -> bool:
    """Whether the test uses a class- or module-scoped fixture (made once for the tests of its module)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs and defs[-1].scope in ("class", "module") for defs in info.name2fixturedefs.values())


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    loadgroup = hasattr(config, "workerinput") and config.workerinput.get("orch_dist") == "loadgroup"
    if loadgroup:
        for item in items:
            if _module_bound(item) and not any(item.iter_markers("xdist_group")):
                item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    yield
    if loadgroup:
        # The scheduler keys tests by id: of two tests with one id, one would silently not run.
        seen: set[str] = set()
        twice = sorted({item.nodeid for item in items if item.nodeid in seen or seen.add(item.nodeid)})
        if twice:
            raise pytest.UsageError(f"tests share an id, a parallel run would drop all but one: {twice[:5]}")
        items[:] = _longest_first(items)
        for item in items:
            _add_group_suffix(item)


def _groups(item: pytest.Item) -> list[str]:
    return sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                   for mark in item.iter_markers("xdist_group")})


def _scope(item: pytest.Item) -> str:
    """What the scheduler hands a worker at once: the test's group, or the test alone."""
    return "_".join(_groups(item)) or item.nodeid


def _longest_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """Scopes that run whole missions first, then the larger scopes: the scheduler hands scopes out in this order,
    and a mission started last keeps one worker busy for minutes while the other has nothing left to do."""
    scopes: dict[str, list[pytest.Item]] = {}
    for item in items:
        scopes.setdefault(_scope(item), []).append(item)
    ordered = sorted(scopes.values(), key=lambda scope: (-sum(1 for item in scope if item.get_closest_marker("mission")),
                                                          -len(scope)))
    return [item for scope in ordered for item in scope]


# xdist (3.8) tells the scheduler a test's group by an ``@group`` suffix on the node id it sends, set through
# ``item._nodeid``; pytest 9.2 keeps node ids in ``item._id`` and ignores that attribute, so every group would be
# split test by test. The suffix is set there for the list of tests the worker sends, then taken off again so that
# reports name tests by their usual ids.
_UNSUFFIXED = pytest.StashKey[Any]()


def _add_group_suffix(item: pytest.Item) -> None:
    groups = _groups(item)
    if not groups:
        return
    suffix = "@" + "_".join(groups)
    if item.nodeid.endswith(suffix) or not hasattr(item, "_id"):
        return  # pytest < 9.2: xdist's own suffix took
    from _pytest.nodeid import coerce_node_id

    item.stash[_UNSUFFIXED] = item._id
    item._id = coerce_node_id(item.nodeid + suffix)


@pytest.hookimpl(wrapper=True)
def pytest_collection_finish(session: pytest.Session) -> Iterator[None]:
    yield  # the worker has sent its tests' ids
    for item in session.items:
        if _UNSUFFIXED in item.stash:
            item._id = item.stash[_UNSUFFIXED]
            del item.stash[_UNSUFFIXED]
