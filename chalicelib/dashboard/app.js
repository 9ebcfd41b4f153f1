// The admin dashboard: sign in with a token, then statistics, the job table, actions and live updates.

import { ApiError, createApi } from "./api.js";
import { setupBulk } from "./bulk.js";
import { JobTable, jobName, matchesFilters } from "./jobs.js";
import { LiveConnection } from "./live.js";
import { renderStats } from "./stats.js";
import { AnalyticsPanel } from "./charts.js";
import { TitleView } from "./title.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const TOKEN_KEY = "studio-uploads.token";
const PAGE_SIZE = 50;
const MAX_PAGE = 500; // the list API's largest limit
const STATS_DEBOUNCE_MS = 750;
const POLL_MS = 20000;
const ANNOUNCE_BATCH_MS = 1000;
const FINISH_EVENTS = new Set(["JobCompleted", "JobFailed", "JobCancelled"]);
const MINUTE_MS = 60000;

const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem(TOKEN_KEY) || "";
const api = createApi(config.apiBase, () => token);
const table = new JobTable($("job-rows"), { onAction: runAction });
const analytics = new AnalyticsPanel($("analytics"), {
  load: (query) => api.analytics(query),
  onError: (error) => fail("Reading the analytics", error),
});
let filters = {};
let live = null;
let liveState = "idle";
let listGeneration = 0;
const timers = { stats: null, poll: null, tick: null, countdown: null, announce: null };
const fetching = new Map(); // jobId -> {again}: one GET per job at a time
const outside = new Map(); // jobId -> status of jobs known not to match the filters
const announcements = [];

// Messages ------------------------------------------------------------------------------

function describe(error) {
  return error instanceof ApiError ? error.describe() : String(error?.message || error);
}

function showAlert(text) {
  $("alert-text").textContent = text;
  $("alert").hidden = false;
}

function showNotice(text) {
  $("notice").textContent = text;
}

/** Status changes for screen readers, batched so a burst of events makes one announcement. */
function announce(text) {
  announcements.push(text);
  timers.announce ??= setTimeout(() => {
    $("announcer").textContent = announcements.splice(0).join(". ");
    timers.announce = null;
  }, ANNOUNCE_BATCH_MS);
}

/** An API error in words; a refused token ends the session and asks for another. */
function fail(what, error) {
  if (error instanceof ApiError && error.isAuthProblem) {
    endSession(`${what}: the API refused the token (${error.message}, HTTP ${error.status}). Sign in again.`);
    return;
  }
  showAlert(`${what} failed: ${describe(error)}`);
}

// Session --------------------------------------------------------------------------------

function showSignIn(message) {
  $("workspace").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("token-error").textContent = message || "";
  $("token-input").value = "";
  $("token-input").focus();
}

async function signIn(event) {
  event.preventDefault();
  const candidate = $("token-input").value.trim();
  if (!candidate) {
    $("token-error").textContent = "Paste a token first.";
    return;
  }
  token = candidate;
  $("token-error").textContent = "";
  try {
    const stats = await api.stats();
    sessionStorage.setItem(TOKEN_KEY, token);
    startSession(stats);
  } catch (error) {
    token = "";
    $("token-error").textContent =
      error instanceof ApiError && error.isAuthProblem
        ? `This token was refused: ${error.message} (HTTP ${error.status}).`
        : `The token could not be checked: ${describe(error)}`;
    $("token-input").select();
  }
}

async function startSession(stats) {
  $("sign-in").hidden = true;
  $("workspace").hidden = false;
  $("sign-out").hidden = false;
  $("token-error").textContent = "";
  renderStats($("stats"), stats);
  // A token of a few minutes for each (re)connect: the WebSocket URL is logged, the admin token must not be.
  live = new LiveConnection(config.websocketUrl, async () => (await api.websocketToken()).token, {
    onEvent: handleEvent,
    onState: showConnection,
    onReconnect: resync,
  });
  live.start();
  timers.poll = setInterval(poll, POLL_MS);
  timers.tick = setInterval(() => table.tick(), 1000);
  await loadFirstPage();
}

function endSession(message) {
  live?.stop();
  live = null;
  for (const name of ["poll", "tick", "stats", "countdown"]) {
    clearInterval(timers[name]);
    clearTimeout(timers[name]);
  }
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  if (titleView.isOpen) titleView.close();
  table.clear();
  outside.clear();
  analytics.clear();
  showSignIn(message);
}

