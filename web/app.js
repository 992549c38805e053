// The page: sign-in with an API key, the missions sidebar, routing between "new mission" and a mission.
// Routes: #/new, #/missions/<id>, #/missions/<id>/audit, #/missions/<id>/files, #/missions/<id>/evaluation.

import { can, gate, setCaller } from "./access.js";
import { api, getKey, setKey } from "./api.js";
import { loadWorkspaces, setupComposer } from "./composer.js";
import { h } from "./dom.js";
import { missionLabel, missionTitle, time } from "./format.js";
import { NOT_FOUND, OFFLINE, showError } from "./messages.js";
import { MissionView } from "./mission.js";
import { FINISHED, loadProcedure, procedure } from "./procedure.js";

const $ = (id) => document.getElementById(id);
let current = null; // the open MissionView
let me = null;
let cursor = null;
let listTimer = null;

function show(view) {
  for (const id of ["login-view", "offline-view", "new-view", "mission-view", "notfound-view"]) $(id).hidden = id !== view;
  document.body.classList.toggle("view-mission", view === "mission-view");
  // No sidebar (and no menu button) until someone is signed in.
  document.body.classList.toggle("signed-out", view === "login-view" || view === "offline-view");
}

/**
 * One place for failures that need the user: a bad key sends them to sign in, a dead server shows a banner,
 * anything else met while doing `action` (a messages.js key) shows in the banner unless `quiet`.
 */
function handleError(err, action, { quiet = false } = {}) {
  if (err.status === 401) {
    signOut(err, action);
    return;
  }
  if (err.kind === "unreachable") {
    banner(err, action);
    return;
  }
  if (!quiet) banner(err, action, { retry: false });
}

/** The banner shows one failure (in messages.js's words, detail folded); `banner(null)` hides it. */
function banner(err, action, { retry = true } = {}) {
  showError($("banner-text"), err, action);
  $("banner-retry").hidden = !retry;
  $("banner").hidden = !err;
}

/** Show only what the signed-in role may do; a line says what is hidden and why. */
function applyAccess() {
  gate($("new-mission-link"), "mission.create", "New mission");
  $("new-title").textContent = can("mission.create") ? "New mission" : "Missions";
  $("new-pick").hidden = can("mission.create");
  if (gate($("mission-form"), "mission.create", "the new-mission form")) {
    gate(document.querySelector("label.radio:has(input[value=create])"), "workspace.create", "Create new workspace");
  }
  gate($("reply-form"), "mission.act", "the reply box and Cancel mission");
  gate($("tab-audit"), "audit.read", "Audit review", { after: document.querySelector(".tabs") });
}

/** The sidebar's status filter offers the statuses the procedure declares. */
function fillStatusFilter() {
  const select = $("status-filter");
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "" }, "all missions"),
    ...procedure().mission_statuses.map((s) => h("option", { value: s }, missionLabel(s))));
  select.value = chosen;
}

function signOut(err = null, action = "signIn") {
  setKey("");
  me = null;
  setCaller(null);
  current?.close();
  current = null;
  clearInterval(listTimer);
  $("whoami").textContent = "";
  $("signout").hidden = true;
  $("sidebar").hidden = true;
  showError($("login-error"), err, action);
  show("login-view");
  $("login-key").focus();
}

async function signIn() {
  try {
    [me] = await Promise.all([api.me(), procedure() ? null : loadProcedure()]);
  } catch (err) {
    me = null;
    if (err.kind === "unreachable") {
      // The offline view says it (once) and offers the retry.
      $("sidebar").hidden = true;
      $("offline-title").textContent = OFFLINE.title;
      $("offline-kept").textContent = OFFLINE.kept;
      showError($("offline-text"), err, "signIn");
      show("offline-view");
    } else {
      signOut(err, "signIn");
    }
    return false;
  }
  banner(null);
  setCaller(me);
  applyAccess();
  fillStatusFilter();
  $("whoami").textContent = `${me.name} (${me.role})`;
  $("signout").hidden = false;
  $("sidebar").hidden = false;
  refreshList();
  clearInterval(listTimer);
  listTimer = setInterval(refreshList, 10000);
  return true;
}

async function refreshList({ more = false } = {}) {
  if (!me) return;
  let page;
  try {
    page = await api.missions({ status: $("status-filter").value, cursor: more ? cursor : "" });
  } catch (err) {
    handleError(err, "listMissions", { quiet: true });
    return;
  }
  if ($("banner-retry").hidden === false) banner(null); // the server is back
  const list = $("mission-list");
  const rows = (page.items || []).map((m) => {
    const href = `#/missions/${m.id}`;
    return h("li", { dataset: { id: m.id, status: m.status } },
      h("a", { href, "aria-current": current?.id === m.id ? "page" : null },
        h("span.m-title", missionTitle(m)),
        h("span.m-meta", h("span", { class: `pill small ${m.status}` }, missionLabel(m.status)),
          h("span.hint", ` ${time(m.created_at)}`))));
  });
  if (more) list.append(...rows);
  else list.replaceChildren(...rows);
  cursor = page.next_cursor;
  $("mission-list-more").hidden = !cursor;
  $("mission-list-empty").hidden = list.children.length > 0;
  $("mission-list-empty").textContent = can("mission.create") ? "No missions yet. Start one with “New mission”."
    : "No missions yet.";
}

