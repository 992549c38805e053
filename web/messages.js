// Every message the page can show a person about what went wrong or what they may not do, in one place and in
// the page's own words: what happened and what to do. No HTTP status phrases, no routes; the server's own words
// (its status and detail) are folded beneath as "Technical detail". tests/web/test_messages.py reads this.

import { h } from "./dom.js";

/** What went wrong, by kind, whatever the person was doing. */
const GENERIC = {
  unreachable: "Server unreachable. The page cannot reach the orchestrator: check that it is running " +
    "(orchestrator serve) and that the network is up, then retry.",
  signedOut: "Your API key was not accepted: the server does not know it, or it was revoked. Sign in again " +
    "with a valid key.",
  forbidden: "Your role may not do this. A key with another role may: ask the operator for one.",
  notFound: "That no longer exists, or it is not yours to see.",
  conflict: "That cannot be done in the current state. Reload and look again.",
  invalid: "The server did not accept what was sent. Check the fields and try again.",
  tooLarge: "That is larger than the server accepts.",
  server: "Something went wrong on the server. The operator can find the cause in the server log; try again later.",
  other: "Something unexpected went wrong. Try again; if it persists, the technical detail below helps the operator.",
};

/** What went wrong while doing one thing: overrides of GENERIC by kind. */
const ACTIONS = {
  signIn: {
    signedOut: "This API key was not accepted: the server does not know it, or it was revoked. Check the key, " +
      "or create one on the server: orchestrator keys create --role submitter.",
  },
  listMissions: { other: "The mission list could not be loaded." },
  loadMission: {
    notFound: "This mission does not exist, or it is not yours to see.",
    other: "The mission could not be loaded. Retry in a moment.",
  },
  listWorkspaces: { other: "The workspaces could not be listed." },
  createWorkspace: {
    conflict: "A workspace with this name already exists. Pick another name, or choose it under Existing.",
    invalid: "This workspace name cannot be used: use lowercase letters, digits, '-' and '_'.",
    other: "The workspace could not be created.",
  },
  createMission: {
    invalid: "The mission was not queued: the server did not accept its text or its workspace (see the " +
      "technical detail). Check both and send again.",
    conflict: "This mission was already sent with different content. Reload the page and send it again.",
    tooLarge: "The archive is larger than the server accepts: upload a smaller one, or create the workspace " +
      "on the server.",
    other: "The mission was not queued.",
  },
  sendMessage: {
    conflict: "The mission is over: nobody would read this message.",
    other: "The message was not sent.",
  },
  cancel: {
    conflict: "The mission has already ended; there is nothing to cancel.",
    other: "The mission could not be cancelled.",
  },
  decide: {
    conflict: "This gate changed or was already decided since the page showed it. Reload the mission and " +
      "review it again.",
    invalid: "The server did not take this decision. If you asked for changes, this server may not support " +
      "that yet: approve or reject instead.",
    other: "The decision was not recorded.",
  },
  toolResult: { notFound: "No stored result for this call.", other: "The stored result could not be loaded." },
  openArtifact: { notFound: "This file is no longer in the mission's workspace.", other: "The file could not be opened." },
  verifyAudit: { other: "The audit chain could not be verified." },
  loadGraph: { other: "The delegation graph could not be loaded." },
  loadTrail: { other: "The audit trail could not be loaded." },
  exportTrail: { other: "The audit trail could not be exported." },
  loadProcedure: { other: "The procedure could not be loaded; the steps are shown without it." },
};

/** Messages about what the person typed or chose, before anything is sent. */
export const INPUT = {
  missionText: "Write the mission first (or start from the template).",
  workspace: "Pick a workspace, or create one (the demo template works offline).",
  archive: "Choose an archive to upload, or pick an existing workspace.",
  workspaceName: "A workspace name uses lowercase letters, digits, '-' and '_'.",
  changesComment: "Say what should change: the comment is the instruction the step runs again with.",
  placeholders: "Replace the parts in angle brackets (such as <model folder>) with the workspace's own files first.",
};

/** The page shown when the server cannot be reached at sign-in. */
export const OFFLINE = {
  title: "Server unreachable",
  kept: "Your API key is kept for this session: once the server answers, Try again signs you back in.",
};

/** The one page shown for a mission the person may not see. */
export const NOT_FOUND = {
  title: "Mission not found or not yours",
  text: "There is no mission with this id that your key may see. It may have been mistyped, or it belongs to " +
    "someone else (submitters see only their own missions).",
  back: "Back to your missions",
};

/** "Hidden: Approve and Reject — your role (auditor) may not decide approvals." */
export function hiddenText(what, role, phrase) {
  return `Hidden: ${what} — your role (${role}) may not ${phrase}.`;
}

/** Every message of the catalogue, for the test that reads them all. */
export function allMessages() {
  const texts = [...Object.values(GENERIC), ...Object.values(INPUT), ...Object.values(NOT_FOUND), ...Object.values(OFFLINE),
    hiddenText("something", "auditor", "decide approvals")];
  for (const byKind of Object.values(ACTIONS)) texts.push(...Object.values(byKind));
  return texts;
}

/** The kind of failure: who must act (the network, the key, the request...). */
export function failureKind(err) {
  if (!err || err.kind === undefined) return "other";
  if (err.kind === "unreachable") return "unreachable";
  const { status } = err;
  if (status === 401) return "signedOut";
  if (status === 403) return "forbidden";
  if (status === 404) return "notFound";
  if (status === 409) return "conflict";
  if (status === 413) return "tooLarge";
  if (status === 400 || status === 422) return "invalid";
  if (status >= 500) return "server";
  return "other";
}

/** `{text, detail}` for an error met while doing `action` (a key of ACTIONS). */
export function explain(err, action) {
  const kind = failureKind(err);
  const texts = ACTIONS[action] || {};
  // The action's own words for this kind, else what it failed to do followed by the general reason.
  const text = (kind !== "other" && texts[kind]) || [texts.other, GENERIC[kind]].filter(Boolean).join(" ");
  return { text, detail: technical(err) };
}

/** The server's own words, for the folded "Technical detail". */
function technical(err) {
  if (!err) return "";
  if (err.kind === undefined) return String(err.message || err);
  return [err.status ? `HTTP ${err.status}` : "", err.title, err.detail].filter(Boolean).join(" · ");
}

/** The message as nodes: the sentence, then the technical detail folded. */
export function errorNodes(err, action) {
  const { text, detail } = explain(err, action);
  return [h("span.error-message", text),
    detail ? h("details.tech", h("summary", "Technical detail"), h("code", detail)) : null];
}

/** Put the message for `err` into `target` (an element with class error-text); empty `err` clears it. */
export function showError(target, err, action) {
  if (!err) target.replaceChildren();
  else target.replaceChildren(...errorNodes(err, action).filter(Boolean));
}
