// How names, times and statuses read on the page. Names of agents and the statuses themselves come from the
// declared procedure (procedure.js); here is only how each one is said.

import { agentIndex, agentTitle } from "./procedure.js";

/** How each step status reads beside the step. */
export const STEP_LABEL = {
  pending: "not started", running: "running", waiting: "waiting for approval", done: "done", failed: "failed",
  blocked: "blocked", skipped: "skipped", rejected: "rejected",
};

/** How each mission status reads in a pill or a sentence. */
export function missionLabel(status) {
  return { waiting_approval: "waiting for approval", completed_with_risks: "completed with risks" }[status] ||
    String(status || "").replace(/_/g, " ");
}

/** An agent's declared title ("Security Expert"); people ("api:alice", "user") keep their name. */
export function agentName(id) {
  if (!id) return "system";
  return agentTitle(id) || id;
}

/** A stable colour slot 0..5 per agent for avatars and graph nodes. */
export function agentSlot(id) {
  const i = agentIndex(id);
  return i >= 0 ? Math.min(i, 4) : 5;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds % 60)} s`;
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function money(usd) {
  if (usd === null || usd === undefined) return "";
  return `$${Number(usd).toFixed(usd < 0.01 ? 4 : 2)}`;
}

export function shortHash(sha) {
  return sha ? `${sha.slice(0, 12)}…` : "";
}

/** First line of a mission's text that says what it is for. */
export function missionTitle(mission) {
  const spec = mission.spec || {};
  if (mission.objective || spec.objective) return mission.objective || spec.objective;
  const line = (mission.text || "").split("\n").find((l) => l.trim() && !l.trim().startsWith("/agent"));
  return (line || mission.id || "mission").replace(/^\s*mission\s*:\s*/i, "");
}
