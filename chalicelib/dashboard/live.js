// The page's one WebSocket (SPEC 8): subscribe to every job, hand events over, reconnect with backoff.
// The URL carries a token, and URLs end up in access logs: each (re)connect first asks the API for a
// WebSocket token of a few minutes (POST /ws-tokens) instead of putting the admin token there. The
// server closes the socket when that token expires (close code 1008); the page then reconnects with a new one.

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
const WHOAMI_TIMEOUT_MS = 3000;
// API Gateway closes a WebSocket idle for 10 minutes.
const KEEPALIVE_MS = 5 * 60 * 1000;
// The server's close when the connection's token expires (RFC 6455 policy violation): renew at once.
const TOKEN_EXPIRED_CODE = 1008;
// ...unless it had barely opened (a clock off, a token already stale): then back off as for any failure.
const MIN_LIVE_MS_FOR_RENEWAL = 10 * 1000;

/** Delay before reconnect attempt `attempt` (0-based): doubling, capped, with jitter so clients spread out. */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * states reported to onState({state, attempt, delayMs}):
 *   "connecting", "live", "reconnecting" (waiting delayMs before attempt), "unavailable" (no URL), "stopped".
 */
export class LiveConnection {
  /** `fetchToken()` resolves to a fresh WebSocket token (rejects when the API refuses or cannot be reached). */
  constructor(url, fetchToken, { onEvent, onState, onReconnect }) {
    this.url = url;
    this.fetchToken = fetchToken;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onReconnect = onReconnect;
    this.socket = null;
    this.attempt = 0;
    this.everOpened = false;
    this.stopped = true;
    this.timer = null;
    this.keepalive = null;
    this.connectionId = null;
    this.whoamiWaiters = [];
    this.openedAt = 0;
    this.generation = 0; // bumped by stop() and each connect(): a token fetched for an older one is dropped
  }

  start() {
    if (!this.url) {
      this.onState({ state: "unavailable" });
      return;
    }
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.generation += 1;
    clearTimeout(this.timer);
    clearInterval(this.keepalive);
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
    this.forgetIdentity();
    this.onState({ state: "stopped" });
  }

  async connect() {
    const generation = ++this.generation;
    this.onState({ state: "connecting", attempt: this.attempt });
    let token;
    try {
      token = await this.fetchToken();
    } catch {
      if (generation === this.generation && !this.stopped) this.retryLater();
      return;
    }
    if (generation !== this.generation || this.stopped) return;
    const separator = this.url.includes("?") ? "&" : "?";
    const socket = new WebSocket(`${this.url}${separator}token=${encodeURIComponent(token)}`);
    this.socket = socket;
    socket.addEventListener("open", () => this.opened(socket));
    socket.addEventListener("message", (message) => this.received(message));
    socket.addEventListener("close", (event) => this.closed(socket, event.code));
  }

  opened(socket) {
    if (socket !== this.socket) return;
    const reconnected = this.everOpened;
    this.everOpened = true;
    this.attempt = 0;
    this.openedAt = Date.now();
    this.send({ action: "subscribe", all: true });
    this.send({ action: "whoami" });
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => this.send({ action: "ping" }), KEEPALIVE_MS);
    this.onState({ state: "live" });
    // Events sent while we were away are lost: the page reloads what it shows.
    if (reconnected && this.onReconnect) this.onReconnect();
  }

  closed(socket, code) {
    if (socket !== this.socket) return;
    clearInterval(this.keepalive);
    this.socket = null;
    this.forgetIdentity();
    if (this.stopped) return;
    // A socket that was live and ended with its token is not a failure: connect again with a new token.
    const livedMs = Date.now() - this.openedAt;
    if (code === TOKEN_EXPIRED_CODE && livedMs >= MIN_LIVE_MS_FOR_RENEWAL) this.connect();
    else this.retryLater();
  }

  retryLater() {
    const delayMs = backoffDelay(this.attempt);
    this.attempt += 1;
    this.onState({ state: "reconnecting", attempt: this.attempt, delayMs });
    this.timer = setTimeout(() => this.connect(), delayMs);
  }

  received(message) {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return; // not one of SPEC 8's messages
    }
    if (!data || typeof data.event !== "string") return;
    if (data.event === "whoami") {
      this.connectionId = data.connectionId || null;
      this.whoamiWaiters.splice(0).forEach((resolve) => resolve(this.connectionId));
      return;
    }
    this.onEvent(data);
  }

  send(payload) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(payload));
  }

  forgetIdentity() {
    this.connectionId = null;
    this.whoamiWaiters.splice(0).forEach((resolve) => resolve(null));
  }

  /** This connection's id (for a retry's clientId), or null when the socket is not live. */
  whoami() {
    if (this.connectionId) return Promise.resolve(this.connectionId);
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.whoamiWaiters.push(resolve);
      this.send({ action: "whoami" });
      setTimeout(() => {
        const index = this.whoamiWaiters.indexOf(resolve);
        if (index >= 0) {
          this.whoamiWaiters.splice(index, 1);
          resolve(null);
        }
      }, WHOAMI_TIMEOUT_MS);
    });
  }
}
