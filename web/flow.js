// A compact drawing of the declared procedure for one mission, as LangGraph Studio shows a run: the chain of
// steps and gates in order, the current one highlighted, each step coloured by its recorded status, and below,
// the sub-agents with an arrow for every delegation that happened (faint ones for those the step may make).

import { s } from "./dom.js";
import { STEP_LABEL, agentName, agentSlot } from "./format.js";
import { procedure } from "./procedure.js";

const W = 760;
const H = 124;
const NODE = { w: 84, h: 28 };
const CHAIN_Y = 22;
const AGENT_Y = 92;

/** The nodes from the first step to the end, following each step's `next` (gates included, detours left out). */
function chain(decl) {
  const listed = decl.steps.filter((st) => st.listed);
  const gates = new Set(decl.gates.map((g) => g.name));
  const out = [];
  let name = listed[0]?.name;
  const seen = new Set();
  while (name && name !== "end" && !seen.has(name)) {
    seen.add(name);
    const step = decl.steps.find((st) => st.name === name);
    if (step) {
      out.push({ id: name, title: step.title, gate: false });
      name = step.next;
    } else if (gates.has(name)) {
      out.push({ id: name, title: "Approval", gate: true });
      // A gate's way on when approved: the drawn edge labelled "approved" from it.
      name = decl.edges.find((e) => e.from === name && e.label.split(", ").includes("approved"))?.to;
    } else {
      break;
    }
  }
  return out;
}

/** Which node the mission is at: the gate when one is pending, else the current step. */
function currentNode(mission) {
  const pending = (mission.approvals || []).find((a) => a.status === "pending");
  if (pending) {
    const gate = procedure().gates.find((g) => g.name === pending.kind || g.name === `${pending.kind}_gate`);
    if (gate) return gate.name;
  }
  return mission.current_step;
}

/** Draw the procedure for `mission` into `box`. */
export function drawProcedure(box, mission) {
  const decl = procedure();
  if (!decl) return;
  const nodes = chain(decl);
  const steps = new Map((mission.steps || []).map((st) => [st.name, st]));
  const agents = decl.agents.filter((a) => a.kind === "sub");
  const at = currentNode(mission);
  const gap = (W - 20 - NODE.w) / Math.max(nodes.length - 1, 1);
  const place = new Map(nodes.map((n, i) => [n.id, { x: 10 + NODE.w / 2 + i * gap, y: CHAIN_Y }]));
  const agentGap = W / agents.length;
  agents.forEach((a, i) => place.set(a.id, { x: agentGap * (i + 0.5), y: AGENT_Y }));

  // Delegations that happened, by step and sub-agent, with the worst status among them.
  const taken = new Map();
  for (const d of mission.delegations || []) {
    const key = `${d.step}\u0000${d.to_agent}`;
    const entry = taken.get(key) || { step: d.step, to: d.to_agent, count: 0, statuses: new Set() };
    entry.count += 1;
    entry.statuses.add(d.status);
    taken.set(key, entry);
  }

  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "flow", role: "img",
    "aria-label": `Procedure: ${nodes.map((n) => n.title).join(", ")}; now at ${at || "the start"}` },
  s("defs", {}, s("marker", { id: "flow-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6,
    markerHeight: 6, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "flow-head" }))));

  // The chain's own arrows.
  const lines = s("g", { class: "flow-edges" });
  nodes.slice(1).forEach((n, i) => {
    const a = place.get(nodes[i].id);
    const b = place.get(n.id);
    lines.append(s("line", { x1: a.x + NODE.w / 2, y1: a.y, x2: b.x - NODE.w / 2 - 2, y2: b.y, class: "flow-next",
      "marker-end": "url(#flow-arrow)" }));
  });
  // Handoffs each step may make (faint), and those made (bold, counted).
  for (const step of decl.steps) {
    const from = place.get(step.name);
    if (!from) continue;
    for (const agent of step.handoffs) {
      const to = place.get(agent);
      const made = taken.get(`${step.name}\u0000${agent}`);
      if (!to) continue;
      const tone = !made ? "declared" : [...made.statuses].some((st) => /fail|error|block/.test(st)) ? "bad"
        : [...made.statuses].some((st) => /running|pending/.test(st)) ? "run" : "ok";
      const line = s("line", { x1: from.x, y1: from.y + NODE.h / 2, x2: to.x, y2: to.y - 11,
        class: `flow-handoff ${tone}`, "data-step": step.name, "data-agent": agent });
      if (made) line.append(s("title", {}, `${step.title} → ${agentName(agent)}: ${made.count} handoff` +
        `${made.count === 1 ? "" : "s"} (${[...made.statuses].join(", ")})`));
      lines.append(line);
    }
  }
  svg.append(lines);

  const layer = s("g", { class: "flow-nodes" });
  for (const n of nodes) {
    const { x, y } = place.get(n.id);
    const status = n.gate ? gateStatus(mission, n.id, at) : steps.get(n.id)?.status || "pending";
    const shape = n.gate
      ? s("polygon", { points: `${x},${y - 14} ${x + 22},${y} ${x},${y + 14} ${x - 22},${y}` })
      : s("rect", { x: x - NODE.w / 2, y: y - NODE.h / 2, width: NODE.w, height: NODE.h, rx: 8 });
    layer.append(s("g", { class: `flow-node ${status}${n.id === at ? " current" : ""}${n.gate ? " gate" : ""}`,
      "data-node": n.id, "data-status": status },
    s("title", {}, `${n.title}: ${STEP_LABEL[status] || status}`),
    shape,
    s("text", { x, y: n.gate ? y + 26 : y + 4, "text-anchor": "middle", class: n.gate ? "gate-label" : null }, n.title)));
  }
  for (const a of agents) {
    const { x, y } = place.get(a.id);
    const used = [...taken.values()].some((t) => t.to === a.id);
    layer.append(s("g", { class: `flow-agent a${agentSlot(a.id)}${used ? " used" : ""}`, "data-agent": a.id },
      s("circle", { cx: x, cy: y, r: 10 }),
      s("text", { x, y: y + 24, "text-anchor": "middle" }, a.title)));
  }
  svg.append(layer);
  box.replaceChildren(svg);
}

/** A gate reads as waiting while its approval is pending, done once approved, rejected once rejected. */
function gateStatus(mission, gate, at) {
  const approvals = (mission.approvals || []).filter((a) => a.kind === gate || `${a.kind}_gate` === gate);
  const last = approvals[approvals.length - 1];
  if (!last) return at === gate ? "waiting" : "pending";
  return { pending: "waiting", approved: "done", rejected: "rejected", changes_requested: "running" }[last.status] ||
    last.status;
}
