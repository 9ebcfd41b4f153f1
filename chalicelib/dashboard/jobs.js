// The job table: one row per job (newest first), updated in place so bars move without a reload.

import { formatBytes, formatDuration, formatTime, jobTypeName, timeParts } from "./format.js";

const FINISHED = new Set(["completed", "failed", "cancelled"]);
const PATH_FIELDS = [
  ["hlsDir", "HLS folder"],
  ["masterPlaylistPath", "Master playlist"],
  ["subtitlePath", "Subtitle file"],
  ["subtitlePlaylistPath", "Subtitle playlist"],
  ["sourcePath", "Source file"],
  ["uploadPath", "Upload path"],
];
const ACTION_LABELS = {
  retry: "Retry",
  cancel: "Cancel",
  sync: "Sync",
  cleanup: "Clean up",
  delete: "Delete",
};
// Fields an uploadProgress or Job* event carries that the row shows.
const EVENT_FIELDS = [
  "status",
  "progress",
  "uploadedBytes",
  "totalBytes",
  "uploadedFiles",
  "totalFiles",
  "durationSeconds",
  "publicUrl",
  "errorCode",
  "failedReason",
];

/** The actions the API allows in the job's state (SPEC 3 and 4), in the order the buttons show. */
export function availableActions(job) {
  const status = job.status;
  if (status === "waiting" || status === "active") return ["cancel", "sync"];
  if (status === "failed" || status === "cancelled") {
    // Once cleanup has removed its source files, the job cannot run again.
    return job.sourceRemoved ? ["cleanup", "delete"] : ["retry", "cleanup", "delete"];
  }
  if (status === "completed") return ["delete"];
  return [];
}

/** The list API's filters, applied to one job (for jobs that arrive by WebSocket). */
export function matchesFilters(job, filters) {
  const exact = {
    status: "status",
    type: "resourceType",
    jobType: "jobType",
    uploadType: "uploadType",
    contentType: "contentType",
  };
  for (const [filter, field] of Object.entries(exact)) {
    if (filters[filter] && job[field] !== filters[filter]) return false;
  }
  const created = Date.parse(job.createdAt);
  if (filters.from && created < Date.parse(filters.from)) return false;
  if (filters.to && created > Date.parse(filters.to)) return false;
  if (filters.q) {
    const needle = filters.q.toLowerCase();
    const names = [job.resourceName, job.filename].filter(Boolean).map((name) => name.toLowerCase());
    if (!names.some((name) => name.includes(needle))) return false;
  }
  return true;
}

/** The API's order: newest createdAt first, then jobId descending. */
export function compareJobs(a, b) {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  if (a.jobId === b.jobId) return 0;
  return a.jobId < b.jobId ? 1 : -1;
}

function jobTitle(job) {
  return job.resourceName || job.filename || job.jobId;
}

/** How messages name a job: its title and label, `The Long Take 720p`. */
export function jobName(job) {
  return [jobTitle(job), job.label].filter(Boolean).join(" ");
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

export function safeLink(url) {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") {
      return el("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer", text: url });
    }
  } catch {
    // not a URL: shown as text
  }
  return document.createTextNode(url);
}

let rowCount = 0;

class JobRow {
  constructor(job) {
    rowCount += 1;
    this.detailsId = `job-details-${rowCount}`;
    this.job = job;
    this.isOpen = false;
    this.seq = 0;
    this.build();
    this.render();
  }

