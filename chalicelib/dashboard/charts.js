// The analytics panel: GET /upload-jobs/analytics drawn as charts with uPlot (vendored as
// uPlot.iife.min.js, loaded by index.html as a classic script: it defines window.uPlot).
// It asks the API only while open, so a closed panel costs nothing.

import { formatBytes, formatCount, formatDuration, jobTypeName } from "./format.js";

const HOUR_MS = 3600000;
const MAX_BUCKETS = 400; // the API refuses more (docs/operations.md)
const PLOT_HEIGHT = 190;
const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif';
// The list's filters that the analytics route takes too; the list's created from/to give way to the range.
const SHARED_FILTERS = {
  q: "search",
  status: "status",
  type: "resource",
  jobType: "job type",
  uploadType: "upload type",
  contentType: "content",
};
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];
// Drawn widest first, so each narrower, smaller percentile stays visible in front of the one above it.
const PERCENTILES = [
  ["p99", 0.62, "--percentile-99"],
  ["p95", 0.44, "--percentile-95"],
  ["p50", 0.26, "--accent"],
];

/** The route's query: the list's shared filters, `from` the range before now, the bucket size. */
function analyticsQuery(filters, rangeHours, bucket, now = Date.now()) {
  const query = {};
  for (const name of Object.keys(SHARED_FILTERS)) {
    if (filters[name]) query[name] = filters[name];
  }
  query.from = new Date(now - rangeHours * HOUR_MS).toISOString();
  query.bucket = bucket;
  return query;
}

/** The totals of the window: what the summary line says. */
function totals(answer) {
  const sum = (field) => answer.buckets.reduce((total, bucket) => total + bucket[field], 0);
  return {
    created: sum("created"),
    completed: sum("completed"),
    failed: sum("failed"),
    cancelled: sum("cancelled"),
    bytesUploaded: sum("bytesUploaded"),
  };
}