async function boot() {
  if (!token) {
    showSignIn();
    return;
  }
  try {
    startSession(await api.stats());
  } catch (error) {
    if (error instanceof ApiError && error.isAuthProblem) {
      endSession(`The saved token was refused: ${error.message} (HTTP ${error.status}). Sign in again.`);
    } else {
      showSignIn(`The API could not be reached: ${describe(error)}`);
    }
  }
}

// Statistics -----------------------------------------------------------------------------

async function refreshStats() {
  analytics.refresh(); // only while its panel is open
  try {
    renderStats($("stats"), await api.stats());
  } catch (error) {
    fail("Reading the statistics", error);
  }
}

function scheduleStats() {
  clearTimeout(timers.stats);
  timers.stats = setTimeout(refreshStats, STATS_DEBOUNCE_MS);
}

/** The slow poll; without a live socket it also reloads the table, so the page never goes stale. */
function poll() {
  if (document.hidden) return;
  if (liveState === "live") refreshStats();
  else resync();
}

// The list -------------------------------------------------------------------------------

function readFilters() {
  const read = {};
  for (const [name, raw] of new FormData($("filters"))) {
    const value = String(raw).trim();
    if (!value) continue;
    if (name === "from" || name === "to") {
      // datetime-local is minute precision in local time; "to" includes its whole minute.
      const time = new Date(value).getTime() + (name === "to" ? MINUTE_MS - 1 : 0);
      read[name] = new Date(time).toISOString();
    } else {
      read[name] = value;
    }
  }
  return read;
}

function listChanged() {
  const count = table.size;
  $("load-more").hidden = !table.nextCursor;
  $("empty").hidden = count > 0;
  const more = table.nextCursor ? ", more below" : "";
  $("list-summary").textContent = `${count} job${count === 1 ? "" : "s"} shown${more}.`;
}

async function loadFirstPage() {
  const generation = ++listGeneration;
  $("jobs").setAttribute("aria-busy", "true");
  try {
    const page = await api.list(filters, null, PAGE_SIZE);
    if (generation !== listGeneration) return; // a newer filter won
    table.clear();
    outside.clear();
    table.addPage(page.items, page.nextCursor);
    listChanged();
  } catch (error) {
    fail("Loading the jobs", error);
  } finally {
    if (generation === listGeneration) $("jobs").removeAttribute("aria-busy");
  }
}

async function loadMore() {
  const generation = listGeneration;
  await busy($("load-more"), async () => {
    try {
      const page = await api.list(filters, table.nextCursor, PAGE_SIZE);
      if (generation !== listGeneration) return;
      table.addPage(page.items, page.nextCursor);
      listChanged();
    } catch (error) {
      fail("Loading more jobs", error);
    }
  });
}

/** Everything shown, read again: after a reconnect (events were missed) and on Refresh. */
async function resync() {
  const generation = listGeneration;
  try {
    const page = await api.list(filters, null, Math.min(MAX_PAGE, Math.max(PAGE_SIZE, table.size)));
    if (generation !== listGeneration) return;
    table.replaceWith(page.items, page.nextCursor);
    listChanged();
  } catch (error) {
    fail("Reloading the jobs", error);
  }
  refreshStats();
}

function applyFilters(event) {
  event?.preventDefault();
  filters = readFilters();
  analytics.setFilters(filters);
  loadFirstPage();
}

/** A job read from the API goes where it belongs: updated, inserted, or out when the filters exclude it. */
function place(job) {
  if (!matchesFilters(job, filters)) {
    outside.set(job.jobId, job.status);
    if (table.remove(job.jobId)) listChanged();
    return;
  }
  outside.delete(job.jobId);
  if (!table.get(job.jobId) && !table.canHold(job)) return; // it belongs to a page not loaded yet
  const result = table.upsert(job);
  if (result === "inserted") listChanged();
  if (result === "status") announce(`${jobName(job)} ${job.status}`);
}

/** GET one job; a status event that arrives meanwhile makes the answer stale, so it is read again. */
async function refreshJob(jobId) {
  const pending = fetching.get(jobId);
  if (pending) {
    pending.again = true;
    return;
  }
  const entry = { again: true };
  fetching.set(jobId, entry);
  try {
    while (entry.again) {
      entry.again = false;
      const seq = table.get(jobId)?.seq ?? 0;
      const job = await api.get(jobId);
      if ((table.get(jobId)?.seq ?? 0) !== seq) entry.again = true;
      else place(job);
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      if (table.remove(jobId)) listChanged();
    } else {
      fail("Reading a job", error);
    }
  } finally {
    fetching.delete(jobId);
  }
}