  build() {
    this.openButton = el("button", {
      type: "button",
      class: "open",
      "aria-expanded": "false",
      "aria-controls": this.detailsId,
    });
    this.name = el("span", { class: "name" });
    this.openButton.append(this.name);
    // The title's name: opens the title view (title.js) through the "title" action.
    this.meta = el("button", { type: "button", class: "meta title-link", "data-action": "title" });
    this.error = el("p", { class: "job-error" });
    this.label = el("td", { "data-label": "Label", class: "label" });
    this.type = el("td", { "data-label": "Type" });
    this.badge = el("span", { class: "badge" });
    this.statusNote = el("span", { class: "meta" });
    this.fill = el("div", { class: "fill" });
    this.bar = el(
      "div",
      { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" },
      this.fill,
    );
    this.percent = el("span", { class: "pct" });
    this.bytes = el("span");
    this.files = el("span");
    this.duration = el("td", { "data-label": "Duration", class: "num" });
    this.created = el("td", { "data-label": "Created", class: "num" });
    this.actions = el("div", { class: "actions" });
    this.row = el(
      "tr",
      { class: "job" },
      el("td", { "data-label": "Resource", class: "resource" }, this.openButton, this.meta, this.error),
      this.label,
      this.type,
      el("td", { "data-label": "Status" }, this.badge, this.statusNote),
      el(
        "td",
        { "data-label": "Progress" },
        el("div", { class: "progress" }, this.bar, this.percent),
        el("div", { class: "transferred" }, this.bytes, this.files),
      ),
      this.duration,
      this.created,
      el("td", { class: "actions-cell" }, this.actions),
    );
    this.detailsCell = el("td", { colspan: "8" });
    this.details = el("tr", { class: "details", id: this.detailsId, hidden: "" }, this.detailsCell);
    this.actionsKey = null;
  }

  get id() {
    return this.job.jobId;
  }

  update(job) {
    const previous = this.job;
    // A fetch may have left before the last progress event: while active, bars only move forward.
    if (previous.status === "active" && job.status === "active") {
      for (const field of ["progress", "uploadedBytes", "uploadedFiles"]) {
        job[field] = Math.max(job[field] || 0, previous[field] || 0);
      }
    }
    this.job = job;
    this.render();
    if (this.isOpen) this.renderDetails();
    return previous.status !== job.status;
  }

  /** An event's fields (progress, status, outcome) over the job; true when the status changed. */
  applyEvent(data) {
    const before = this.job.status;
    // A progress event that arrives after the job finished is late: only a retry brings it back.
    if (data.event === "uploadProgress" && FINISHED.has(before)) return false;
    const job = { ...this.job };
    for (const field of EVENT_FIELDS) {
      if (data[field] !== undefined) job[field] = data[field];
    }
    if (data.event === "uploadProgress" && before === "active" && job.status === "active") {
      job.progress = Math.max(job.progress, this.job.progress);
    }
    job.canCancel = job.status === "waiting" || job.status === "active";
    this.job = job;
    this.render();
    return before !== job.status;
  }

  render() {
    const job = this.job;
    this.row.dataset.jobId = job.jobId;
    this.row.dataset.status = job.status;
    this.name.textContent = jobTitle(job);
    this.meta.textContent = `${job.resourceType} · ${job.resourceId}`;
    this.meta.setAttribute("aria-label", `Title view of ${jobTitle(job)} (${job.resourceType} ${job.resourceId})`);
    this.openButton.setAttribute("aria-label", `${jobName(job)}: show details`);
    if (job.status === "failed") {
      this.error.hidden = false;
      this.error.replaceChildren(
        el("strong", { class: "code", text: job.errorCode || "FAILED" }),
        ` ${job.failedReason || job.errorMessage || "The job failed."}`,
      );
    } else {
      this.error.hidden = true;
      this.error.replaceChildren();
    }
    this.label.textContent = job.label || job.subtitleMetadata?.language || "–";
    this.type.replaceChildren(
      el("span", { text: jobTypeName(job.jobType) }),
      el("span", { class: "meta", text: job.contentType || "" }),
    );
    this.badge.textContent = job.status;
    this.badge.className = `badge status-${job.status}`;
    this.statusNote.textContent = this.statusText();
    this.renderProgress();
    this.renderDuration(Date.now());
    const [day, time] = timeParts(job.createdAt);
    this.created.replaceChildren(el("span", { text: day }), el("span", { class: "meta", text: time }));
    this.created.title = job.createdAt || "";
    this.renderActions();
  }

  statusText() {
    const job = this.job;
    if (job.cancelRequested && job.status === "active") return "cancelling…";
    if (job.status === "active") return `attempt ${job.attempts || 1} of ${job.maxAttempts || "?"}`;
    if (job.status === "waiting" && job.retryCount) return `retry ${job.retryCount}`;
    if (job.status === "waiting" && job.attempts) return `attempt ${job.attempts} of ${job.maxAttempts} done`;
    return "";
  }

  renderProgress() {
    const job = this.job;
    const progress = Math.max(0, Math.min(100, Math.round(job.progress || 0)));
    this.fill.style.transform = `scaleX(${progress / 100})`;
    this.bar.setAttribute("aria-valuenow", String(progress));
    this.bar.setAttribute("aria-label", `Upload progress of ${jobName(job)}`);
    this.percent.textContent = `${progress} %`;
    if (!job.totalFiles && !job.totalBytes) {
      this.bytes.textContent = "–";
      this.files.textContent = "";
      return;
    }
    this.bytes.textContent = `${formatBytes(job.uploadedBytes)} / ${formatBytes(job.totalBytes)}`;
    this.files.textContent = `${job.uploadedFiles || 0} / ${job.totalFiles || 0} files`;
  }

  renderDuration(now) {
    const job = this.job;
    let seconds = job.durationSeconds;
    if (job.status === "active" && job.startedAt) seconds = (now - Date.parse(job.startedAt)) / 1000;
    else if (!FINISHED.has(job.status)) seconds = null;
    this.duration.textContent = formatDuration(seconds);
  }

  renderActions() {
    const job = this.job;
    const actions = availableActions(job);
    const key = `${actions.join()}|${Boolean(job.cancelRequested)}`;
    if (key === this.actionsKey) return;
    this.actionsKey = key;
    const hadFocus = this.actions.contains(document.activeElement);
    const title = jobName(job);
    this.actions.replaceChildren(
      ...actions.map((action) => {
        const button = el("button", {
          type: "button",
          class: action === "delete" || action === "cancel" ? "small danger" : "small",
          "data-action": action,
          "aria-label": `${ACTION_LABELS[action]} ${title}`,
          text: ACTION_LABELS[action],
        });
        if (action === "cancel" && job.cancelRequested) {
          button.disabled = true;
          button.textContent = "Cancelling…";
        }
        return button;
      }),
    );
    // The button pressed may be gone (a retried job has no Retry): keep the keyboard in the row.
    if (hadFocus) this.openButton.focus();
  }

  setOpen(open) {
    this.isOpen = open;
    this.openButton.setAttribute("aria-expanded", String(open));
    this.row.classList.toggle("is-open", open);
    this.details.hidden = !open;
    if (open) this.renderDetails();
  }

  renderDetails() {
    const job = this.job;
    const facts = el("dl", { class: "facts" });
    const add = (term, value) => {
      if (value === undefined || value === null || value === "") return;
      facts.append(el("div", {}, el("dt", { text: term }), el("dd", {}, value)));
    };
    add("Job id", el("code", { text: job.jobId }));
    add("Queue", job.queueName);
    add("Upload type", `${job.uploadType} / ${job.contentType}`);
    for (const [field, term] of PATH_FIELDS) add(term, job[field] ? el("code", { text: job[field] }) : null);
    add("Bucket", job.bucketName);
    add("Destination prefix", job.destinationPrefix ? el("code", { text: job.destinationPrefix }) : null);
    add("Public URL", job.publicUrl ? safeLink(job.publicUrl) : null);
    if (job.subtitleMetadata?.language) {
      add("Subtitle", [job.subtitleMetadata.language, job.subtitleMetadata.label].filter(Boolean).join(" · "));
    }
    if (job.subtitleLanguages?.length) add("Needs subtitles", job.subtitleLanguages.join(", "));
    add("Attempts", `${job.attempts} of ${job.maxAttempts}, ${job.retryCount} retr${job.retryCount === 1 ? "y" : "ies"}`);
    add("Client id", job.clientId);
    add("Created", formatTime(job.createdAt));
    add("Started", job.startedAt ? formatTime(job.startedAt) : null);
    add("Finished", job.finishedAt ? formatTime(job.finishedAt) : null);
    add("Next attempt", job.status === "waiting" && job.nextAttemptAt ? formatTime(job.nextAttemptAt) : null);
    add("Error code", job.errorCode);
    add("Reason", job.failedReason);
    add("Technical detail", job.errorMessage ? el("code", { text: job.errorMessage }) : null);
    add("Cleaned up", job.cleanedAt ? formatTime(job.cleanedAt) : null);
    add("Source files", job.sourceRemoved ? "removed by cleanup: the job cannot be retried" : null);

    const history = [...(job.history || [])].reverse();
    const rows = history.map((entry) =>
      el(
        "tr",
        {},
        el("td", { class: "num", text: formatTime(entry.at) }),
        el("td", { text: `${entry.from || "new"} → ${entry.to}` }),
        el("td", { text: entry.reason || "" }),
        el("td", { text: entry.actor || "" }),
      ),
    );
    const historyTable = el(
      "table",
      { class: "history" },
      el("caption", { text: "History, newest first" }),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col", text: "When" }),
          el("th", { scope: "col", text: "Change" }),
          el("th", { scope: "col", text: "Reason" }),
          el("th", { scope: "col", text: "By" }),
        ),
      ),
      el("tbody", {}, ...rows),
    );
    this.detailsCell.replaceChildren(el("div", { class: "details-body" }, facts, historyTable));
  }
}

