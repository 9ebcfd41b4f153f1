// The title view: every upload of one film, episode or season, grouped the way an admin asks
// "is it fully live?", with the published URL, what is missing, and one button that retries every
// failed job of the title (GET .../uploads and POST .../retry-failed of the HTTP API).

import { formatTime, jobTypeName } from "./format.js";
import { el, safeLink } from "./jobs.js";

const STATUS_TEXT = { live: "Live", "in-progress": "In progress", failed: "Failed", partial: "Partial" };
const KIND_TEXT = { master: "Master playlist", rendition: "Rendition", subtitle: "Subtitle", video: "Video" };
// A burst of events of the title's jobs makes one reload.
const RELOAD_DEBOUNCE_MS = 400;

/** `Rendition 1080p`, `Subtitle fr`; the master is one of a kind. */
const partName = (kind, key) => (kind === "master" ? KIND_TEXT.master : `${KIND_TEXT[kind] || kind} ${key}`);
const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

function skippedText(skipped) {
  const parts = Object.entries(skipped).map(([reason, count]) => `${count} ${reason}`);
  return parts.length ? ` Skipped: ${parts.join(", ")}.` : "";
}

export class TitleView {
  /**
   * `root` is the page's empty section; `api` the page's API; `confirm` its confirmation dialog;
   * `clientId()` this page's socket id (or null); `notify`/`fail` its messages; `changed()` is
   * called after the retry, for the job table to catch up.
   */
  constructor(root, { api, confirm, clientId, notify, fail, changed }) {
    Object.assign(this, { root, api, confirm, clientId, notify, fail, changed });
    this.ref = null;
    this.title = null;
    this.opener = null;
    this.reloadTimer = null;
    this.generation = 0;
  }

  get isOpen() {
    return this.ref !== null;
  }

  /** Show the title of `job`; `opener` gets the focus back on close. */
  async open(job, opener) {
    this.ref = { type: job.resourceType, id: job.resourceId, name: job.resourceName || job.resourceId };
    this.opener = opener || document.activeElement;
    this.title = null;
    this.build();
    this.render("Loading…");
    this.root.hidden = false;
    this.heading.focus();
    await this.reload();
  }

  close() {
    this.ref = null;
    clearTimeout(this.reloadTimer);
    this.root.hidden = true;
    this.root.replaceChildren();
    if (this.opener?.isConnected) this.opener.focus();
    else document.getElementById("jobs-heading")?.focus();
  }

  /** The parts that stay while the view is open (a reload keeps the focus where it is). */
  build() {
    this.heading = el("h2", { id: "title-heading", tabindex: "-1" });
    this.badge = el("span", { class: "badge title-status" });
    this.retryButton = el("button", { type: "button", class: "primary", hidden: "" });
    this.retryButton.addEventListener("click", () => this.retryFailed(this.retryButton));
    const close = el("button", { type: "button", class: "quiet", text: "Back to the jobs" });
    close.addEventListener("click", () => this.close());
    this.body = el("div", { class: "title-body" });
    const name = el("div", {}, this.heading, el("span", { class: "meta", text: `${this.ref.type} · ${this.ref.id}` }));
    this.root.replaceChildren(
      el("div", { class: "title-head" }, name, this.badge, el("div", { class: "tools" }, this.retryButton, close)),
      this.body,
    );
  }

  async reload() {
    if (!this.ref) return;
    const generation = ++this.generation;
    const { type, id } = this.ref;
    this.root.setAttribute("aria-busy", "true");
    try {
      const title = await this.api.title(type, id);
      if (generation !== this.generation || !this.ref) return; // closed, or another title opened
      this.title = title;
      this.render();
    } catch (error) {
      if (generation !== this.generation) return;
      if (error.status === 404) {
        this.title = null;
        this.render("This title has no upload jobs any more.");
      } else {
        this.fail("Reading the title", error);
      }
    } finally {
      if (generation === this.generation) this.root.removeAttribute("aria-busy");
    }
  }

