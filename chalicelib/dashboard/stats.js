// The statistics cards, from GET /upload-jobs/stats.

import { formatCount, formatDuration, formatRate } from "./format.js";

const QUEUE_NAMES = { "upload-hls-to-s3": "uploads", "upload-master-playlist": "master" };

export function renderStats(root, stats) {
  const set = (name, text) => {
    const node = root.querySelector(`[data-stat="${name}"]`);
    if (node) node.textContent = text;
  };
  for (const name of ["total", "waiting", "active", "completed", "failed", "cancelled"]) {
    set(name, formatCount(stats[name]));
  }
  const metrics = stats.metrics || {};
  set("completionRate", formatRate(metrics.completionRate));
  set("failureRate", formatRate(metrics.failureRate));
  const average = metrics.avgDurationSeconds;
  set("completedDetail", average === null || average === undefined ? "" : `${formatDuration(average)} on average`);

  const queues = Object.entries(stats.queues || {});
  if (!queues.length) {
    set("queueDepth", "–");
    set("queueDetail", "queues did not answer");
    set("deadLetter", "–");
    return;
  }
  const sum = (field) => queues.reduce((total, [, depth]) => total + (depth[field] || 0), 0);
  set("queueDepth", formatCount(sum("visible") + sum("inFlight")));
  set("queueDetail", `${formatCount(sum("visible"))} ready · ${formatCount(sum("inFlight"))} in flight`);
  const detail = root.querySelector('[data-stat="queueDetail"]');
  detail.title = queues
    .map(([name, depth]) => `${QUEUE_NAMES[name] || name}: ${depth.visible} ready, ${depth.inFlight} in flight`)
    .join("; ");
  set("deadLetter", formatCount(sum("deadLetter")));
}
