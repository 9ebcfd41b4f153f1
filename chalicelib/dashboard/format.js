// How numbers, sizes, durations and times read on the page.

const UNITS = ["B", "KB", "MB", "GB", "TB"];

export function formatBytes(value) {
  let size = Number(value) || 0;
  let unit = 0;
  while (size >= 1024 && unit < UNITS.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${size} B` : `${size.toFixed(size < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const total = Math.max(0, seconds);
  if (total < 60) return `${total.toFixed(total < 10 ? 1 : 0)} s`;
  const whole = Math.round(total);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  if (hours) return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  return `${minutes} min ${String(rest).padStart(2, "0")} s`;
}

const pad = (n) => String(n).padStart(2, "0");

/** Local date and time, `["2024-05-01", "14:03:07"]`: sortable, the same width on every row. */
export function timeParts(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return [iso || "–", ""];
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return [day, `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`];
}

export function formatTime(iso) {
  return timeParts(iso).join(" ").trim();
}

export function formatRate(rate) {
  if (rate === null || rate === undefined) return "–";
  return `${(rate * 100).toFixed(1)} %`;
}

export function formatCount(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US");
}

const JOB_TYPES = {
  "upload-hls-to-s3": "HLS rendition",
  "upload-subtitle-to-s3": "Subtitle",
  "upload-video-to-s3": "Video file",
  "upload-master-playlist": "Master playlist",
};

export function jobTypeName(jobType) {
  return JOB_TYPES[jobType] || jobType || "–";
}
