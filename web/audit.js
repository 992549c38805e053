// The delegation audit review: chain verification, delegation graph with edge details, timeline, export.

import { api, fetchBlob, items } from "./api.js";
import { resultView } from "./chat.js";
import { clear, h, jsonBlock } from "./dom.js";
import { agentName, dateTime, duration, money, shortHash, time } from "./format.js";
import { errorNodes, showError } from "./messages.js";
import { drawGraph, selectEdge } from "./graph.js";

// What the reviewer picked, per mission: the selected arrow and the timeline's filters survive "Verify again".
const picked = new Map();

function pickedFor(missionId) {
  if (!picked.has(missionId)) picked.set(missionId, { pair: null, kind: "", agent: "", text: "" });
  return picked.get(missionId);
}

/** Load and render the review of one mission into `panel`. */
export async function renderAudit(panel, missionId) {
  const state = pickedFor(missionId);
  const verdict = h("div.verdict", { role: "status", "aria-live": "polite" }, "Verifying the audit chain…");
  const graphBox = h("div.graph-box", h("p.hint", "Loading the delegation graph…"));
  const details = h("div.edge-details", { "aria-live": "polite" },
    h("p.hint", "Select an arrow to see its handoffs: brief, result, timings and cost."));
  const timeline = h("div.timeline");
  const exportError = h("p.error-text", { role: "alert" });
  const reverify = h("button.btn.small", { type: "button", onclick: async () => {
    await renderAudit(panel, missionId);
    panel.querySelector(".audit-head .actions button")?.focus();
  } }, "Verify again");
  const exportBtn = h("button.btn.small", { type: "button", onclick: () => exportTrail(missionId, exportBtn, exportError) },
    "Export JSONL");

  clear(panel,
    h("div.audit-head", verdict, h("div.actions", reverify, exportBtn)), exportError,
    h("section.audit-graph", { "aria-labelledby": "graph-title" },
      h("h2#graph-title", "Delegation graph"),
      h("div.graph-layout", graphBox, details)),
    h("section", { "aria-labelledby": "timeline-title" }, h("h2#timeline-title", "Audit trail"), timeline));

  const [report, graph, trail] = await Promise.allSettled([api.verify(missionId), api.delegations(missionId),
    api.audit(missionId)]);

  if (report.status === "fulfilled") showVerdict(verdict, report.value);
  else clear(verdict, h("span.bad", errorNodes(report.reason, "verifyAudit")));
  verdict.className = `verdict ${report.status === "fulfilled" ? (report.value.intact ? "ok" : "bad") : "bad"}`;

  if (graph.status === "fulfilled") {
    const data = graph.value || {};
    if ((data.edges || []).length) {
      const svg = drawGraph(graphBox, data, (pair) => {
        state.pair = [pair.from, pair.to];
        showPair(details, pair);
      });
      const again = state.pair && svg.pairs.get(state.pair.join("\u0000"));
      if (again) {
        selectEdge(svg, again.from, again.to);
        showPair(details, again, { focus: false });
      }
    } else {
      clear(graphBox, h("p.empty", "No handoffs yet: the lead agent has not delegated anything."));
    }
  } else {
    clear(graphBox, h("p.error-text", errorNodes(graph.reason, "loadGraph")));
  }

  if (trail.status === "fulfilled") {
    const badSeq = report.status === "fulfilled" && !report.value.intact ? report.value.first_bad_seq : null;
    renderTimeline(timeline, items(trail.value, "events"), badSeq, state);
  } else {
    clear(timeline, h("p.error-text", errorNodes(trail.reason, "loadTrail")));
  }
}

function showVerdict(box, r) {
  if (r.intact) {
    clear(box, h("span.icon", { "aria-hidden": "true" }, "✔"),
      h("strong", `Audit chain intact — ${r.events} events`),
      r.head ? h("span.hint", ` head ${shortHash(r.head)}`) : null);
  } else {
    clear(box, h("span.icon", { "aria-hidden": "true" }, "✖"),
      h("strong", `Audit chain BROKEN at entry #${r.first_bad_seq}: ${r.reason || "hash mismatch"}`),
      h("span.hint", ` (${r.events} events checked; entries before #${r.first_bad_seq} verify)`),
      h("button.btn.small", { type: "button", onclick: () => showEntry(r.first_bad_seq) }, `Show entry #${r.first_bad_seq}`));
  }
}

function showEntry(seq) {
  const row = document.querySelector(`#panel-audit ol.trail > li[data-seq="${seq}"]`);
  if (!row) return;
  row.hidden = false;
  row.querySelector("details").open = true;
  row.scrollIntoView({ block: "center" });
  row.querySelector("summary").focus();
}

function showPair(box, pair, { focus = true } = {}) {
  const total = (key) => pair.edges.reduce((sum, e) => sum + (Number(e[key]) || 0), 0);
  clear(box,
    h("h3", `${agentName(pair.from)} → ${agentName(pair.to)}`),
    h("p.hint", `${pair.edges.length} handoff${pair.edges.length === 1 ? "" : "s"} · ` +
      `${duration(total("duration_ms") / 1000)} · ${total("input_tokens") + total("output_tokens")} tokens` +
      (total("cost_usd") ? ` · ${money(total("cost_usd"))}` : "")),
    pair.edges.map((e) => h("article.handoff-card", { "aria-label": `Handoff ${e.id}` },
      h("h4", `#${e.id} · ${e.step} · `, h("span", { class: `tag ${e.status}` }, e.status), e.reason ? h("span.tag", e.reason) : null),
      h("dl.facts",
        h("dt", "Started"), h("dd", dateTime(e.started_at) || "—"),
        h("dt", "Finished"), h("dd", dateTime(e.finished_at) || "—"),
        h("dt", "Duration"), h("dd", e.duration_ms !== null && e.duration_ms !== undefined ? duration(e.duration_ms / 1000) : "—"),
        h("dt", "Tokens"), h("dd", `${e.input_tokens ?? 0} in / ${e.output_tokens ?? 0} out`),
        h("dt", "Cost"), h("dd", money(e.cost_usd) || "—")),
      h("details.brief", { open: true }, h("summary", "Brief"),
        e.brief ? h("div.detail",
          e.brief.task ? h("p", h("strong", "Task: "), e.brief.task) : null,
          e.brief.context ? h("p", h("strong", "Context: "),
            typeof e.brief.context === "string" ? e.brief.context : JSON.stringify(e.brief.context)) : null,
          e.brief.expected_output ? h("p", h("strong", "Expected output: "), e.brief.expected_output) : null)
          : h("p.hint", "No brief recorded.")),
      h("details.result", { open: true }, h("summary", "Result"), resultView(e.result)))));
  box.querySelector("h3").setAttribute("tabindex", "-1");
  if (focus) box.querySelector("h3").focus();
}

