// The conversation: one entry per recorded event, attributed to its agent and step, with approval cards.

import { api, items } from "./api.js";
import { approvalCard, labelGate, markDecided } from "./approval.js";
import { errorNodes } from "./messages.js";
import { h, jsonBlock } from "./dom.js";
import { STEP_LABEL, agentName, agentSlot, dateTime, duration, missionLabel, time } from "./format.js";

/** Renders a mission's events into `stream`; `openArtifact(path)` opens a file with the key. */
export class Conversation {
  constructor(stream, { missionId, openArtifact, onDecided }) {
    this.stream = stream;
    this.missionId = missionId;
    this.openArtifact = openArtifact;
    this.onDecided = onDecided;
    this.seen = new Set();
    this.cards = new Map(); // approval id -> card element
    this.toolCalls = null; // GET .../tool-calls, fetched once when a full result is asked for
  }

  add(event) {
    if (event.seq && this.seen.has(event.seq)) return; // a replay after reconnecting
    if (event.seq) this.seen.add(event.seq);
    const node = this.render(event);
    if (!node) return;
    node.dataset.seq = event.seq || "";
    node.dataset.kind = event.kind;
    if (event.agent) node.dataset.agent = event.agent;
    const atBottom = this.stream.scrollHeight - this.stream.scrollTop - this.stream.clientHeight < 80;
    this.stream.insertBefore(node, this.summary && this.summary.isConnected ? this.summary : null);
    if (atBottom) this.stream.scrollTop = this.stream.scrollHeight;
  }

  /** The end-of-mission summary, kept as the conversation's last entry (`null` removes it). */
  setSummary(card) {
    const atBottom = this.stream.scrollHeight - this.stream.scrollTop - this.stream.clientHeight < 80;
    if (this.summary && this.summary.isConnected) this.summary.replaceWith(...(card ? [card] : []));
    else if (card) this.stream.append(card);
    this.summary = card;
    if (atBottom && card) this.stream.scrollTop = this.stream.scrollHeight;
  }

  render(event) {
    const p = event.payload || {};
    switch (event.kind) {
      case "message":
        return this.bubble(event, p.text || "", p.tool_calls);
      case "user.message":
        return h("div.entry.user", h("div.bubble.user-bubble",
          h("div.who", event.agent && event.agent !== "user" ? event.agent : "You", this.stamp(event)),
          h("div.text", p.text || "")));
      case "mission.queued":
        return this.note(event, "Mission queued");
      case "mission.status": {
        const why = p.reason || p.error;
        return this.note(event, `Mission ${missionLabel(p.status)}${why ? `: ${why}` : ""}`, TONE[p.status] || "");
      }
      case "step.started":
        return h("div.entry.divider", h("span", `Step ${event.step || p.step || ""} started`,
          p.round > 1 ? ` (round ${p.round})` : ""), this.stamp(event));
      case "step.finished":
      case "step.settled":
        return h("div.entry.divider", { class: TONE[p.status] || "done" },
          h("span", `Step ${event.step || ""} ${STEP_LABEL[p.status] || p.status || "finished"}`,
            p.duration_s ? ` in ${duration(p.duration_s)}` : ""),
          p.reason ? h("span.summary", `Why: ${p.reason}`) : null,
          p.summary ? h("span.summary", p.summary) : null, this.stamp(event));
      case "handoff.started":
        return this.handoff(event, p, false);
      case "handoff.finished":
        return this.handoff(event, p, true);
      case "tool.called":
        return this.tool(event, p);
      case "approval.requested":
        return this.approvalCard(event, p);
      case "approval.decided":
        this.markDecided(p.approval_id, { status: p.decision, decided_by: event.agent, comment: p.comment,
          decided_at: event.ts });
        return this.note(event, `${labelGate(p.kind)} ${DECIDED[pastTense(p.decision)] || p.decision} by ${event.agent || "someone"}` +
          (p.comment ? ` — “${p.comment}”` : ""), TONE[pastTense(p.decision)] || "");
      case "artifact.written":
        return h("div.entry.note", this.who(event), " wrote ",
          h("a", { href: "#", onclick: (e) => { e.preventDefault(); this.openArtifact(p.path); } }, p.path),
          p.kind ? h("span.tag", p.kind) : null, this.stamp(event));
      case "task.created":
      case "task.updated":
        return this.note(event, `${agentName(event.agent)} ${event.kind === "task.created" ? "created" : "updated"} task: ` +
          `${p.title || p.task?.title || ""}${p.status ? ` (${p.status})` : ""}`);
      case "risk.accepted":
        return this.note(event, `Risk accepted by ${event.agent}: ${p.reason || p.comment || JSON.stringify(p)}`, "warn");
      default:
        return this.note(event, `${event.kind}${event.agent ? ` · ${agentName(event.agent)}` : ""}`);
    }
  }

  stamp(event) {
    const bits = [event.step ? h("span.tag.step-tag", event.step) : null];
    if (event.ts) bits.push(h("time", { datetime: event.ts, title: dateTime(event.ts) }, time(event.ts)));
    return h("span.stamp", bits);
  }

  who(event) {
    return h("strong", { class: `agent-name a${agentSlot(event.agent)}` }, agentName(event.agent));
  }

  note(event, text, tone = "") {
    return h("div.entry.note", { class: tone }, h("span", text), this.stamp(event));
  }