async function route() {
  closeMenu();
  if (!getKey()) {
    signOut();
    return;
  }
  if (!me && !(await signIn())) return;
  const match = location.hash.match(/^#\/missions\/([^/]+)(?:\/(audit|files|evaluation|chat))?$/);
  if (match) {
    const [, id, asked = "chat"] = match;
    const tab = asked === "audit" && !can("audit.read") ? "chat" : asked;
    if (current && current.id === id) {
      if (current.tab !== tab) current.selectTab(tab, false);
      return;
    }
    current?.close();
    const view = new MissionView(id, {
      tab,
      onStatus: () => refreshList(),
      onError: handleError,
    });
    current = view;
    markCurrent(id);
    // The mission view appears once the mission is read; one it may not see gets the not-found page instead.
    const found = await view.open();
    if (current !== view) return; // the person went elsewhere meanwhile
    if (found) {
      show("mission-view");
    } else {
      view.close();
      current = null;
      markCurrent(null);
      $("notfound-title").textContent = NOT_FOUND.title;
      $("notfound-text").textContent = NOT_FOUND.text;
      $("notfound-back").textContent = NOT_FOUND.back;
      show("notfound-view");
    }
    $("main").focus({ preventScroll: true });
    return;
  }
  current?.close();
  current = null;
  markCurrent(null);
  show("new-view");
  try {
    await loadWorkspaces();
  } catch (err) {
    handleError(err, "listWorkspaces");
  }
}

function markCurrent(id) {
  for (const a of $("mission-list").querySelectorAll("a")) {
    if (a.closest("li").dataset.id === id) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function closeMenu() {
  document.body.classList.remove("menu-open");
  $("menu-toggle").setAttribute("aria-expanded", "false");
}

function wire() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("login-key").value.trim();
    if (!key) return;
    setKey(key);
    showError($("login-error"), null);
    if (await signIn()) {
      $("login-key").value = "";
      route();
    }
  });
  $("signout").addEventListener("click", () => signOut());
  $("banner-retry").addEventListener("click", async () => {
    banner(null);
    if (!me) await route();
    else {
      refreshList();
      current?.refresh();
    }
  });
  $("offline-retry").addEventListener("click", () => $("banner-retry").click());
  $("status-filter").addEventListener("change", () => refreshList());
  $("mission-list-more").addEventListener("click", () => refreshList({ more: true }));
  $("menu-toggle").addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    $("menu-toggle").setAttribute("aria-expanded", String(open));
  });

  for (const tab of ["chat", "files", "evaluation", "audit"]) {
    $(`tab-${tab}`).addEventListener("click", () => {
      if (current) location.hash = `#/missions/${current.id}${tab === "chat" ? "" : `/${tab}`}`;
    });
  }
  // Arrow keys move between tabs (the WAI-ARIA tabs pattern).
  document.querySelector(".tabs").addEventListener("keydown", (event) => {
    const tabs = can("audit.read") ? ["chat", "files", "evaluation", "audit"] : ["chat", "files", "evaluation"];
    const i = tabs.indexOf(current?.tab);
    if (i < 0 || !["ArrowLeft", "ArrowRight"].includes(event.key)) return;
    const next = tabs[(i + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    location.hash = `#/missions/${current.id}${next === "chat" ? "" : `/${next}`}`;
    $(`tab-${next}`).focus();
  });

  $("reply-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text || !current) return;
    showError($("reply-error"), null);
    $("reply-send").disabled = true;
    try {
      await current.say(text);
      $("reply-text").value = "";
    } catch (err) {
      // Shown once: next to the box, unless the page as a whole must act (signed out, server gone).
      if (err.kind === "unreachable" || err.status === 401) handleError(err, "sendMessage");
      else showError($("reply-error"), err, "sendMessage");
    } finally {
      $("reply-send").disabled = current ? FINISHED.has(current.mission?.status) : false;
    }
  });
  $("reply-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("reply-form").requestSubmit();
  });
  $("m-cancel").addEventListener("click", async () => {
    if (!current || !confirm("Cancel this mission? The agents stop at the next safe point.")) return;
    try {
      await current.cancel();
    } catch (err) {
      handleError(err, "cancel");
    }
  });
  $("pending-go").addEventListener("click", () => current?.scrollToPending());

  setupComposer({
    onCreated: (mission) => {
      refreshList();
      location.hash = `#/missions/${mission.id}`;
    },
    onError: handleError,
  });
  window.addEventListener("hashchange", route);
}

wire();
route();
