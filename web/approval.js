// An approval card: what is being approved and its key figures first, the decision (Approve, Request changes,
// Reject) always in view, the exact payload and its SHA-256 folded beneath.

import { can, hiddenLine } from "./access.js";
import { api } from "./api.js";
import { h, jsonBlock } from "./dom.js";
import { dateTime, shortHash } from "./format.js";
import { INPUT, showError } from "./messages.js";

/** How a gate's kind reads in a heading. */
export function labelGate(kind) {
  return {
    release: "Release", production_data: "Production data access", escalation: "Escalation",
    unusable_input: "An input cannot be used", failed: "A step failed", blocked: "A step is blocked",
  }[kind] || String(kind || "Gate").replace(/_/g, " ");
}

/** What a decision's record status reads as, and its tone. */
const DECISION = {
  approved: ["Approved", "approved"], rejected: ["Rejected", "rejected"],
  changes_requested: ["Changes requested", "changes"],
};

// The payload fields a person reads first, in this order, with their labels; the rest stay in the folded payload.
const FACTS = [
  ["mission", "Mission"], ["step", "Step"], ["status", "Step outcome"], ["reason", "Why"], ["plan", "Plan"],
  ["capacity", "Capacity"], ["rollout", "Rollout"], ["cost", "Cost"], ["checks", "Checks"], ["tool", "Tool"],
  ["targets", "Production data"], ["continue_to", "Goes on to"], ["manual_plan", "Manual plan"],
];

function factValue(key, value) {
  if (value === null || value === undefined || value === "") return null;
  if (key === "checks" && Array.isArray(value)) {
    return h("ul.checks", value.map((c) => h("li", { class: checkPassed(c) ? "pass" : "fail" },
      h("span.tag", { class: checkPassed(c) ? "done" : "failed" }, checkPassed(c) ? "pass" : "fail"),
      ` ${c.name || ""}`, c.detail ? h("span.hint", ` — ${c.detail}`) : null)));
  }
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ");
  if (typeof value === "object") {
    return value.verdict || value.summary || Object.entries(value).map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`).join("; ");
  }
  return String(value);
}

/** A check passed: `passed: true` or `status: "pass"`. */
export function checkPassed(check) {
  return check.passed === true || /^(pass|ok|passed)$/i.test(String(check.status ?? check.result ?? ""));
}

/** The key facts of a payload (those the question does not already say), as a definition list, plus what it ships. */
function summary(payload, question) {
  const facts = FACTS.map(([key, label]) => [label, factValue(key, (payload || {})[key])])
    .filter(([, v]) => v !== null && !(typeof v === "string" && v.length > 20 && (question || "").includes(v)));
  const shipped = Array.isArray(payload?.artifacts) ? payload.artifacts : [];
  const kinds = [...new Set(shipped.map((a) => a.kind).filter(Boolean))];
  return h("div.approval-summary",
    facts.length ? h("dl.facts", facts.map(([label, value]) => [h("dt", label), h("dd", value)])) : null,
    shipped.length ? h("p.shipped", h("strong", `${shipped.length} file${shipped.length === 1 ? "" : "s"} shipped`),
      kinds.length ? ` (${kinds.join(", ")}): ` : ": ",
      shipped.slice(0, 6).map((a, i) => [i ? ", " : "", h("code", a.path)]), shipped.length > 6 ? ", …" : "") : null);
}

/**
 * The card for one `approval.requested` event payload `p`; `stamp` is its time/step node. `onDecided(answer)`
 * is called with the decided approval after a decision here.
 */
export function approvalCard(p, { stamp, onDecided }) {
  const card = h("section.entry.approval.pending", { "aria-label": `Approval needed: ${labelGate(p.kind)}`,
    dataset: { approvalId: p.approval_id } },
  h("h3", `Approval needed: ${labelGate(p.kind)}`, stamp),
  h("p.question", p.question || "Approve this action?"),
  summary(p.payload, p.question));
  const form = can("approval.decide")
    ? decisionForm(p, (answer) => {
      markDecided(card, answer);
      onDecided?.(answer);
    })
    : h("div.decision-form", hiddenLine("approval.decide", "Approve, Request changes and Reject"));
  card.append(form, h("p.decision", { hidden: true, role: "status" }),
    h("details.payload", h("summary", "Exact payload and its SHA-256"),
      jsonBlock(p.payload, "Payload to approve"),
      h("p.hash", "SHA-256 ", h("code", { title: p.payload_sha256 }, p.payload_sha256 || ""))));
  return card;
}

function decisionForm(p, onDecided) {
  const comment = h("textarea", { rows: 2, "aria-label": "Comment on your decision",
    placeholder: "Comment (optional; required to request changes: it is the instruction the step runs again with)" });
  const error = h("p.error-text", { role: "alert" });
  const buttons = h("div.actions",
    h("button.btn.primary.approve", { type: "button", onclick: () => decide("approve") }, "Approve"),
    h("button.btn.changes", { type: "button", onclick: () => decide("request_changes") }, "Request changes"),
    h("button.btn.danger.reject", { type: "button", onclick: () => decide("reject") }, "Reject"));
  async function decide(decision) {
    const text = comment.value.trim();
    showError(error, null);
    if (decision === "request_changes" && !text) {
      error.textContent = INPUT.changesComment;
      comment.focus();
      return;
    }
    for (const b of buttons.querySelectorAll("button")) b.disabled = true;
    try {
      const answer = await api.decide(p.approval_id, decision, text, p.payload_sha256);
      onDecided(answer && answer.status ? answer
        : { status: { approve: "approved", reject: "rejected" }[decision] || "changes_requested", comment: text });
    } catch (err) {
      showError(error, err, "decide");
      for (const b of buttons.querySelectorAll("button")) b.disabled = false;
    }
  }
  return h("div.decision-form", comment, buttons, error);
}

/** Show who decided a gate and how; called from the event, the decision answer and the mission's records. */
export function markDecided(card, approval) {
  if (!card || !approval || !approval.status || approval.status === "pending") return;
  const status = { approve: "approved", reject: "rejected", request_changes: "changes_requested" }[approval.status] ||
    approval.status;
  const [label, tone] = DECISION[status] || [status, "rejected"];
  card.classList.remove("pending", "approved", "rejected", "changes");
  card.classList.add(tone);
  card.querySelector(".decision-form").hidden = true;
  const line = card.querySelector(".decision");
  const by = approval.decided_by || line.dataset.by || "";
  line.dataset.by = by;
  line.hidden = false;
  line.replaceChildren(h("strong", label), by ? ` by ${by}` : "",
    approval.decided_at ? ` at ${dateTime(approval.decided_at)}` : "",
    approval.comment ? h("span", ` — “${approval.comment}”`) : "",
    status === "changes_requested" ? h("span.hint", " The step runs again with this comment as its instruction.") : "");
  card.querySelector("details.payload summary").textContent =
    `Exact payload and its SHA-256 (${shortHash(card.querySelector(".hash code")?.title || "")})`;
}
