// The service's HTTP API as the page uses it: the key in sessionStorage, JSON calls, the SSE event stream.
// Everything goes through /api/v1 with the Authorization header; the page has no other way in.

const BASE = "/api/v1";
const KEY_NAME = "orchestrator.apiKey";

/**
 * An API failure, sorted by who must act: the key ("auth"), the network ("unreachable") or the request ("http").
 * `title`, `detail` and `status` are the server's own words; messages.js says it in the page's words.
 */
export class ApiError extends Error {
  constructor(kind, title, detail, status = 0) {
    super(detail ? `${title}: ${detail}` : title);
    this.kind = kind;
    this.title = title;
    this.detail = detail || "";
    this.status = status;
  }
}

export function getKey() {
  return sessionStorage.getItem(KEY_NAME) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_NAME, key);
  else sessionStorage.removeItem(KEY_NAME);
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${getKey()}`, ...extra };
}

async function problem(response) {
  // Errors are application/problem+json {title, detail, status}; FastAPI's own errors say {detail}.
  let title = response.statusText || `HTTP ${response.status}`;
  let detail = "";
  try {
    const body = await response.json();
    title = body.title || title;
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? "");
  } catch {
    /* not JSON: keep the status text */
  }
  const kind = response.status === 401 || response.status === 403 ? "auth" : "http";
  return new ApiError(kind, title, detail, response.status);
}

/** fetch() that turns a network failure into ApiError("unreachable"). */
async function send(path, init = {}) {
  let response;
  try {
    response = await fetch(path.startsWith("/") ? path : `${BASE}/${path}`, init);
  } catch (err) {
    throw new ApiError("unreachable", `no answer from ${location.origin}`, err.message);
  }
  if (!response.ok) throw await problem(response);
  return response;
}

export async function request(method, path, body) {
  const init = { method, headers: headers() };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await send(`${BASE}${path}`, init);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const api = {
  me: () => request("GET", "/me"),
  procedure: () => request("GET", "/procedure"),
  missions: (params = {}) => {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
    return request("GET", `/missions${query ? `?${query}` : ""}`);
  },
  mission: (id) => request("GET", `/missions/${id}`),
  createMission: (text, workspace) => request("POST", "/missions", { text, workspace }),
  uploadMission: (text, file) => {
    const form = new FormData();
    form.append("text", text);
    form.append("archive", file, file.name);
    return request("POST", "/missions/upload", form);
  },
  say: (id, text) => request("POST", `/missions/${id}/messages`, { text }),
  cancel: (id) => request("POST", `/missions/${id}/cancel`),
  decide: (approvalId, decision, comment, payloadSha256) =>
    request("POST", `/approvals/${approvalId}/decision`, { decision, comment, payload_sha256: payloadSha256 }),
  delegations: (id) => request("GET", `/missions/${id}/delegations`),
  audit: (id) => request("GET", `/missions/${id}/audit`),
  verify: (id) => request("GET", `/missions/${id}/audit/verify`),
  toolCalls: (id) => request("GET", `/missions/${id}/tool-calls`),
  workspaces: () => request("GET", "/workspaces"),
  createWorkspace: (name, template) => request("POST", "/workspaces", { name, template }),
};

/** Items of a list answer, whether the server sends a bare list or {items: [...]}. */
export function items(answer, key = "items") {
  if (Array.isArray(answer)) return answer;
  return (answer && (answer[key] || answer.items || answer.events)) || [];
}

/** Fetch a file with the key and hand back a Blob (artifacts, the audit export). */
export async function fetchBlob(path) {
  const response = await send(`${BASE}${path}`, { headers: headers() });
  return response.blob();
}

export function artifactPath(missionId, path) {
  return `/missions/${missionId}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * Follow a mission's Server-Sent Events with fetch() (EventSource cannot send the Authorization header).
 * Calls onEvent({seq, kind, agent, step, payload, ...}) per event and onState("live"|"reconnecting"|"ended"|
 * error) as the connection changes; reconnects with Last-Event-ID after a drop. Returns a stop() function.
 */
export function streamEvents(missionId, { onEvent, onState, isFinished }) {
  const controller = new AbortController();
  let lastId = 0;
  let stopped = false;
  let delay = 500;

  async function connect() {
    while (!stopped) {
      try {
        const h = headers({ Accept: "text/event-stream" });
        if (lastId) h["Last-Event-ID"] = String(lastId);
        const response = await send(`${BASE}/missions/${missionId}/events`, { headers: h, signal: controller.signal });
        onState("live");
        delay = 500;
        await readStream(response.body, (event) => {
          if (event.seq) lastId = Math.max(lastId, event.seq);
          onEvent(event);
        });
        // The server closes the stream when the mission ends; otherwise the connection dropped.
        if (isFinished()) {
          onState("ended");
          return;
        }
      } catch (err) {
        if (stopped || err.name === "AbortError") return;
        if (err.kind === "auth" || (err.kind === "http" && err.status === 404)) {
          onState(err);
          return;
        }
        onState(err.kind === "unreachable" ? err : "reconnecting");
      }
      if (stopped) return;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 8000);
    }
  }

  connect();
  return () => {
    stopped = true;
    controller.abort();
  };
}

async function readStream(body, emit) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = parseBlock(block);
      if (event) emit(event);
    }
  }
}

function parseBlock(block) {
  let id = null;
  let kind = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = value;
    else if (field === "event") kind = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  let event;
  try {
    event = JSON.parse(data.join("\n"));
  } catch {
    return null;
  }
  if (typeof event !== "object" || event === null) return null;
  event.seq = event.seq ?? (id ? Number(id) : 0);
  event.kind = event.kind || kind || "message";
  event.agent = event.agent || event.actor || "";
  event.payload = event.payload || {};
  return event;
}
