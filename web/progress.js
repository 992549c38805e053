// Where a mission stands: the step tracker (every step's recorded status, its reason on hover or click) and the
// artifacts it produced.

import { clear, h } from "./dom.js";
import { STEP_LABEL, agentName, duration, shortHash } from "./format.js";
import { stepDecl } from "./procedure.js";

const SYMBOL = { done: "✓", failed: "✕", rejected: "⊘", blocked: "!", waiting: "?", skipped: "–" };

/** The steps a mission shows: the declared ones from the start, a detour (the manual plan) once taken. */
export function shownSteps(mission) {
  return (mission.steps || []).filter((s) => stepDecl(s.name)?.listed !== false || s.status !== "pending");
}

/** Seconds a step has taken (so far, while it runs). */
function seconds(step) {
  if (step.duration_s !== null && step.duration_s !== undefined) return step.duration_s;
  if (step.started_at && step.status === "running") return (Date.now() - new Date(step.started_at).getTime()) / 1000;
  return null;
}

/** One line per step in one row, as recorded; `picked` is the step whose details are open (or null). */
export function renderSteps(list, mission, { picked = null, onPick = () => {} } = {}) {
  const steps = shownSteps(mission);
  list.style.setProperty("--steps", String(steps.length || 1));
  clear(list, steps.map((step, i) => {
    const status = step.status || "pending";
    const label = STEP_LABEL[status] || status;
    const secs = seconds(step);
    const title = step.title || stepDecl(step.name)?.title || step.name;
    const why = step.reason || step.summary || "";
    const spoken = `${i + 1}. ${title}: ${label}${secs ? `, ${duration(secs)}` : ""}` +
      (step.rounds > 1 ? `, ${step.rounds} rounds` : "") + (step.reason ? `. ${step.reason}` : "");
    return h("li", { class: `step ${status}`, "aria-current": status === "running" ? "step" : null,
      dataset: { step: step.name, status } },
    h("button.step-btn", { type: "button", title: why || label, "aria-label": spoken,
      "aria-expanded": String(picked === step.name), "aria-controls": "m-step-detail",
      onclick: () => onPick(picked === step.name ? null : step.name) },
    h("span.dot", { "aria-hidden": "true" }, SYMBOL[status] || String(i + 1)),
    h("span.step-name", title),
    h("span.step-state", label, secs ? ` · ${duration(secs)}` : "", step.rounds > 1 ? ` · ${step.rounds}×` : "")));
  }));
}

/** The picked step's status with its reason, summary, lead and timing; hidden when nothing is picked. */
export function renderStepDetail(box, mission, name) {
  const step = name && (mission.steps || []).find((s) => s.name === name);
  box.hidden = !step;
  if (!step) return;
  const decl = stepDecl(step.name);
  const secs = seconds(step);
  clear(box,
    h("p.step-detail-head", h("strong", `${step.title || decl?.title || step.name}: `),
      h("span", { class: `tag ${step.status}` }, STEP_LABEL[step.status] || step.status),
      decl ? h("span.hint", ` led by ${agentName(decl.lead)}`) : null,
      secs ? h("span.hint", ` · ${duration(secs)}`) : null,
      step.rounds > 1 ? h("span.hint", ` · ${step.rounds} rounds`) : null),
    step.reason ? h("p.step-reason", h("strong", "Why: "), step.reason) : null,
    step.summary ? h("p.step-summary", step.summary) : null,
    !step.reason && !step.summary ? h("p.hint", "Nothing recorded for this step yet.") : null);
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

export function size(bytes) {
  if (bytes === null || bytes === undefined) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
