// The new-mission form: mission text (with a template), a workspace to pick, create or upload, send.

import { api, items } from "./api.js";
import { h } from "./dom.js";
import { INPUT, showError } from "./messages.js";

const $ = (id) => document.getElementById(id);

/**
 * The seed's example mission (orchestrator/data/anomaly-batch-scoring.md), with the inputs of the chosen workspace:
 * its model folders, data files and pipeline configs when the server lists them (`files`), else placeholders in
 * angle brackets for the person to replace. The lead agent is the default one, so no "/agent" line.
 */
export function missionTemplate(workspace, files) {
  const inputs = files
    ? [...(files.models || []).slice(0, 1), ...(files.data || []).slice(0, 3), ...(files.configs || []).slice(0, 1)]
    : [];
  const named = inputs.length ? inputs.join(", ") : "<model folder>, <reference data>, <current data>";
  const where = workspace ? ` in workspace “${workspace}”` : "";
  return `Mission: Productionize the model${where} with batch scoring and drift monitoring.
Inputs: ${named}
Constraints: Run nightly within 2-hour window; alert on precision drop >5%.
Expected Deliverables: Updated pipelines, monitoring hooks, deployment notes.
Validation: a dry run of the scoring pipeline, its tests, the CI pipeline run.
`;
}

// The workspaces as last listed, by the value of their option (the path).
const listed = new Map();

/** The chosen workspace's inputs as the list gave them, or null when the server does not say (placeholders then). */
function workspaceFiles(workspace) {
  if (!workspace || !["models", "data", "configs"].some((k) => Array.isArray(workspace[k]))) return null;
  return workspace;
}

/** Wire the form once; `onCreated(mission)` is called with the 201 answer. */
export function setupComposer({ onCreated, onError }) {
  const form = $("mission-form");
  const modes = form.querySelectorAll("input[name=ws-mode]");
  const showMode = () => {
    const mode = form.querySelector("input[name=ws-mode]:checked").value;
    for (const panel of form.querySelectorAll(".ws-panel")) panel.hidden = panel.dataset.ws !== mode;
  };
  for (const m of modes) m.addEventListener("change", showMode);

  $("template-btn").addEventListener("click", () => {
    const text = $("mission-text");
    if (text.value.trim() && !confirm("Replace the mission text with the template?")) return;
    const mode = form.querySelector("input[name=ws-mode]:checked").value;
    const workspace = mode === "existing" ? listed.get($("ws-select").value) : null;
    text.value = missionTemplate(workspace ? workspace.name : "", workspaceFiles(workspace));
    text.focus();
    // A placeholder left to fill is selected, ready to type over.
    const hole = text.value.search(/<[^>]+>/);
    if (hole >= 0) text.setSelectionRange(hole, text.value.indexOf(">", hole) + 1);
  });

  $("ws-create").addEventListener("click", async () => {
    const name = $("ws-name").value.trim().toLowerCase();
    const status = $("ws-status");
    if (!/^[a-z0-9_-]+$/.test(name)) {
      status.textContent = INPUT.workspaceName;
      status.className = "hint error-text";
      return;
    }
    $("ws-create").disabled = true;
    status.className = "hint";
    status.textContent = `Creating workspace “${name}”…`;
    try {
      const ws = await api.createWorkspace(name, $("ws-template").value);
      await loadWorkspaces(ws.name || name);
      form.querySelector("input[name=ws-mode][value=existing]").checked = true;
      showMode();
      status.textContent = `Workspace “${ws.name || name}” created${ws.path ? ` at ${ws.path}` : ""}.`;
    } catch (err) {
      if (err.kind === "unreachable" || err.status === 401) {
        status.textContent = "";
        onError(err, "createWorkspace");
      } else {
        status.className = "hint error-text";
        showError(status, err, "createWorkspace");
      }
    } finally {
      $("ws-create").disabled = false;
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("mission-error");
    showError(error, null);
    const text = $("mission-text").value;
    if (!text.trim()) {
      error.textContent = INPUT.missionText;
      return;
    }
    if (/<(model folder|reference data|current data)>/.test(text)) {
      error.textContent = INPUT.placeholders;
      return;
    }
    const mode = form.querySelector("input[name=ws-mode]:checked").value;
    const send = $("mission-send");
    send.disabled = true;
    try {
      let mission;
      if (mode === "upload") {
        const file = $("ws-file").files[0];
        if (!file) throw new Error(INPUT.archive);
        mission = await api.uploadMission(text, file);
      } else {
        const workspace = $("ws-select").value;
        if (!workspace) throw new Error(INPUT.workspace);
        mission = await api.createMission(text, workspace);
      }
      $("mission-text").value = "";
      onCreated(mission);
    } catch (err) {
      if (err.kind === "unreachable" || err.status === 401) onError(err, "createMission");
      else if (err.kind === undefined) error.textContent = err.message; // one of INPUT's, thrown above
      else showError(error, err, "createMission");
    } finally {
      send.disabled = false;
    }
  });
}

/** Fill the workspace picker; select `choose` when given. */
export async function loadWorkspaces(choose) {
  const select = $("ws-select");
  const list = items(await api.workspaces());
  const previous = choose || select.value;
  // POST /missions takes a directory under a workspace root; the path is unambiguous across roots.
  listed.clear();
  for (const w of list) listed.set(w.path || w.name, w);
  select.replaceChildren(...list.map((w) => h("option", { value: w.path || w.name, title: w.path || "" },
    w.path && w.path !== w.name ? `${w.name} (${w.path})` : w.name)));
  const match = list.find((w) => w.name === previous || w.path === previous);
  if (match) select.value = match.path || match.name;
  $("ws-empty").hidden = list.length > 0;
  if (!list.length) {
    // Nothing to pick: open the "create" panel with the demo template preselected.
    document.querySelector("input[name=ws-mode][value=create]").checked = true;
    document.querySelector("input[name=ws-mode][value=create]").dispatchEvent(new Event("change"));
  }
  return list;
}
