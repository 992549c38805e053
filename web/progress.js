// Where a mission stands: the six-step stepper and the artifacts it produced.

import { h, clear } from "./dom.js";
import { STEPS, agentName, duration, shortHash } from "./format.js";

const STATE_LABEL = {
  pending: "not started", running: "running", done: "done", completed: "done", failed: "failed",
  skipped: "skipped", blocked: "blocked", cancelled: "cancelled",
};

/** The procedure steps in order with state and duration (steps not yet recorded show as pending). */
export function renderSteps(list, mission) {
  const byName = new Map((mission.steps || []).map((s) => [s.name, s]));
  const names = [...STEPS, ...[...byName.keys()].filter((n) => !STEPS.includes(n))];
  clear(list, names.map((name, i) => {
    const step = byName.get(name) || { name, status: "pending" };
    let status = step.status || "pending";
    if (status === "pending" && mission.current_step === name && !["completed", "failed", "cancelled", "rejected"].includes(mission.status)) {
      status = "running";
    }
    if (status === "running" && ["completed", "failed", "cancelled", "rejected"].includes(mission.status)) {
      status = mission.status === "completed" ? "done" : "failed"; // the run ended inside this step
    }
    const secs = step.duration_s ?? (step.started_at && status === "running"
      ? (Date.now() - new Date(step.started_at).getTime()) / 1000 : null);
    const label = `${i + 1}. ${name}: ${STATE_LABEL[status] || status}${secs ? `, ${duration(secs)}` : ""}` +
      (step.rounds > 1 ? `, ${step.rounds} rounds` : "");
    const tone = status === "completed" ? "done" : status;
    return h("li", { class: `step ${tone}`, "aria-current": status === "running" ? "step" : null,
      "aria-label": label, title: step.summary || label, dataset: { step: name, status } },
      h("span.dot", { "aria-hidden": "true" }, tone === "done" ? "✓" : status === "failed" || status === "blocked" ? "✕" : String(i + 1)),
      h("span.step-name", name),
      h("span.step-state", STATE_LABEL[status] || status, secs ? ` · ${duration(secs)}` : "",
        step.rounds > 1 ? ` · ${step.rounds}×` : ""));
  }));
}

/** Artifacts as links (HTML reports open in a new tab) and the mission's tasks. */
export function renderArtifacts(panel, mission, openArtifact) {
  const artifacts = mission.artifacts || [];
  const tasks = mission.tasks || [];
  const reports = artifacts.filter((a) => /\.html?$/i.test(a.path));
  clear(panel,
    h("h2", "Artifacts"),
    reports.length ? h("p.reports", "Reports: ", reports.map((a) =>
      h("a.btn.small", { href: `#artifact:${a.path}`, onclick: (e) => { e.preventDefault(); openArtifact(a.path); } },
        a.path.split("/").pop()))) : null,
    artifacts.length
      ? h("div.table-wrap", h("table.artifacts",
        h("thead", h("tr", h("th", "File"), h("th", "Kind"), h("th", "By"), h("th", "Step"), h("th", "Size"), h("th", "SHA-256"))),
        h("tbody", artifacts.map((a) => h("tr",
          h("td", h("a", { href: `#artifact:${a.path}`, onclick: (e) => { e.preventDefault(); openArtifact(a.path); } }, a.path)),
          h("td", a.kind || ""), h("td", agentName(a.agent)), h("td", a.step || ""),
          h("td.num", size(a.size)), h("td", h("code", { title: a.sha256 }, shortHash(a.sha256))))))))
      : h("p.empty", "No artifacts yet: they appear here as the agents write them."),
    h("h2", "Tasks"),
    tasks.length
      ? h("ul.tasks", tasks.map((t) => h("li", { class: t.status },
        h("span.tag", t.status), ` ${t.title} `, h("span.hint", `${agentName(t.agent)} · ${t.step}`))))
      : h("p.empty", "No tasks recorded."));
}

function size(bytes) {
  if (bytes === null || bytes === undefined) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
