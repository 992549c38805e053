"""Schemathesis over the OpenAPI document, in-process (ASGI): no 5xx, no response outside the schema.

The SSE route is left out: a generated request for a live mission would follow it forever, and an
event stream is not a JSON body to validate (its messages are checked in test_events.py).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.api.app import create_app
from orchestrator.api.keys import create_key
from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.schema import upgrade


def _app_and_key(tmp: Path):  # noqa: ANN202
    url = f"sqlite:///{tmp / 'fuzz.db'}"
    upgrade(url)
    root = tmp / "workspaces"
    (root / "ws").mkdir(parents=True, exist_ok=True)
    app = create_app(Settings(home=tmp / "home", database_url=url, workspace_roots=[root], _env_file=None),
                     start_workers=False)
    with session_scope(url) as session:
        key = create_key(session, role="admin", name="fuzzer")[1]
    return app, key


# Made when the module is imported (the schema's operations are the tests), so in every process that collects it,
# a parallel worker that runs none of them included: removed when that process exits.
_TMP = Path(tempfile.mkdtemp(prefix="orch-fuzz-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
APP, KEY = _app_and_key(_TMP)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path_regex=r".*/events$")


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case) -> None:  # noqa: ANN001
    # What the acceptance asks: no 5xx and no response outside the schema (status, media type, body).
    # Business rules (an existing workspace, a known cursor) rightly reject some schema-valid requests.
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"},
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