/** Rows by job id, kept in the API's order; `nextCursor` says whether older jobs exist beyond the last row. */
export class JobTable {
  constructor(tbody, { onAction }) {
    this.tbody = tbody;
    this.rows = new Map();
    this.nextCursor = null;
    this.onRow = null; // (tr, job) for each row inserted: bulk.js adds its checkbox
    tbody.addEventListener("click", (event) => this.clicked(event, onAction));
  }

  clicked(event, onAction) {
    const rowElement = event.target.closest("tr.job");
    if (!rowElement) return;
    const row = this.rows.get(rowElement.dataset.jobId);
    if (!row) return;
    const button = event.target.closest("button[data-action]");
    if (button) {
      onAction(button.dataset.action, row.job, button);
      return;
    }
    // The open button, or anywhere else on the row that is not a control or a link.
    if (event.target.closest("button.open") || !event.target.closest("a, button, input, select")) {
      row.setOpen(!row.isOpen);
    }
  }

  get size() {
    return this.rows.size;
  }

  get jobs() {
    return [...this.rows.values()].map((row) => row.job);
  }

  get(id) {
    return this.rows.get(id);
  }

  clear() {
    this.rows.clear();
    this.tbody.replaceChildren();
    this.nextCursor = null;
  }

  /** Whether the job belongs among the loaded rows: newer than the last, or every page is loaded. */
  canHold(job) {
    if (!this.nextCursor || this.rows.size === 0) return true;
    const last = [...this.rows.values()].at(-1).job;
    return compareJobs(job, last) < 0;
  }

