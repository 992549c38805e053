// One mission on screen: header, stepper, live conversation, artifacts and audit tabs.

import { can } from "./access.js";
import { api, artifactPath, fetchBlob, streamEvents } from "./api.js";
import { renderAudit } from "./audit.js";
import { Conversation } from "./chat.js";
import { h } from "./dom.js";
import { missionLabel, missionTitle } from "./format.js";
import { renderEvaluation } from "./evaluation.js";
import { errorNodes } from "./messages.js";
import { FINISHED } from "./procedure.js";
import { drawProcedure } from "./flow.js";
import { renderArtifacts, renderStepDetail, renderSteps } from "./progress.js";
import { summaryCard } from "./summary.js";

const $ = (id) => document.getElementById(id);
const REFRESH_KINDS = new Set(["mission.status", "step.started", "step.finished", "approval.requested",
  "approval.decided", "artifact.written", "handoff.started", "handoff.finished", "task.created", "task.updated"]);
// The drawing starts folded (the conversation keeps its room); once opened it stays open for the tab's session.
const FLOW_OPEN = "orchestrator.flowOpen";

/** The open mission; `close()` stops its stream. */
export class MissionView {
  constructor(missionId, { onStatus, onError, tab = "chat" }) {
    this.id = missionId;
    this.onStatus = onStatus;
    this.onError = onError;
    this.mission = null;
    this.tab = tab;
    this.timer = null;
    this.ticker = null;
    this.picked = null; // the step whose details are open
    this.chat = new Conversation($("m-stream"), {
      missionId,
      openArtifact: (path) => this.openArtifact(path),
      onDecided: () => this.refreshSoon(0),
    });
  }

  /** Read the mission and follow its events; false when it does not exist or the key may not see it. */
  async open() {
    $("m-stream").replaceChildren(h("p.hint.loading", "Loading the conversation…"));
    $("m-title").textContent = "Loading mission…";
    $("m-status").textContent = "";
    $("m-error").hidden = true;
    $("m-cancel").hidden = true;
    $("pending-bar").hidden = true;
    $("m-steps").replaceChildren();
    $("m-step-detail").hidden = true;
    const flow = $("m-flow");
    flow.open = sessionStorage.getItem(FLOW_OPEN) === "true";
    flow.ontoggle = () => {
      sessionStorage.setItem(FLOW_OPEN, String(flow.open));
      if (flow.open && this.mission) drawProcedure($("m-flow-drawing"), this.mission);
    };
    $("reply-text").disabled = true; // until the mission is read and still open
    $("reply-send").disabled = true;
    $("panel-files").replaceChildren();
    $("panel-audit").replaceChildren();
    $("panel-evaluation").replaceChildren();
    await this.refresh();
    if (this.notFound) return false;
    this.selectTab(this.tab, false);
    $("m-stream").replaceChildren();
    this.stop = streamEvents(this.id, {
      onEvent: (event) => {
        this.chat.add(event);
        if (REFRESH_KINDS.has(event.kind)) this.refreshSoon();
        if (this.wantsPending && this.chat.pendingCards().length) this.scrollToPending();
      },
      onState: (state) => this.connection(state),
      isFinished: () => this.mission && FINISHED.has(this.mission.status),
    });
    // Running steps show a live duration.
    this.ticker = setInterval(() => {
      if (this.mission && !FINISHED.has(this.mission.status)) this.renderSteps();
    }, 1000);
    return true;
  }

  close() {
    this.stop?.();
    clearTimeout(this.timer);
    clearInterval(this.ticker);
  }

  /** Re-read the mission soon; a burst of events makes one request, not one per event. */
  refreshSoon(delay = 250) {
    if (this.timer && delay > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, delay);
  }

  async refresh() {
    let mission;
    try {
      mission = await api.mission(this.id);
    } catch (err) {
      if (!this.mission && err.status === 404) {
        this.notFound = true;
        return;
      }
      if (!this.mission) {
        $("m-title").textContent = "";
        $("m-stream").replaceChildren(h("p.error-text", errorNodes(err, "loadMission")));
      }
      this.onError(err, "loadMission", { quiet: !this.mission && err.kind === "http" });
      return;
    }
    const before = this.mission?.status;
    this.mission = mission;
    this.render();
    if (before !== mission.status) this.onStatus(mission);
  }

