// The delegation graph as inline SVG: the lead in the centre, the sub-agents around it,
// one arrow per (from, to) pair labelled with its handoff count and coloured by status.

import { s } from "./dom.js";
import { agentName, agentSlot } from "./format.js";

// Landscape for a laptop; on a narrow screen a taller canvas with two-line labels keeps text readable.
const WIDE = { W: 640, H: 400, NW: 168, NH: 44, start: -Math.PI * 3 / 4, twoLines: false };
const NARROW = { W: 380, H: 470, NW: 112, NH: 50, start: -Math.PI / 2, twoLines: true };

/**
 * Draw `data` ({nodes, edges}) into `container`; `onSelect(pair)` gets {from, to, edges} when an edge is
 * clicked or activated with Enter/Space.
 */
export function drawGraph(container, data, onSelect) {
  const edges = data.edges || [];
  const pairs = groupEdges(edges);
  const dims = container.clientWidth && container.clientWidth < 520 ? NARROW : WIDE;
  const nodes = layout(nodeList(data, edges), edges, dims);
  const { W, H, NW, NH } = dims;

  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "graph", role: "group",
    "aria-label": `Delegation graph: ${nodes.length} agents, ${edges.length} handoffs` },
  s("defs", {}, ["ok", "bad", "run"].map((tone) => s("marker", { id: `arrow-${tone}`, viewBox: "0 0 10 10", refX: 9,
    refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  s("path", { d: "M0,0 L10,5 L0,10 z", class: `arrowhead ${tone}` })))));

  const where = new Map(nodes.map((n) => [n.id, n]));
  const edgeLayer = s("g", { class: "edges" });
  const nodeLayer = s("g", { class: "nodes" });
  for (const pair of pairs.values()) {
    const a = where.get(pair.from);
    const b = where.get(pair.to);
    if (!a || !b) continue;
    edgeLayer.append(edgeShape(pair, a, b, pairs.has(`${pair.to}\u0000${pair.from}`), dims, onSelect));
  }
  for (const n of nodes) {
    nodeLayer.append(s("g", { class: `node a${agentSlot(n.id)}${n.lead ? " lead" : ""}`, "data-agent": n.id,
      transform: `translate(${n.x - NW / 2},${n.y - NH / 2})` },
    s("rect", { width: NW, height: NH, rx: 10 }),
    nodeLabel(n.label, dims)));
  }
  svg.append(edgeLayer, nodeLayer);
  container.replaceChildren(svg);
  svg.pairs = pairs; // "from\u0000to" -> {from, to, edges}, for restoring a selection
  return svg;
}

/** Highlight the arrow from `from` to `to` (and only it); returns its pair of handoffs, or null. */
export function selectEdge(svg, from, to) {
  let found = null;
  for (const edge of svg.querySelectorAll("g.edge")) {
    const on = edge.dataset.from === from && edge.dataset.to === to;
    edge.classList.toggle("selected", on);
    edge.setAttribute("aria-pressed", String(on));
    if (on) found = edge;
  }
  return found;
}

function nodeList(data, edges) {
  const nodes = (data.nodes || []).map((n) => ({ id: n.id, label: n.label || agentName(n.id), kind: n.kind }));
  const known = new Set(nodes.map((n) => n.id));
  for (const e of edges) {
    for (const id of [e.from, e.to]) {
      if (id && !known.has(id)) {
        known.add(id);
        nodes.push({ id, label: agentName(id) });
      }
    }
  }
  return nodes;
}

function nodeLabel(label, { NW, NH, twoLines }) {
  const words = label.split(" ");
  if (!twoLines || words.length < 2) return s("text", { x: NW / 2, y: NH / 2 + 5, "text-anchor": "middle" }, label);
  const cut = Math.ceil(words.length / 2);
  return s("text", { x: NW / 2, y: NH / 2 - 3, "text-anchor": "middle" },
    s("tspan", { x: NW / 2 }, words.slice(0, cut).join(" ")),
    s("tspan", { x: NW / 2, dy: 16 }, words.slice(cut).join(" ")));
}