  /** A page from the API: new rows go in order, known rows are updated. */
  addPage(items, nextCursor) {
    for (const job of items) this.upsert(job);
    this.nextCursor = nextCursor;
  }

  /** The first pages again (after a reconnect): rows no longer in the answer go away. */
  replaceWith(items, nextCursor) {
    const keep = new Set(items.map((job) => job.jobId));
    for (const id of [...this.rows.keys()]) if (!keep.has(id)) this.remove(id);
    this.addPage(items, nextCursor);
  }

  /** Update or insert; returns "inserted", "updated" or "status" (updated with a new status). */
  upsert(job) {
    const row = this.rows.get(job.jobId);
    if (row) return row.update(job) ? "status" : "updated";
    this.insert(new JobRow(job));
    return "inserted";
  }

  insert(row) {
    const before = [...this.rows.values()].find((other) => compareJobs(row.job, other.job) < 0);
    this.rows.set(row.id, row);
    if (before) {
      this.tbody.insertBefore(row.row, before.row);
      this.tbody.insertBefore(row.details, before.row);
    } else {
      this.tbody.append(row.row, row.details);
    }
    // Map order follows the table's order, so the last row is the oldest.
    const ordered = [...this.rows.values()].sort((a, b) => compareJobs(a.job, b.job));
    this.rows = new Map(ordered.map((r) => [r.id, r]));
    this.onRow?.(row.row, row.job);
  }

  remove(id) {
    const row = this.rows.get(id);
    if (!row) return false;
    const hadFocus = row.row.contains(document.activeElement) || row.details.contains(document.activeElement);
    row.row.remove();
    row.details.remove();
    this.rows.delete(id);
    if (hadFocus) document.getElementById("jobs-heading")?.focus();
    return true;
  }

  /** Apply a WebSocket event to a known row; {known, statusChanged}. */
  applyEvent(data) {
    const row = this.rows.get(data.jobId);
    if (!row) return { known: false, statusChanged: false };
    const statusChanged = row.applyEvent(data);
    if (statusChanged) row.seq += 1;
    return { known: true, statusChanged };
  }

  /** Running durations move every second. */
  tick() {
    const now = Date.now();
    for (const row of this.rows.values()) if (row.job.status === "active") row.renderDuration(now);
  }
}
