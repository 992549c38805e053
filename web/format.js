// How names, times and statuses read on the page.

export const STEPS = ["align", "design", "implement", "evaluate", "package", "release"];
export const FINISHED = new Set(["completed", "failed", "rejected", "cancelled"]);

const AGENT_NAMES = {
  "ml-engineer": "ML Engineer",
  "data-scientist": "Data Scientist",
  "devops-engineer": "DevOps Engineer",
  "security-expert": "Security Expert",
  "backend-developer": "Backend Developer",
};

/** "security-expert" -> "Security Expert"; people ("api:alice", "user") keep their name. */
export function agentName(id) {
  if (!id) return "system";
  return AGENT_NAMES[id] || id;
}

export function isAgent(id) {
  return id in AGENT_NAMES;
}

/** A stable colour slot 0..5 per agent for avatars and graph nodes. */
export function agentSlot(id) {
  const order = Object.keys(AGENT_NAMES);
  const i = order.indexOf(id);
  return i >= 0 ? i : 5;
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