/** The lead (kind "lead", else the agent that hands off most) in the centre; the others on an ellipse. */
function layout(nodes, edges, { W, H, NW, NH, start }) {
  if (!nodes.length) return [];
  const out = new Map();
  for (const e of edges) out.set(e.from, (out.get(e.from) || 0) + 1);
  let lead = nodes.find((n) => n.kind === "lead");
  if (!lead) lead = [...nodes].sort((x, y) => (out.get(y.id) || 0) - (out.get(x.id) || 0))[0];
  const others = nodes.filter((n) => n !== lead);
  lead.lead = true;
  lead.x = W / 2;
  lead.y = H / 2;
  const rx = W / 2 - NW / 2 - 8;
  const ry = H / 2 - NH / 2 - 8;
  others.forEach((n, i) => {
    // Wide: start top-left so four agents sit in the corners; narrow: top, right, bottom, left.
    const angle = start + (2 * Math.PI * i) / others.length;
    n.x = W / 2 + rx * Math.cos(angle);
    n.y = H / 2 + ry * Math.sin(angle);
  });
  return nodes;
}

function groupEdges(edges) {
  const pairs = new Map();
  for (const e of edges) {
    const key = `${e.from}\u0000${e.to}`;
    if (!pairs.has(key)) pairs.set(key, { from: e.from, to: e.to, edges: [] });
    pairs.get(key).edges.push(e);
  }
  return pairs;
}

export function pairTone(pair) {
  const statuses = pair.edges.map((e) => e.status);
  if (statuses.some((st) => st === "failed" || st === "error" || st === "blocked")) return "bad";
  if (statuses.some((st) => st === "running" || st === "pending")) return "run";
  return "ok";
}

function edgeShape(pair, a, b, twoWay, { NW, NH }, onSelect) {
  // Stop the arrow at the node's border, and bend two-way pairs apart so both arrows stay visible.
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.hypot(dx, dy) || 1;
  const ux = dx / len;
  const uy = dy / len;
  const cut = Math.min(Math.abs(NW / 2 / (ux || 1e-9)), Math.abs(NH / 2 / (uy || 1e-9))) + 4;
  const x1 = a.x + ux * cut;
  const y1 = a.y + uy * cut;
  const x2 = b.x - ux * cut;
  const y2 = b.y - uy * cut;
  const bend = twoWay ? 26 : 0;
  const cx = (x1 + x2) / 2 - uy * bend;
  const cy = (y1 + y2) / 2 + ux * bend;
  const d = `M${x1},${y1} Q${cx},${cy} ${x2},${y2}`;
  const tone = pairTone(pair);
  const count = pair.edges.length;
  const statuses = [...new Set(pair.edges.map((e) => e.status))].join(", ");
  const label = `${agentName(pair.from)} → ${agentName(pair.to)}: ${count} handoff${count === 1 ? "" : "s"}, ${statuses}`;
  const mx = (x1 + 2 * cx + x2) / 4;
  const my = (y1 + 2 * cy + y2) / 4;
  const activate = (event) => {
    selectEdge(event.currentTarget.ownerSVGElement, pair.from, pair.to);
    onSelect(pair);
  };
  return s("g", { class: `edge ${tone}`, tabindex: 0, role: "button", "aria-label": label, "data-from": pair.from,
    "data-to": pair.to, "data-count": count, "aria-pressed": "false",
    onclick: activate,
    onkeydown: (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        activate(e);
      }
    } },
  s("title", {}, label),
  s("path", { d, class: "hit" }),
  s("path", { d, class: "line", "marker-end": `url(#arrow-${tone})` }),
  s("g", { class: "count", transform: `translate(${mx},${my})` },
    s("circle", { r: 13 }),
    s("text", { y: 4, "text-anchor": "middle" }, `×${count}`)));
}