  render() {
    const m = this.mission;
    $("m-title").textContent = missionTitle(m);
    const status = $("m-status");
    status.textContent = missionLabel(m.status);
    status.className = `pill ${m.status}`;
    status.setAttribute("aria-label", `Mission status: ${missionLabel(m.status)}`);
    $("m-meta").replaceChildren(`#${m.id} · workspace ${m.workspace} · by ${m.owner}` +
      (m.current_step && !FINISHED.has(m.status) ? ` · now: ${m.current_step}` : ""),
      // A fork links to the mission whose record it started from.
      ...(m.parent_id ? [" · ", h("a.parent-link", { href: `#/missions/${m.parent_id}` }, `forked from #${m.parent_id}`)]
        : []));
    // A mission that ended other than completed says why (the lead's `reason`; older servers say `error`).
    const reason = m.reason ?? m.error;
    const error = $("m-error");
    error.hidden = !(FINISHED.has(m.status) && m.status !== "completed") && !reason;
    error.className = `alert ${m.status === "completed_with_risks" ? "warn" : "bad"}`;
    error.replaceChildren(h("strong", `Mission ${missionLabel(m.status)}${reason ? ": " : "."}`),
      h("span.reason", { title: reason || "" }, reason || (m.status === "failed" ? "no reason was recorded." : "")));
    $("m-cancel").hidden = FINISHED.has(m.status) || !can("mission.act");
    this.renderSteps();
    if ($("m-flow").open) drawProcedure($("m-flow-drawing"), m);
    this.chat.syncApprovals(m.approvals);
    this.chat.setSummary(FINISHED.has(m.status) ? summaryCard(m, {
      openArtifact: (path) => this.openArtifact(path),
      showFiles: () => { location.hash = `#/missions/${this.id}/files`; },
    }) : null);
    const pending = m.pending_approvals || (m.approvals || []).filter((a) => a.status === "pending");
    $("pending-bar").hidden = !pending.length;
    $("pending-text").textContent = pending.length
      ? `${pending.length === 1 ? "An approval is" : `${pending.length} approvals are`} waiting for ` +
        `${can("approval.decide") ? "you" : "an approver"}: ${pending.map((a) => a.kind).join(", ")}`
      : "";
    const finished = FINISHED.has(m.status);
    $("reply-text").disabled = finished;
    $("reply-send").disabled = finished;
    $("reply-text").placeholder = finished
      ? `This mission is over (${missionLabel(m.status)}); the conversation is closed.`
      : "Answer or add an instruction for the agents…";
    if (this.tab === "files") renderArtifacts($("panel-files"), m, (p) => this.openArtifact(p));
  }

  renderSteps() {
    renderSteps($("m-steps"), this.mission, { picked: this.picked, onPick: (name) => {
      this.picked = name;
      this.renderSteps();
    } });
    renderStepDetail($("m-step-detail"), this.mission, this.picked);
  }

  connection(state) {
    const el = $("m-conn");
    if (state === "live") el.textContent = "● live";
    else if (state === "ended") el.textContent = "";
    else if (state === "reconnecting") el.textContent = "reconnecting…";
    else if (state && state.message) {
      el.textContent = "";
      this.onError(state, "loadMission");
    }
    el.className = `conn ${typeof state === "string" ? state : "error"}`;
  }

  selectTab(name, focus = true) {
    this.tab = name;
    for (const t of ["chat", "files", "evaluation", "audit"]) {
      const tab = $(`tab-${t}`);
      tab.setAttribute("aria-selected", String(t === name));
      tab.tabIndex = t === name ? 0 : -1;
      $(`panel-${t}`).hidden = t !== name;
    }
    if (focus) $(`tab-${name}`).focus();
    if (name === "files" && this.mission) renderArtifacts($("panel-files"), this.mission, (p) => this.openArtifact(p));
    if (name === "audit") renderAudit($("panel-audit"), this.id).catch((err) => this.onError(err, "loadTrail"));
    if (name === "evaluation") {
      renderEvaluation($("panel-evaluation"), this.id, { openArtifact: (p) => this.openArtifact(p) })
        .catch((err) => this.onError(err, "loadMission"));
    }
  }

  async say(text) {
    await api.say(this.id, text);
    this.refreshSoon();
  }

  async cancel() {
    await api.cancel(this.id);
    this.refreshSoon(0);
  }

  /** Bring the first waiting approval into view; asked before the conversation has shown it, once it does. */
  scrollToPending() {
    const card = this.chat.pendingCards()[0];
    this.wantsPending = !card;
    if (!card) return;
    card.scrollIntoView({ block: "center" });
    card.querySelector("button.approve")?.focus();
  }

  /** Artifacts need the key: fetch, then show through a Blob URL (HTML reports render in the new tab). */
  async openArtifact(path) {
    const win = window.open("", "_blank");
    try {
      const blob = await fetchBlob(artifactPath(this.id, path));
      const url = URL.createObjectURL(blob);
      if (win) win.location.href = url;
      else location.href = url;
    } catch (err) {
      win?.close();
      this.onError(err, "openArtifact");
    }
  }
}
