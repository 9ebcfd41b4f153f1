// Bulk actions: a checkbox on each row, "select all matching the filter", and retry, cancel, clean up
// or delete over the selection through POST /upload-jobs/bulk, confirmed with the count first.

import { jobName } from "./jobs.js";

// The API's limit per call (docs/http-api.md): more matching jobs are refused whole (409).
export const BULK_LIMIT = 1000;

const ACTIONS = {
  retry: {
    verb: "Retry",
    text: "Failed and cancelled jobs are queued again.",
  },
  cancel: {
    verb: "Cancel",
    text: "Waiting jobs are cancelled at once; active ones stop once their requests in flight end.",
  },
  cleanup: {
    verb: "Clean up",
    text:
      "Failed and cancelled jobs have their open multipart uploads aborted and the objects each alone wrote " +
      "deleted. Their source files stay.",
  },
  delete: {
    verb: "Delete",
    text:
      "Finished jobs' records and histories go away; failed and cancelled ones are cleaned up first. " +
      "Completed jobs' published files stay in the bucket.",
  },
};

const plural = (count, word) => `${count.toLocaleString("en")} ${word}${count === 1 ? "" : "s"}`;

/** The answer of one bulk call in a sentence: `Retry: 3 of 4 jobs done; skipped: 1 not-retryable.` */
export function summarize(verb, answer) {
  const parts = [`${verb}: ${answer.done} of ${plural(answer.matched, "job")} done`];
  const skipped = Object.entries(answer.skipped || {});
  if (skipped.length) parts.push(`skipped: ${skipped.map(([reason, count]) => `${count} ${reason}`).join(", ")}`);
  if (answer.failed?.length) parts.push(`${answer.failed.length} failed`);
  if (answer.notReached?.length) parts.push(`${answer.notReached.length} not reached in time: run it again`);
  return `${parts.join("; ")}.`;
}

/**
 * Wires the bulk bar to the table. `context` gives what the page owns: `api`, `table`, `filters()`
 * (the list filters in use), `confirm({title, text, confirmLabel})`, `notify(text)`, `alert(text)`,
 * `fail(what, error)` and `refresh()` (reload the list after an action).
 */
export function setupBulk(context) {
  const { api, table } = context;
  const $ = (id) => document.getElementById(id);
  const bar = $("bulk-bar");
  const count = $("bulk-count");
  const shown = $("bulk-select-shown");
  const matchingButton = $("bulk-select-matching");
  const buttons = [...bar.querySelectorAll("button[data-bulk]")];
  // null: the checked rows are the selection; else every job the filter matched when counted.
  let matching = null;

  const boxes = () => [...table.tbody.querySelectorAll("input.bulk-select")];
  const checkedIds = () => boxes().filter((box) => box.checked).map((box) => box.dataset.jobId);
  const selectedCount = () => (matching ? matching.count : checkedIds().length);

  function render() {
    const all = boxes();
    const checked = all.filter((box) => box.checked).length;
    shown.checked = all.length > 0 && checked === all.length;
    shown.indeterminate = checked > 0 && checked < all.length;
    if (matching) {
      count.textContent = `All ${plural(matching.count, "job")} matching the filter are selected.`;
    } else {
      count.textContent = checked ? `${plural(checked, "job")} selected.` : "No job selected.";
    }
    matchingButton.textContent = matching ? "Clear the selection" : "Select all matching the filter";
    for (const button of buttons) button.disabled = selectedCount() === 0;
  }

  function clearSelection() {
    matching = null;
    for (const box of boxes()) box.checked = false;
    render();
  }

  /** A checkbox in the row's first cell; called by the table for each row it inserts. */
  function addRow(tr, job) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.className = "bulk-select";
    box.dataset.jobId = job.jobId;
    box.setAttribute("aria-label", `Select ${jobName(job)}`);
    box.checked = matching !== null; // a row that arrives while everything matching is selected
    tr.querySelector("td")?.prepend(box);
    render();
  }

  async function selectMatching() {
    if (matching) {
      clearSelection();
      return;
    }
    try {
      // A count only (dryRun): the confirmation states it before anything is changed.
      const answer = await api.bulk({ action: "retry", filter: context.filters(), dryRun: true });
      if (answer.matched > BULK_LIMIT) {
        context.alert(
          `${plural(answer.matched, "job")} match the filter, more than the ${BULK_LIMIT.toLocaleString("en")} ` +
            "one bulk action may change: narrow the filter (for example by the creation dates).",
        );
        return;
      }
      matching = { count: answer.matched };
      for (const box of boxes()) box.checked = true;
      render();
    } catch (error) {
      context.fail("Counting the jobs that match the filter", error);
    }
  }

  async function run(name, button) {
    const action = ACTIONS[name];
    const selection = matching ? { filter: context.filters() } : { jobIds: checkedIds() };
    const total = selectedCount();
    if (!total) return;
    const what = matching ? `all ${plural(total, "job")} matching the filter` : plural(total, "selected job");
    const { confirmed } = await context.confirm({
      title: `${action.verb} ${what}?`,
      text: `${action.text} Jobs whose state does not allow it are skipped.`,
      confirmLabel: `${action.verb} ${plural(total, "job")}`,
    });
    if (!confirmed) return;
    button.setAttribute("aria-busy", "true");
    try {
      const answer = await api.bulk({ action: name, ...selection });
      context.notify(summarize(action.verb, answer));
      if (answer.failed.length) {
        const first = answer.failed.slice(0, 3).map((f) => `${f.jobId}: ${f.Message} (${f.Code})`);
        context.alert(`${action.verb} failed for ${plural(answer.failed.length, "job")}: ${first.join("; ")}`);
      }
      clearSelection();
      await context.refresh();
    } catch (error) {
      context.fail(`${action.verb} ${what}`, error);
    } finally {
      button.removeAttribute("aria-busy");
    }
  }

  table.tbody.addEventListener("change", (event) => {
    if (!event.target.matches("input.bulk-select")) return;
    // Unchecking one row leaves "everything matching": what stays checked is the selection.
    if (matching && !event.target.checked) matching = null;
    render();
  });
  shown.addEventListener("change", () => {
    matching = null;
    for (const box of boxes()) box.checked = shown.checked;
    render();
  });
  matchingButton.addEventListener("click", selectMatching);
  for (const button of buttons) button.addEventListener("click", () => run(button.dataset.bulk, button));
  // Other filters, other rows: a selection never outlives the list it was made in.
  const filtersForm = $("filters");
  for (const type of ["submit", "change", "reset"]) filtersForm.addEventListener(type, clearSelection);
  // Rows leave the table (deleted, filtered out): the count follows.
  new MutationObserver(render).observe(table.tbody, { childList: true });
  table.onRow = addRow;
  render();
}