function renderTimeline(box, events, badSeq, state) {
  const kinds = [...new Set(events.map((e) => e.kind))].sort();
  const agents = [...new Set(events.map((e) => e.agent || e.actor).filter(Boolean))].sort();
  const kindSel = h("select", { "aria-label": "Filter by kind" }, h("option", { value: "" }, "all kinds"),
    kinds.map((k) => h("option", { value: k }, k)));
  const agentSel = h("select", { "aria-label": "Filter by agent" }, h("option", { value: "" }, "all agents"),
    agents.map((a) => h("option", { value: a }, agentName(a))));
  const text = h("input", { type: "search", placeholder: "Step or text…", "aria-label": "Filter by step or text" });
  const count = h("span.hint", { role: "status" });
  const list = h("ol.trail", { "aria-label": "Audit events" });

  const rows = events.map((e) => {
    const agent = e.agent || e.actor || "";
    const bad = badSeq !== null && badSeq !== undefined && e.seq === badSeq;
    const after = badSeq !== null && badSeq !== undefined && e.seq > badSeq;
    const row = h("li", { class: `trail-row${bad ? " bad" : ""}${after ? " unverified" : ""}`,
      dataset: { seq: e.seq, kind: e.kind, agent } },
    h("details",
      h("summary",
        h("span.seq", `#${e.seq}`),
        h("span.kind", e.kind),
        h("span.who", agentName(agent)),
        h("span.where", e.step ? h("span.tag.step-tag", e.step) : ""),
        h("span.what", summarize(e)),
        bad ? h("strong.broken", "first bad entry") : null,
        h("time", { datetime: e.ts, title: dateTime(e.ts) }, time(e.ts))),
      h("div.detail",
        h("p.hint", `hash ${e.hash || ""}`, e.prev_hash ? ` · prev ${shortHash(e.prev_hash)}` : "",
          e.delegation_id ? ` · delegation #${e.delegation_id}` : ""),
        jsonBlock(e.payload, `Payload of event ${e.seq}`))));
    row.haystack = `${e.kind} ${agent} ${e.step || ""} ${JSON.stringify(e.payload || {})}`.toLowerCase();
    return row;
  });

  kindSel.value = kinds.includes(state.kind) ? state.kind : "";
  agentSel.value = agents.includes(state.agent) ? state.agent : "";
  text.value = state.text;
  const apply = () => {
    Object.assign(state, { kind: kindSel.value, agent: agentSel.value, text: text.value });
    const needle = text.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      const ok = (!kindSel.value || row.dataset.kind === kindSel.value) &&
        (!agentSel.value || row.dataset.agent === agentSel.value) && (!needle || row.haystack.includes(needle));
      row.hidden = !ok;
      if (ok) shown += 1;
    }
    count.textContent = `${shown} of ${rows.length} events`;
  };
  kindSel.addEventListener("change", apply);
  agentSel.addEventListener("change", apply);
  text.addEventListener("input", apply);
  list.append(...rows);
  clear(box, h("div.filters", kindSel, agentSel, text, count),
    rows.length ? list : h("p.empty", "No events recorded."));
  apply();
}

function summarize(e) {
  const p = e.payload || {};
  switch (e.kind) {
    case "handoff.started": return `→ ${agentName(p.to)}: ${p.brief?.task || p.reason || ""}`;
    case "handoff.finished": return `→ ${agentName(p.to)} (${p.status || ""}): ${clip(p.result?.summary, 90)}`;
    case "tool.called": return `${p.tool} (${p.status || "ok"}${p.decision && !/^allow/.test(p.decision) ? `, ${p.decision}` : ""})`;
    case "message": return clip(p.text);
    case "user.message": return clip(p.text);
    case "step.finished": return `${p.status || ""} ${clip(p.summary, 80)}`;
    case "mission.status": return `${p.status}${p.error ? `: ${clip(p.error, 80)}` : ""}`;
    case "approval.requested": return `${p.kind}: ${clip(p.question, 80)}`;
    case "approval.decided": return `${p.decision}${p.comment ? ` — ${clip(p.comment, 60)}` : ""}`;
    case "artifact.written": return p.path || "";
    default: return clip(JSON.stringify(p), 80);
  }
}

function clip(text, n = 120) {
  const t = String(text ?? "").replace(/\s+/g, " ");
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

/** The export needs the Authorization header, so fetch it and save it through a Blob link. */
async function exportTrail(missionId, button, error) {
  button.disabled = true;
  showError(error, null);
  try {
    const blob = await fetchBlob(`/missions/${missionId}/audit/export`);
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: `mission-${missionId}-audit.jsonl`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    showError(error, err, "exportTrail");
  } finally {
    button.disabled = false;
  }
}
