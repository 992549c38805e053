// The end of a mission, read like a CI run page: its status and why, the checks with their figures, what it
// delivered (as links), how long it took, who it delegated to and what that cost. All of it from the mission's
// record (GET /missions/{id}, the same data as `orchestrator missions show --json`).

import { checkPassed } from "./approval.js";
import { h } from "./dom.js";
import { agentName, duration, missionLabel, money } from "./format.js";

const REPORT = "reports/mission-report.md";

/** Seconds from the mission's creation to its last change (its end, once it has ended). */
function wallTime(mission) {
  const start = Date.parse(mission.created_at);
  const end = Date.parse(mission.updated_at);
  return Number.isNaN(start) || Number.isNaN(end) ? null : Math.max(0, (end - start) / 1000);
}

/** The checks as the record lists them: `checks` (or `report.checks`), each {name, status|passed, detail}. */
function checksOf(mission) {
  const checks = mission.checks || mission.report?.checks;
  return Array.isArray(checks) ? checks : null;
}

/** What the mission delivered: its own list when the record has one, else what the release gate shipped. */
function deliverablesOf(mission) {
  const listed = mission.deliverables || mission.report?.deliverables;
  if (Array.isArray(listed)) return listed.map((d) => (typeof d === "string" ? { path: d } : d));
  const release = [...(mission.approvals || [])].reverse().find((a) => Array.isArray(a.payload?.artifacts));
  const shipped = release ? release.payload.artifacts : [];
  const reports = (mission.artifacts || []).filter((a) => a.kind === "report" && (a.path === REPORT || /\.html?$/.test(a.path)));
  const seen = new Set();
  return [...reports, ...shipped].filter((a) => !seen.has(a.path) && seen.add(a.path));
}

function delegationFacts(mission) {
  const delegations = mission.delegations || [];
  const byAgent = new Map();
  for (const d of delegations) byAgent.set(d.to_agent, (byAgent.get(d.to_agent) || 0) + 1);
  const failed = delegations.filter((d) => !/^(completed|done|ok)$/.test(d.status)).length;
  const sum = (key) => delegations.reduce((total, d) => total + (Number(d[key]) || 0), 0);
  const costs = delegations.map((d) => d.cost_usd).filter((c) => c !== null && c !== undefined);
  return { count: delegations.length, byAgent, failed, tokens: sum("input_tokens") + sum("output_tokens"),
    cost: costs.length ? sum("cost_usd") : null };
}

/** The card for a finished mission; `openArtifact(path)` opens a file, `showFiles()` the Artifacts tab. */
export function summaryCard(mission, { openArtifact, showFiles }) {
  const reason = mission.reason ?? mission.error;
  const checks = checksOf(mission);
  const deliverables = deliverablesOf(mission);
  const d = delegationFacts(mission);
  const secs = wallTime(mission);
  const report = (mission.steps || []).find((s) => s.name === "report");
  const hasReport = (mission.artifacts || []).some((a) => a.path === REPORT);
  const link = (path, text = path) => h("a", { href: `#artifact:${path}`,
    onclick: (e) => { e.preventDefault(); openArtifact(path); } }, text);

  return h("section.entry.summary-card", { class: mission.status, "aria-label": "Mission summary" },
    h("header.summary-head",
      h("span", { class: `pill ${mission.status}` }, missionLabel(mission.status)),
      h("strong.summary-title", reason ? reason : `Mission ${missionLabel(mission.status)}.`)),
    h("dl.summary-facts",
      h("div", h("dt", "Duration"), h("dd", secs !== null ? duration(secs) : "—")),
      h("div", h("dt", "Delegations"), h("dd.delegations", d.count
        ? `${d.count} (${[...d.byAgent].map(([agent, n]) => `${agentName(agent)} ×${n}`).join(", ")})` +
          (d.failed ? `, ${d.failed} not completed` : "")
        : "none")),
      h("div", h("dt", "Cost"), h("dd.cost", d.cost !== null ? money(d.cost) : "no model cost recorded",
        d.tokens ? ` · ${d.tokens} tokens` : ""))),
    h("h3", "Checks"),
    checks
      ? h("ul.checks.summary-checks", checks.map((c) => h("li", { class: checkPassed(c) ? "pass" : "fail",
        dataset: { check: c.name || "" } },
      h("span.tag", { class: checkPassed(c) ? "done" : "failed" }, checkPassed(c) ? "pass" : "fail"),
      ` ${c.name || ""}`, c.detail ? h("span.hint", ` — ${c.detail}`) : null)))
      : h("p.hint.checks-from-report", report?.summary || "No checks were recorded.",
        hasReport ? [" ", link(REPORT, "Open the mission report")] : null),
    h("h3", "Deliverables"),
    deliverables.length
      ? h("ul.deliverables", deliverables.map((a) => h("li", link(a.path, a.name ? `${a.name}: ${a.path}` : a.path),
        a.kind ? h("span.tag", a.kind) : null)))
      : h("p.hint", "Nothing was delivered."),
    h("p.hint", h("a", { href: "#", onclick: (e) => { e.preventDefault(); showFiles(); } },
      `Every file the agents wrote (${(mission.artifacts || []).length})`)));
}