// Live events ----------------------------------------------------------------------------

function rowTitle(jobId) {
  const job = table.get(jobId)?.job;
  return job ? jobName(job) : jobId;
}

function handleEvent(data) {
  if (typeof data.jobId !== "string") return;
  titleView.jobEvent(data);
  if (data.event === "JobDeleted") {
    const title = rowTitle(data.jobId);
    if (table.remove(data.jobId)) {
      listChanged();
      announce(`${title} deleted`);
    }
    scheduleStats();
    return;
  }
  if (data.event === "JobQueued") {
    refreshJob(data.jobId);
    scheduleStats();
    return;
  }
  const finished = FINISH_EVENTS.has(data.event);
  if (data.event !== "uploadProgress" && !finished) return;
  const { known, statusChanged } = table.applyEvent(data);
  if (!known) {
    // A job not on the page: read it once, unless it is known to be outside the filters.
    if (outside.get(data.jobId) !== data.status) refreshJob(data.jobId);
  } else if (statusChanged || finished) {
    refreshJob(data.jobId); // times, history and the filters' verdict come with the full job
  }
  if (statusChanged) announce(`${rowTitle(data.jobId)} ${data.status}`);
  if (statusChanged || finished) scheduleStats();
}

function showConnection({ state, attempt, delayMs }) {
  const node = $("connection");
  const before = liveState;
  liveState = state;
  node.dataset.state = state;
  clearInterval(timers.countdown);
  if (state === "live") {
    node.textContent = "Live";
  } else if (state === "connecting") {
    node.textContent = attempt ? `Reconnecting (attempt ${attempt + 1})…` : "Connecting…";
  } else if (state === "reconnecting") {
    const until = Date.now() + delayMs;
    const show = () => {
      const seconds = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      node.textContent = `Connection lost: reconnecting in ${seconds} s`;
    };
    show();
    timers.countdown = setInterval(show, 1000);
  } else if (state === "unavailable") {
    node.textContent = "Live updates off: no WebSocket URL configured";
  } else {
    node.textContent = "Not connected";
  }
  if (state === "live" && before !== "live") announce("Live updates connected");
  if (state === "reconnecting" && before === "live") announce("Live updates lost, reconnecting");
}

// Actions --------------------------------------------------------------------------------

function confirmAction({ title, text, confirmLabel, removeSourceOption = false }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = confirmLabel;
  $("confirm-option").hidden = !removeSourceOption;
  $("confirm-remove-source").checked = false;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        resolve({ confirmed: dialog.returnValue === "confirm", removeSource: $("confirm-remove-source").checked });
        if (opener?.isConnected) opener.focus();
      },
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/**
 * Runs `work` with `button` marked busy. The button is not disabled: a disabled button drops the
 * keyboard focus, and the person would have to find their place again.
 */
async function busy(button, work) {
  if (button.getAttribute("aria-busy") === "true") return; // a double click sends nothing twice
  button.setAttribute("aria-busy", "true");
  try {
    await work();
  } finally {
    button.removeAttribute("aria-busy");
  }
}

// The title view (title.js), opened from a row's title link.
const titleView = new TitleView($("title-view"), {
  api,
  confirm: confirmAction,
  clientId: async () => (live ? live.whoami() : null),
  notify: showNotice,
  fail,
  changed: resync,
});