/** A colour of style.css (the panel's own, or the page's), so the charts match the cards. */
function cssColor(name) {
  return getComputedStyle(document.getElementById("analytics")).getPropertyValue(name).trim();
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const pad = (n) => String(n).padStart(2, "0");

/** A bucket's start in UTC, as the API counts: "2026-12-03 14:00". */
function utcLabel(seconds) {
  const d = new Date(seconds * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:00`;
}

/** MiB/s with the digits that matter: a few small uploads in an hour are a tiny rate, not zero. */
function formatMiBps(value) {
  return value >= 100 ? value.toFixed(0) : String(Number(value.toPrecision(3)));
}

/** An axis label of a duration: short, so it fits beside the plot ("90 s", "2.5 min", "1.2 h"). */
function axisDuration(seconds) {
  if (seconds < 120) return `${+seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${+(seconds / 60).toFixed(1)} min`;
  return `${+(seconds / 3600).toFixed(1)} h`;
}

function axis(extra = {}) {
  const grid = cssColor("--line");
  const muted = cssColor("--muted");
  return { stroke: muted, font: FONT, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, ...extra };
}

/** Options both time charts share: UTC buckets, a bucket's half-width of room on each side, y from 0. */
function timeOptions(answer, series, yAxis) {
  const half = (answer.bucket === "day" ? 24 : 1) * 1800;
  return {
    height: PLOT_HEIGHT,
    tzDate: (seconds) => window.uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    scales: {
      x: { time: true, range: (u, min, max) => [min - half, max + half] },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    cursor: { drag: { x: false, y: false, setScale: false } },
    axes: [axis(), axis(yAxis)],
    series: [{ label: "Bucket (UTC)", value: (u, v) => (v == null ? "–" : utcLabel(v)) }, ...series],
  };
}

function throughputChart(answer, times) {
  const accent = cssColor("--accent");
  const options = timeOptions(
    answer,
    [
      {
        label: "Throughput",
        stroke: accent,
        fill: cssColor("--active-bg"),
        width: 2,
        points: { show: answer.buckets.length <= 60 },
        value: (u, v) => (v == null ? "–" : `${formatMiBps(v)} MiB/s`),
      },
    ],
    { size: 60, values: (u, splits) => splits.map(formatMiBps) },
  );
  return [options, [times, answer.buckets.map((b) => b.throughputMiBps)]];
}

function outcomesChart(answer, times) {
  const bars = (align) => window.uPlot.paths.bars({ size: [0.38, 28], align });
  const series = [
    ["Completed", "completed", "--completed-bar", -1],
    ["Failed", "failed", "--failed", 1],
  ].map(([label, , color, align]) => ({
    label,
    stroke: cssColor(color),
    fill: cssColor(color),
    width: 0,
    paths: bars(align),
    points: { show: false },
    value: (u, v) => (v == null ? "–" : formatCount(v)),
  }));
  const options = timeOptions(answer, series, { size: 48, incrs: COUNT_STEPS });
  return [options, [times, answer.buckets.map((b) => b.completed), answer.buckets.map((b) => b.failed)]];
}

function durationsChart(types, durations) {
  const indices = types.map((_, i) => i);
  const series = PERCENTILES.map(([name, size, color]) => ({
    label: name,
    stroke: cssColor(color),
    fill: cssColor(color),
    width: 0,
    paths: window.uPlot.paths.bars({ size: [size, 90], align: 0 }),
    points: { show: false },
    value: (u, v) => formatDuration(v),
  }));
  const options = {
    height: PLOT_HEIGHT,
    scales: {
      x: { time: false, range: () => [-0.5, types.length - 0.5] },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    cursor: { drag: { x: false, y: false, setScale: false } },
    axes: [
      axis({
        splits: () => indices,
        values: (u, splits) => splits.map((i) => jobTypeName(types[i])),
        grid: { show: false },
      }),
      axis({ size: 64, values: (u, splits) => splits.map(axisDuration) }),
    ],
    series: [
      { label: "Job type", value: (u, i) => (i == null ? "–" : jobTypeName(types[i])) },
      ...series,
    ],
  };
  const data = [indices, ...PERCENTILES.map(([name]) => types.map((type) => durations[type][name]))];
  return [options, data];
}

export class AnalyticsPanel {
  /**
   * `root` is the #analytics section; `load(query)` calls the route; `onError(error)` tells the person.
   */
  constructor(root, { load, onError }) {
    this.root = root;
    this.load = load;
    this.onError = onError;
    this.details = root.querySelector("details");
    this.range = root.querySelector("#a-range");
    this.bucket = root.querySelector("#a-bucket");
    this.charts = root.querySelector(".charts");
    this.filters = {};
    this.plots = [];
    this.shape = null; // what the drawn charts were built for (see render)
    this.generation = 0;
    this.details.addEventListener("toggle", () => this.refresh());
    this.range.addEventListener("change", () => {
      this.fitBucket();
      this.refresh();
    });
    this.bucket.addEventListener("change", () => this.refresh());
    new ResizeObserver(() => this.resize()).observe(this.charts);
    this.showScope();
  }

  /** A range too long to count by hour is counted by day (the API's bucket limit). */
  fitBucket() {
    const hourly = this.bucket.querySelector('option[value="hour"]');
    hourly.disabled = Number(this.range.value) > MAX_BUCKETS;
    if (hourly.disabled) this.bucket.value = "day";
  }

  setFilters(filters) {
    this.filters = filters;
    this.showScope();
    this.refresh();
  }

  showScope() {
    const shown = Object.entries(SHARED_FILTERS)
      .filter(([name]) => this.filters[name])
      .map(([name, words]) => `${words} “${this.filters[name]}”`);
    this.root.querySelector("#analytics-scope").textContent = shown.length
      ? `Jobs matching the list's ${shown.join(", ")}.`
      : "All jobs (the list's filters apply here too, its created from/to aside).";
  }

  /** Reads and draws the analytics again, when the panel is open; a newer call wins over an older one. */
  async refresh() {
    if (!this.details.open) return;
    const generation = ++this.generation;
    this.charts.setAttribute("aria-busy", "true");
    try {
      const answer = await this.load(analyticsQuery(this.filters, Number(this.range.value), this.bucket.value));
      if (generation !== this.generation || !this.details.open) return;
      this.render(answer);
    } catch (error) {
      if (generation === this.generation) this.onError(error);
    } finally {
      if (generation === this.generation) this.charts.setAttribute("aria-busy", "false");
    }
  }

  /** The session ended: nothing of it stays on the page. */
  clear() {
    this.generation += 1;
    this.details.open = false;
    this.destroyPlots();
    this.root.querySelector("#analytics-summary").textContent = "";
    this.root.querySelector("#duration-table tbody").replaceChildren();
    this.root.querySelector("#failure-reasons").replaceChildren();
  }

  destroyPlots() {
    for (const plot of this.plots) plot.destroy();
    this.plots = [];
    this.shape = null;
  }

  render(answer) {
    if (!window.uPlot) throw new Error("the chart library (uPlot.iife.min.js) did not load");
    this.renderSummary(answer);
    const times = answer.buckets.map((b) => Date.parse(b.start) / 1000);
    const types = Object.keys(answer.durations);
    const charts = [
      ["#chart-throughput", throughputChart(answer, times)],
      ["#chart-outcomes", outcomesChart(answer, times)],
    ];
    if (types.length) charts.push(["#chart-durations", durationsChart(types, answer.durations)]);
    // The same buckets and job types (a refresh as jobs finish): new numbers in the same charts,
    // so the person's cursor and legend stay where they are.
    const shape = [answer.bucket, times[0], times.length, ...types].join(" ");
    if (shape === this.shape) {
      charts.forEach(([, [, data]], index) => this.plots[index].setData(data));
    } else {
      this.destroyPlots();
      for (const [selector, [options, data]] of charts) this.plot(selector, options, data);
      if (!types.length) {
        const empty = el("p", "empty", "No job completed in this range.");
        this.root.querySelector("#chart-durations").replaceChildren(empty);
      }
      this.shape = shape;
    }
    this.renderDurationTable(types, answer.durations);
    this.renderReasons(answer.failureReasons);
  }

  plot(selector, options, data) {
    const target = this.root.querySelector(selector);
    target.replaceChildren();
    this.plots.push(new window.uPlot({ ...options, width: target.clientWidth || 400 }, data, target));
  }

  resize() {
    for (const plot of this.plots) {
      const width = plot.root.parentElement.clientWidth;
      if (width && width !== plot.width) plot.setSize({ width, height: PLOT_HEIGHT });
    }
  }

  renderSummary(answer) {
    const sums = totals(answer);
    const node = this.root.querySelector("#analytics-summary");
    const part = (name, text) => {
      const span = el("span", "", text);
      span.dataset.total = name;
      return span;
    };
    const backlog = answer.backlog;
    const oldest = backlog.oldestWaitingSeconds;
    const wait = oldest == null ? "" : `, the longest waiting for ${formatDuration(oldest)}`;
    node.replaceChildren(
      part("created", formatCount(sums.created)), " created, ",
      part("completed", formatCount(sums.completed)), " completed, ",
      part("failed", formatCount(sums.failed)), " failed, ",
      part("cancelled", formatCount(sums.cancelled)), " cancelled, ",
      part("bytesUploaded", formatBytes(sums.bytesUploaded)), " uploaded in the range. Now ",
      part("waiting", formatCount(backlog.waiting)), " waiting and ",
      part("active", formatCount(backlog.active)), ` active${wait}.`,
    );
  }

  renderDurationTable(types, durations) {
    const rows = types.map((type) => {
      const row = el("tr");
      row.dataset.jobType = type;
      row.append(el("th", "", jobTypeName(type)));
      row.firstChild.scope = "row";
      for (const name of ["p50", "p95", "p99"]) {
        const cell = el("td", "", formatDuration(durations[type][name]));
        cell.dataset.percentile = name;
        cell.dataset.seconds = String(durations[type][name]);
        row.append(cell);
      }
      return row;
    });
    this.root.querySelector("#duration-table").hidden = !rows.length;
    this.root.querySelector("#duration-table tbody").replaceChildren(...rows);
  }

  renderReasons(reasons) {
    const list = this.root.querySelector("#failure-reasons");
    if (!reasons.length) {
      list.replaceChildren(el("li", "empty", "No job failed in this range."));
      return;
    }
    const most = reasons[0].count;
    list.replaceChildren(
      ...reasons.map((reason) => {
        const item = el("li", "reason");
        item.dataset.errorCode = reason.errorCode ?? "";
        const head = el("div", "reason-head");
        head.append(
          el("code", "", reason.errorCode ?? "no code"),
          el("span", "reason-count", formatCount(reason.count)),
        );
        const bar = el("span", "reason-bar");
        bar.style.width = `${(100 * reason.count) / most}%`; // CSSOM, which the CSP's style-src allows
        const example = el("p", "reason-example", reason.example.failedReason || "");
        example.title = `Newest: job ${reason.example.jobId}`;
        item.append(head, bar, example);
        return item;
      }),
    );
  }
}
