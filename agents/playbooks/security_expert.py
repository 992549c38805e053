"""The Security Expert as played by the built-in planner: a workspace security review whose high findings
raise the compliance failure mode (through the scan tool) and block the release."""

from __future__ import annotations

from agents.playbooks import PLAYBOOKS
from agents.playbooks.base import Call, Finding, Finish, Playbook, View
from agents.playbooks.ml_engineer import as_dict, failed

__all__ = ["review"]


def review(view: View) -> Playbook:
    scan = as_dict((yield Call("security_scan", {"path": "."})))
    if "counts" not in scan:
        return Finish(summary=f"Security scan failed: {scan.get('error')}", status="failed")
    counts = scan["counts"]
    findings = [Finding(title=f"{f['title']} ({f['category']})", severity=f["severity"],
                        detail=f"{f['path']}{':' + str(f['line']) if f.get('line') else ''}: {f['detail']}")
                for f in scan.get("findings", [])]
    licences = ", ".join(f"{lic['package']} {lic['licence']}" for lic in scan.get("licences", [])[:12])
    blocked = bool(scan.get("blocking")) or failed(scan)
    summary = (f"Security scan: {counts.get('high', 0)} high, {counts.get('medium', 0)} medium, {counts.get('low', 0)} low "
               f"findings ({scan.get('path')}). " + ("Release blocked until the high findings are fixed. " if blocked else "")
               + f"Licences: {licences}.")
    return Finish(summary=summary, findings=findings, artifacts=[scan.get("path", "reports/security.json")],
                  status="blocked" if blocked else "completed")


PLAYBOOKS["security-expert"] = {"*": review}