// Each action: what to confirm first (destructive ones), then what to do.
const ACTIONS = {
  title: {
    run: (job) => titleView.open(job, document.activeElement),
  },

  retry: {
    async run(job, title) {
      // Our socket's id as clientId: this page hears the job's events even without subscribe-all.
      const clientId = live ? await live.whoami() : null;
      place(await api.retry(job.jobId, clientId));
      showNotice(`${title} is queued again.`);
    },
  },

  cancel: {
    confirm: (job, title) => ({
      title: `Cancel ${title}?`,
      text:
        job.status === "active"
          ? "The upload stops once its requests in flight end. Files already sent stay until you clean it up."
          : "The job has not started; it will not run.",
      confirmLabel: "Cancel the upload",
    }),
    async run(job, title) {
      const updated = await api.cancel(job.jobId);
      place(updated);
      showNotice(updated.status === "cancelled" ? `${title} is cancelled.` : `${title}: cancel requested, stopping.`);
    },
  },

  sync: {
    async run(job, title) {
      const result = await api.sync(job.jobId);
      const change = result.before === result.after ? result.after : `${result.before} → ${result.after}`;
      showNotice(`Sync of ${title}: ${result.action} (${change}). ${result.reason || ""}`.trim());
      refreshJob(job.jobId);
    },
  },

  cleanup: {
    confirm: (job, title) => ({
      title: `Clean up ${title}?`,
      text: "This aborts its open multipart uploads and deletes the objects this job wrote to the bucket.",
      confirmLabel: "Clean up",
      removeSourceOption: !job.sourceRemoved,
    }),
    async run(job, title, choice) {
      const result = await api.cleanup(job.jobId, choice.removeSource);
      showNotice(
        `Cleaned up ${title}: ${result.abortedUploads} multipart uploads aborted, ` +
          `${result.deletedObjects} objects deleted, ${result.removedFiles} files removed.`,
      );
      refreshJob(job.jobId);
    },
  },

  delete: {
    confirm: (job, title) => ({
      title: `Delete ${title}?`,
      text:
        job.status === "completed"
          ? "The job's record and history go away. Its published files stay in the bucket."
          : "The job is cleaned up first (its open uploads aborted, the files it alone wrote deleted), " +
            "then its record and history go away. Files other jobs rely on stay.",
      confirmLabel: "Delete the job",
    }),
    async run(job, title) {
      await api.remove(job.jobId);
      if (table.remove(job.jobId)) listChanged();
      showNotice(`${title} is deleted.`);
    },
  },
};

async function runAction(name, job, button) {
  const action = ACTIONS[name];
  const title = jobName(job);
  let choice = {};
  if (action.confirm) {
    choice = await confirmAction(action.confirm(job, title));
    if (!choice.confirmed) return;
  }
  await busy(button, async () => {
    try {
      await action.run(job, title, choice);
      scheduleStats();
    } catch (error) {
      fail(`${button.textContent} ${title}`, error);
    }
  });
}

async function clearJobs(event) {
  event.preventDefault();
  const status = $("clear-status").value;
  const daysText = $("clear-days").value.trim();
  const olderThanDays = daysText === "" ? null : Number(daysText);
  const which = status === "all" ? "finished" : status;
  const age = olderThanDays === null ? "" : ` older than ${olderThanDays} days`;
  const { confirmed } = await confirmAction({
    title: `Delete every ${which} job${age}?`,
    text:
      "Their records and histories go away. Failed and cancelled jobs are cleaned up first " +
      "(the files each alone wrote are deleted); completed jobs' files stay in the bucket.",
    confirmLabel: "Delete the jobs",
  });
  if (!confirmed) return;
  try {
    const result = await api.clear(status, olderThanDays);
    showNotice(`Cleared ${result.deleted} ${which} job${result.deleted === 1 ? "" : "s"}${age}.`);
    await resync();
  } catch (error) {
    fail("Clearing jobs", error);
  }
}

async function fixStuck() {
  await busy($("fix-stuck"), async () => {
    try {
      const r = await api.fixStuck();
      showNotice(
        `Fix stuck: ${r.scanned} jobs examined; ${r.requeued} re-queued, ${r.failed} failed, ${r.cancelled} cancelled.`,
      );
      await resync();
    } catch (error) {
      fail("Fixing stuck jobs", error);
    }
  });
}

// Wiring ---------------------------------------------------------------------------------

$("token-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", () => endSession("You are signed out."));
$("alert-close").addEventListener("click", () => {
  $("alert").hidden = true;
});
$("filters").addEventListener("submit", applyFilters);
$("filters").addEventListener("change", (event) => {
  if (event.target.matches("select, input[type=datetime-local]")) applyFilters();
});
$("filters").addEventListener("reset", () => setTimeout(applyFilters)); // after the form has reset its fields
$("load-more").addEventListener("click", loadMore);
$("refresh").addEventListener("click", resync);
$("fix-stuck").addEventListener("click", fixStuck);
$("clear-form").addEventListener("submit", clearJobs);
setupBulk({
  api,
  table,
  filters: () => filters,
  confirm: confirmAction,
  notify: showNotice,
  alert: showAlert,
  fail,
  refresh: resync,
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && token) refreshStats();
});

boot();
