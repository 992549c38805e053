// Who is signed in and what their role lets them do: the page shows only that, with a line where it hides
// something. The permissions and the phrases come from GET /api/v1/me (the server's role table).

import { h } from "./dom.js";
import { hiddenText } from "./messages.js";

let caller = null;

export function setCaller(me) {
  caller = me;
  document.body.dataset.role = me ? me.role : "";
}

export function currentCaller() {
  return caller;
}

/** Whether the signed-in key's role grants `permission` (e.g. "approval.decide"). */
export function can(permission) {
  return Boolean(caller && (caller.permissions || []).includes(permission));
}

/** The line shown in place of controls the role may not use: what is hidden and why. */
export function hiddenLine(permission, what) {
  const phrase = (caller && caller.denied && caller.denied[permission]) || permission;
  return h("p.hidden-line", { dataset: { permission } }, hiddenText(what, caller ? caller.role : "", phrase));
}

/** Show `el` when allowed, else hide it and put one hidden-line right after `after` (default: `el`). */
export function gate(el, permission, what, { after = el } = {}) {
  const allowed = can(permission);
  el.hidden = !allowed;
  const next = after.nextElementSibling;
  const existing = next && next.classList.contains("hidden-line") && next.dataset.permission === permission ? next : null;
  if (allowed) existing?.remove();
  else if (existing) existing.replaceWith(hiddenLine(permission, what));
  else after.after(hiddenLine(permission, what));
  return allowed;
}
