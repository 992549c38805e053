"""The ``orchestrator`` command: run missions, inspect records, decide gates, verify the audit chain."""

from __future__ import annotations

import getpass
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.config import Settings, get_settings
from orchestrator.errors import InputError, OrchestratorError

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Multi-agent orchestration for ML engineering, every delegation on the record.")
missions_app = typer.Typer(no_args_is_help=True, help="List and inspect missions.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(missions_app, name="missions")
app.add_typer(db_app, name="db")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (stable fields) on stdout.")]


def _settings() -> Settings:
    return get_settings()


def _runner(settings: Settings | None = None):  # noqa: ANN202
    from orchestrator.runner import Runner

    return Runner(settings or _settings())


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _view(url: str, mission_id: str) -> dict[str, Any]:
    from orchestrator.db import session_scope
    from orchestrator.views import mission_view

    with session_scope(url) as session:
        return mission_view(session, mission_id)


def _run_live(runner, mission_id: str, *, as_json: bool, extra: dict[str, Any] | None = None) -> None:  # noqa: ANN001
    from orchestrator.progress import EventTail

    out = sys.stderr if as_json else sys.stdout
    print(f"mission {mission_id} (workspace {_view(runner.url, mission_id)['workspace']})", file=out)
    with EventTail(runner.url, mission_id, out):
        status = runner.run(mission_id)
    _finish(runner.url, mission_id, status, as_json=as_json, extra=extra)


def _finish(url: str, mission_id: str, status: str, *, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    view = _view(url, mission_id)
    if extra:
        view.update(extra)
    if as_json:
        print(json.dumps(view, indent=2, default=str))
    else:
        _print_summary(view)
    if status not in ("completed", "completed_with_risks", "waiting_approval", "queued", "running"):
        raise typer.Exit(1)


def _print_summary(view: dict[str, Any]) -> None:
    print(f"\nmission {view['id']}: {view['status']}" + (f": {view['reason']}" if view.get("reason") else ""))
    for step in view["steps"]:
        why = f"  {step['reason']}" if step.get("reason") and step["status"] != "done" else ""
        print(f"  {step['name']:<11} {step['status']:<8} rounds={step['rounds']}{why}"[:240])
    print(f"  delegations: {len(view['delegations'])}  approvals: {len(view['approvals'])}  "
          f"artifacts: {len(view['artifacts'])}")
    audit = view.get("audit") or {}
    print(f"  audit chain: {'intact' if audit.get('intact') else 'BROKEN'} ({audit.get('events')} events)")
    if view["status"] == "waiting_approval":
        print(f"  waiting for approval: orchestrator approve {view['id']} [--reject]")
    report = next((a["path"] for a in view["artifacts"] if a["path"] == "reports/mission-report.md"), None)
    if report:
        print(f"  report: {view['workspace']}/{report}")
    print(f"  review: orchestrator missions show {view['id']} · orchestrator audit {view['id']}")


@app.command()
def demo(workspace: Annotated[Path | None, typer.Option(help="Where to build the demo workspace.")] = None,
         as_json: JsonOpt = False) -> None:
    """Build a demo workspace offline and run the example mission on it, gates approved by 'demo'."""
    from tools.ml.demo import build_demo_workspace

    target = workspace or _free_dir(Path("demo-workspace"))
    if target.exists() and any(target.iterdir()):
        raise InputError(f"workspace {str(target)!r} is not empty; pass --workspace with a new directory")
    target.mkdir(parents=True, exist_ok=True)
    info = build_demo_workspace(target)
    text = resources.files("orchestrator.data").joinpath("anomaly-batch-scoring.md").read_text(encoding="utf-8")
    with _runner() as runner:
        mission_id = runner.submit(text, workspace=target, owner="demo", auto_approve_by="demo")
        _run_live(runner, mission_id, as_json=as_json, extra={"injected_shift": list(info.injected_shift)})


def _free_dir(base: Path) -> Path:
    candidate, n = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


@app.command()
def run(text: Annotated[str | None, typer.Argument(help="Mission text (or use --mission-file).")] = None,
        workspace: Annotated[Path, typer.Option(help="The mission's workspace directory.")] = ...,  # type: ignore[assignment]
        mission_file: Annotated[Path | None, typer.Option(help="Read the mission text from this file.")] = None,
        approve_all: Annotated[bool, typer.Option(help="Approve every gate, recorded as approved by you.")] = False,
        as_json: JsonOpt = False) -> None:
    """Run a mission on a workspace with live progress."""
    if (text is None) == (mission_file is None):
        raise InputError("give the mission either as TEXT or with --mission-file, not both or neither")
    if mission_file is not None:
        try:
            text = mission_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read mission file {str(mission_file)!r}: {exc.strerror}") from None
    with _runner() as runner:
        mission_id = runner.submit(text or "", workspace=workspace, owner=_actor(),
                                   auto_approve_by=_actor() if approve_all else None)
        _run_live(runner, mission_id, as_json=as_json)


@missions_app.command("list")
def missions_list(status: Annotated[str | None, typer.Option(help="Only missions with this status.")] = None,
                  as_json: JsonOpt = False) -> None:
    """List missions, newest first."""
    from sqlalchemy import select

    from orchestrator.db import session_scope
    from orchestrator.db.models import Mission
    from orchestrator.db.schema import upgrade

    url = _settings().resolved_database_url
    upgrade(url)
    with session_scope(url) as session:
        stmt = select(Mission).order_by(Mission.created_at.desc())
        if status:
            stmt = stmt.where(Mission.status == status)
        rows = [{"id": m.id, "status": m.status, "current_step": m.current_step, "created_at": str(m.created_at),
                 "objective": m.spec.get("objective", "")} for m in session.scalars(stmt)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no missions yet: try `orchestrator demo`")
    for row in rows:
        print(f"{row['id']}  {row['status']:<16} {row['current_step'] or '-':<10} {row['objective'][:70]}")


@missions_app.command("show")
def missions_show(mission_id: str, as_json: JsonOpt = False) -> None:
    """Show a mission: status, steps, delegations with brief and result, approvals, artifacts, tasks."""
    from orchestrator.db.schema import upgrade

    url = _settings().resolved_database_url
    upgrade(url)
    view = _view(url, mission_id)
    if as_json:
        print(json.dumps(view, indent=2, default=str))
        return
    _print_summary(view)
    for d in view["delegations"]:
        print(f"  #{d['id']} [{d['step']}] {d['from_agent']} -> {d['to_agent']} ({d['reason']}, {d['status']}, "
              f"{d['duration_ms']} ms)\n      brief: {d['brief'].get('task', '')}\n"
              f"      result: {(d['result'] or {}).get('summary', '')[:300]}")
    for a in view["approvals"]:
        print(f"  approval #{a['id']} {a['kind']}: {a['status']} by {a['decided_by'] or '-'}")
    for t in view["tasks"]:
        print(f"  task #{t['id']} [{t['status']}] {t['title']}")
    for art in view["artifacts"]:
        print(f"  {art['path']}  {art['kind']}  {art['agent']}/{art['step']}  {art['sha256'][:12]}")


@app.command("audit")
def audit(words: Annotated[list[str], typer.Argument(metavar="[verify|head] MISSION_ID",
                                                     help="MISSION_ID, 'verify MISSION_ID' or 'head MISSION_ID'.")],
          head: Annotated[Path | None, typer.Option("--head", help="With verify: a head saved from "
                                                     "`audit head`, which the chain must still reach.")] = None,
          ) -> None:
    """`audit ID` prints the delegation tree and timeline; `audit verify ID [--head FILE]` checks the hash chain
    (exit 1 if broken); `audit head ID` prints the chain's signed head, to keep outside the database."""
    if len(words) == 1 and head is None:
        from orchestrator.audit_review import print_review

        print_review(_settings().resolved_database_url, words[0])
        return
    if len(words) == 2 and words[0] == "verify":
        _audit_verify(words[1], head_file=head)
        return
    if len(words) == 2 and words[0] == "head" and head is None:
        _audit_head(words[1])
        return
    raise InputError("usage: orchestrator audit MISSION_ID | orchestrator audit verify MISSION_ID [--head FILE]"
                     " | orchestrator audit head MISSION_ID")


def _head_key() -> bytes:
    from orchestrator.audit import head_key

    settings = _settings()
    configured = settings.audit_head_key.get_secret_value() if settings.audit_head_key else None
    return head_key(configured=configured, home=settings.home)


def _audit_verify(mission_id: str, *, head_file: Path | None = None) -> None:
    from orchestrator.audit import SignedHead, verify_chain
    from orchestrator.db import session_scope
    from orchestrator.db.missions import get_mission
    from orchestrator.db.schema import upgrade

    signed = None
    if head_file is not None:
        try:
            text = head_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read head file {str(head_file)!r}: {exc.strerror}") from None
        signed = SignedHead.from_json(text, key=_head_key(), source=f"head file {str(head_file)!r}")
    url = _settings().resolved_database_url
    upgrade(url)
    with session_scope(url) as session:
        get_mission(session, mission_id)
        report = verify_chain(session, mission_id, head=signed)
    print(report.describe())
    if not report.intact:
        raise typer.Exit(1)


def _audit_head(mission_id: str) -> None:
    from orchestrator.audit import signed_head, verify_chain
    from orchestrator.db import session_scope
    from orchestrator.db.missions import get_mission
    from orchestrator.db.schema import upgrade

    url = _settings().resolved_database_url
    upgrade(url)
    with session_scope(url) as session:
        get_mission(session, mission_id)
        report = verify_chain(session, mission_id)
        if not report.intact:  # a signature would vouch for a tampered trail
            print(report.describe(), file=sys.stderr)
            raise typer.Exit(1)
        print(signed_head(session, mission_id, key=_head_key()).to_json())


@app.command()
def approve(mission_id: str,
            reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
            changes: Annotated[bool, typer.Option("--request-changes",
                                                  help="Run the step again with --comment as the instruction.")] = False,
            comment: Annotated[str | None, typer.Option(help="Why (the instruction, with --request-changes).")] = None,
            as_json: JsonOpt = False) -> None:
    """Decide the mission's pending gate, then continue the mission."""
    if reject and changes:
        raise InputError("choose one of --reject and --request-changes")
    verdict = "rejected" if reject else "changes_requested" if changes else "approved"
    with _runner() as runner:
        decision = runner.decide(mission_id, decision=verdict, actor=_actor(), comment=comment)
        print(f"approval #{decision['id']} {decision['status']} by {decision['decided_by']}",
              file=sys.stderr if as_json else sys.stdout)
        _run_live(runner, mission_id, as_json=as_json)


@app.command()
def resume(mission_id: str, as_json: JsonOpt = False) -> None:
    """Resume a mission from its last checkpoint (after a crash, or a decided gate)."""
    with _runner() as runner:
        _run_live(runner, mission_id, as_json=as_json)


@app.command()
def cancel(mission_id: str) -> None:
    """Cancel a mission; a running one stops after its current graph step."""
    with _runner() as runner:
        print(f"mission {mission_id}: {runner.cancel(mission_id, actor=_actor())}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (Alembic) up to head."""
    from orchestrator.checkpoint import open_checkpointer
    from orchestrator.db.schema import head_revision, upgrade

    url = _settings().resolved_database_url
    upgrade(url)
    with open_checkpointer(url):
        pass
    print(f"database at revision {head_revision(url)}")


@app.command()
def replay(mission_id: Annotated[str | None, typer.Argument(help="The finished mission to replay.")] = None,
           replay_all: Annotated[bool, typer.Option("--all", help="Replay every finished mission.")] = False,
           as_json: JsonOpt = False) -> None:
    """Re-drive a finished mission from its record (no model asked, no tool run) and check it takes the same
    path, delegations and outcome; exit 1 naming the first divergent step when it does not."""
    from orchestrator.db.schema import upgrade
    from orchestrator.replay import replay_all as replay_every, replay_mission

    if (mission_id is None) == (not replay_all):
        raise InputError("give a MISSION_ID or --all, not both or neither")
    settings = _settings()
    upgrade(settings.resolved_database_url)
    reports = replay_every(settings) if replay_all else [replay_mission(settings, mission_id or "")]
    if not replay_all and reports[0].skipped:
        from orchestrator.errors import InvalidTransition

        raise InvalidTransition(reports[0].describe())
    if as_json:
        print(json.dumps([r.as_json() for r in reports] if replay_all else reports[0].as_json(), indent=2))
    else:
        for report in reports:
            print(report.describe())
        if replay_all:
            done = [r for r in reports if not r.skipped]
            print(f"{sum(r.reproduced for r in done)} of {len(done)} replays reproduced their record"
                  + (f" ({len(reports) - len(done)} not replayable)" if len(done) < len(reports) else ""))
    if any(not r.reproduced and not r.skipped for r in reports):
        raise typer.Exit(1)


@app.command()
def fork(mission_id: Annotated[str, typer.Argument(help="The mission to fork.")],
         from_step: Annotated[str, typer.Option("--from", help="The step to start again from (e.g. evaluate).")],
         model: Annotated[str | None, typer.Option(help="Model for the new mission (builtin or provider:model); "
                                                        "the settings' model otherwise.")] = None,
         workspace: Annotated[Path | None, typer.Option(help="Workspace for the new mission (e.g. with fixed data); "
                                                              "the parent's otherwise.")] = None,
         approve_all: Annotated[bool, typer.Option(help="Approve every gate, recorded as approved by you.")] = False,
         as_json: JsonOpt = False) -> None:
    """Start a new mission from another's record at STEP (its checkpoint before that step), linked to its
    parent, and run it with live progress."""
    from orchestrator.fork import fork_mission

    settings = _settings()
    if model:
        settings = settings.model_copy(update={"model": model})
    with _runner(settings) as runner:
        forked = fork_mission(runner, mission_id, from_step=from_step, model=model, workspace=workspace,
                              owner=_actor(), auto_approve_by=_actor() if approve_all else None)
        print(f"mission {forked.mission_id}: forked from {mission_id} at {from_step} "
              f"({len(forked.inherited)} steps from the parent)", file=sys.stderr if as_json else sys.stdout)
        _run_live(runner, forked.mission_id, as_json=as_json)


def _register_service_commands() -> None:
    """`serve`, `worker` and `keys` live with the API they start."""
    try:
        from orchestrator.api.commands import register
    except ImportError:  # the API package is optional at import time only while it is being built
        return
    register(app)


_register_service_commands()


def main() -> None:
    """Entry point: domain errors become one clear line and an exit code, never a traceback."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted; resume with `orchestrator resume ID`", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
