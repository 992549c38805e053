// The procedure every mission follows, as the server declares it (GET /procedure): steps, agents, gates, edges
// and statuses. Read once at sign-in; the page keeps no copy of its own.

import { api } from "./api.js";

let declared = null;
const titles = new Map(); // agent id -> "Data Scientist"
let agentOrder = [];

/** The mission statuses that end a mission (filled at sign-in). */
export const FINISHED = new Set();

export async function loadProcedure() {
  const answer = await api.procedure();
  declared = answer;
  titles.clear();
  for (const agent of answer.agents) titles.set(agent.id, agent.title);
  agentOrder = answer.agents.map((a) => a.id);
  FINISHED.clear();
  for (const status of answer.terminal_statuses) FINISHED.add(status);
  return answer;
}

/** The declaration, or null before sign-in. */
export function procedure() {
  return declared;
}

/** The agent's title ("Data Scientist"), or null for someone who is not an agent (a person, "user"). */
export function agentTitle(id) {
  return titles.get(id) || null;
}

/** The agent's place in the declared list (lead first), or -1. */
export function agentIndex(id) {
  return agentOrder.indexOf(id);
}

/** The declared step `name` ({name, title, lead, handoffs, next, listed}), or null. */
export function stepDecl(name) {
  return declared ? declared.steps.find((s) => s.name === name) || null : null;
}