  bubble(event, text, toolCalls) {
    const calls = Array.isArray(toolCalls) && toolCalls.length
      ? h("div.calls", "Calls: ", toolCalls.map((c) => h("code", c.name || c.tool || String(c))))
      : null;
    return h("div.entry.agent", { class: `a${agentSlot(event.agent)}` },
      h("span.avatar", { "aria-hidden": "true" }, initials(event.agent)),
      h("div.bubble",
        h("div.who", this.who(event), this.stamp(event)),
        h("div.text", text), calls));
  }

  handoff(event, p, finished) {
    const from = agentName(event.agent);
    const to = agentName(p.to);
    const brief = p.brief || {};
    // handoff.started is recorded by the delegating agent, handoff.finished by the one who did the work.
    const title = finished
      ? `${from} → ${to}: result ${p.status || "returned"}${p.duration_ms ? ` in ${duration(p.duration_ms / 1000)}` : ""}`
      : `${from} → ${to}: ${brief.task || p.reason || "handoff"}`;
    const body = finished ? resultView(p.result) : briefView(brief, p.reason);
    return h("details.entry.handoff", { class: finished ? "back" : "out" },
      h("summary", h("span.arrow", { "aria-hidden": "true" }, finished ? "↩" : "→"), h("span.title", title),
        this.stamp(event)),
      body);
  }

  tool(event, p) {
    const status = p.status || "ok";
    const result = h("div.tool-result");
    if (p.result_preview !== undefined && p.result_preview !== null) {
      result.append(h("div.sub", "Result"), h("pre.output", String(p.result_preview)));
    }
    if (p.call_id) {
      result.append(h("button.btn.small", { type: "button", onclick: (e) => this.fullResult(e.currentTarget, p.call_id) },
        "Show stored result"));
    }
    return h("details.entry.tool", { class: status === "ok" || status === "success" ? "" : "bad" },
      h("summary",
        h("span.tool-icon", { "aria-hidden": "true" }, "⚙"),
        h("span.title", this.who(event), " called ", h("code", p.tool || "tool")),
        h("span.tag", { class: status === "ok" || status === "success" ? "" : "bad" },
          p.decision && !/^allow/.test(p.decision) ? `${status} · ${p.decision}` : status),
        p.duration_ms !== undefined ? h("span.tag", duration(p.duration_ms / 1000)) : null,
        p.attempt > 1 ? h("span.tag", { title: "run again after its worker died mid-call; its effects were made once" },
          `attempt ${p.attempt}`) : null,
        this.stamp(event)),
      h("div.sub", "Arguments"), jsonBlock(p.args ?? {}, `Arguments of ${p.tool}`),
      result);
  }

  async fullResult(button, callId) {
    button.disabled = true;
    try {
      if (!this.toolCalls) this.toolCalls = items(await api.toolCalls(this.missionId));
      const call = this.toolCalls.find((c) => c.call_id === callId);
      button.replaceWith(call ? h("pre.output", typeof call.result === "string" ? call.result : JSON.stringify(call.result, null, 2))
        : h("p.hint", "No stored result for this call."));
    } catch (err) {
      button.replaceWith(h("p.error-text", errorNodes(err, "toolResult")));
    }
  }

  approvalCard(event, p) {
    const card = approvalCard(p, { stamp: this.stamp(event), onDecided: () => this.onDecided?.() });
    this.cards.set(String(p.approval_id), card);
    return card;
  }

  markDecided(id, approval) {
    markDecided(this.cards.get(String(id)), approval);
  }

  /** The mission's approval records are the truth about who decided what. */
  syncApprovals(approvals) {
    for (const a of approvals || []) this.markDecided(a.id, a);
  }

  pendingCards() {
    return [...this.stream.querySelectorAll(".approval.pending")];
  }
}

function briefView(brief, reason) {
  return h("div.detail",
    reason ? h("p", h("strong", "Reason: "), reason) : null,
    brief.task ? h("p", h("strong", "Task: "), brief.task) : null,
    brief.context ? h("p", h("strong", "Context: "), typeof brief.context === "string" ? brief.context : JSON.stringify(brief.context)) : null,
    brief.expected_output ? h("p", h("strong", "Expected output: "), brief.expected_output) : null);
}

export function resultView(result) {
  if (!result) return h("div.detail", h("p.hint", "No result recorded."));
  const findings = result.findings || [];
  const artifacts = result.artifacts || [];
  return h("div.detail",
    result.summary ? h("p", h("strong", "Summary: "), result.summary) : null,
    result.status ? h("p", h("strong", "Status: "), result.status) : null,
    findings.length ? h("div", h("strong", "Findings"),
      h("ul", findings.map((f) => h("li", typeof f === "string" ? f : JSON.stringify(f))))) : null,
    artifacts.length ? h("div", h("strong", "Artifacts"),
      h("ul", artifacts.map((a) => h("li", h("code", typeof a === "string" ? a : a.path || JSON.stringify(a)))))) : null);
}

/** How an entry about a status is toned: good, bad, or asking for attention. */
const TONE = {
  completed: "ok", done: "ok", approved: "ok", failed: "bad", blocked: "bad", rejected: "bad", cancelled: "bad",
  completed_with_risks: "warn", waiting: "warn", changes_requested: "warn",
};

function initials(agent) {
  const name = agentName(agent);
  return name.split(/[\s-]+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
}


const DECIDED = { approved: "approved", rejected: "rejected", changes_requested: "sent back: changes requested" };

function pastTense(decision) {
  return { approve: "approved", reject: "rejected", request_changes: "changes_requested" }[decision] || decision;
}