  /** A live event: a job of the open title changed, was added or deleted, so the view is read again. */
  jobEvent(data) {
    if (!this.isOpen || data.event === "uploadProgress") return;
    if (data.resourceType !== this.ref.type || data.resourceId !== this.ref.id) return;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.reload(), RELOAD_DEBOUNCE_MS);
  }

  allParts() {
    const title = this.title;
    if (!title) return [];
    const master = title.master ? [{ ...title.master, kind: "master" }] : [];
    const kinds = [
      ["renditions", "rendition"],
      ["subtitles", "subtitle"],
      ["videos", "video"],
    ];
    return master.concat(...kinds.map(([group, kind]) => title[group].map((part) => ({ ...part, kind }))));
  }

  render(message) {
    const title = this.title;
    this.heading.textContent = `Title: ${title?.resourceName || this.ref.name}`;
    this.badge.hidden = !title;
    if (title) {
      this.badge.dataset.titleStatus = title.status;
      this.badge.className = `badge title-status title-${title.status}`;
      this.badge.textContent = STATUS_TEXT[title.status] || title.status;
    }
    const failed = title ? title.failedJobIds.length : 0;
    if (!failed && this.retryButton.contains(document.activeElement)) this.heading.focus(); // it goes away
    this.retryButton.hidden = !failed;
    this.retryButton.textContent = `Retry all failed (${failed})`;
    this.body.replaceChildren(...(title ? this.renderBody(title) : [el("p", { class: "summary", text: message })]));
  }

  renderBody(title) {
    const published = el("p", { class: "title-published" });
    if (title.publicUrl) {
      published.append("Published: ", safeLink(title.publicUrl), ` (since ${formatTime(title.publishedAt)})`);
    } else {
      published.textContent = "Not published: no master playlist job of this title has completed.";
    }
    const counts = Object.entries(title.counts)
      .filter(([, count]) => count)
      .map(([status, count]) => `${count} ${status}`)
      .join(", ");
    const summary = el("p", {
      class: "summary",
      text: `${plural(title.total, "job")}: ${counts}.${title.truncated ? " Only the newest are shown." : ""}`,
    });
    const nodes = [published, summary];
    if (title.missing.length) {
      nodes.push(
        el("h3", { text: "Missing or not completed" }),
        el(
          "ul",
          { class: "title-missing" },
          ...title.missing.map((item) =>
            el("li", {}, el("strong", { text: partName(item.kind, item.key) }), `: ${item.reason}`),
          ),
        ),
      );
    }
    nodes.push(this.renderParts());
    return nodes;
  }

  renderParts() {
    const rows = this.allParts().map((part) => {
      const newest = part.jobs[0];
      const error = newest.status === "failed" ? `${newest.errorCode || "FAILED"}: ${newest.failedReason || ""}` : "";
      return el(
        "tr",
        { "data-part": `${part.kind}:${part.key}`, "data-status": part.status },
        el("td", { text: KIND_TEXT[part.kind] }),
        el("td", {}, el("code", { text: part.key })),
        el("td", {}, el("span", { class: `badge status-${part.status}`, text: part.status })),
        el(
          "td",
          {},
          el("span", { text: `${jobTypeName(newest.jobType)} · ${newest.jobId}` }),
          el("span", { class: "meta", text: `${plural(part.jobs.length, "job")}; newest ${newest.status}` }),
          error ? el("p", { class: "job-error", text: error }) : "",
        ),
        el("td", {}, part.publicUrl ? safeLink(part.publicUrl) : "–"),
      );
    });
    const header = ["Part", "Key", "Status", "Jobs", "Public URL"].map((text) => el("th", { scope: "col", text }));
    return el(
      "table",
      { class: "title-parts" },
      el("caption", { class: "visually-hidden", text: "The title's parts and their jobs" }),
      el("thead", {}, el("tr", {}, ...header)),
      el("tbody", {}, ...rows),
    );
  }

  async retryFailed(button) {
    const { type, id } = this.ref;
    const count = this.title.failedJobIds.length;
    const name = this.title.resourceName || id;
    const { confirmed } = await this.confirm({
      title: `Retry ${plural(count, "failed job")} of ${name}?`,
      text:
        "Each goes back to waiting and is queued again, as its own Retry button does. " +
        "A job that changed meanwhile (retried by someone else, cleaned up) is skipped.",
      confirmLabel: `Retry ${plural(count, "job")}`,
    });
    if (!confirmed || button.getAttribute("aria-busy") === "true") return;
    button.setAttribute("aria-busy", "true");
    try {
      const result = await this.api.retryTitleFailed(type, id, await this.clientId());
      const failed = result.failed.length ? ` ${result.failed.length} could not be retried.` : "";
      const done = `Retried ${result.done} of ${plural(result.matched, "failed job")} of ${name}.`;
      this.notify(done + skippedText(result.skipped) + failed);
      this.changed();
    } catch (error) {
      this.fail(`Retrying the failed jobs of ${name}`, error);
    } finally {
      button.removeAttribute("aria-busy");
    }
    await this.reload();
  }
}
