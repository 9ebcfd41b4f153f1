// The HTTP API of SPEC 4, seen from the page: one function per route, errors as ApiError.

const JOBS = "/upload-jobs";

/** An answer the API refused, or no answer at all (status 0). `message` is for the person. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }

  /** The token is missing, wrong, expired, or not an admin's. */
  get isAuthProblem() {
    return this.status === 401 || this.status === 403;
  }

  describe() {
    if (this.status === 0) return this.message;
    return `${this.message} (${this.code}, HTTP ${this.status})`;
  }
}

async function errorFrom(response) {
  let code = response.statusText || "Error";
  let message = `The API answered HTTP ${response.status}.`;
  try {
    const body = await response.json();
    // Chalice's error body is {"Code", "Message"}; API Gateway's own is {"message"}.
    if (body && typeof body === "object") {
      code = body.Code || code;
      message = body.Message || body.message || message;
    }
  } catch {
    // not JSON: the status line says what we know
  }
  return new ApiError(response.status, code, message);
}

/** Query string of the list filters, without empty values. */
export function listQuery(filters, cursor, limit) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  if (cursor) params.set("cursor", cursor);
  if (limit) params.set("limit", String(limit));
  return params.toString();
}

/** `base` is the API's path (`/v1/studio`, `/api/v1/studio` behind a stage); `token()` returns the JWT. */
export function createApi(base, token) {
  async function request(method, path, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(base + path, init);
    } catch (error) {
      throw new ApiError(0, "NetworkError", `Could not reach the API at ${base}: ${error.message}`);
    }
    if (!response.ok) throw await errorFrom(response);
    return response.json();
  }

  const job = (id) => `${JOBS}/${encodeURIComponent(id)}`;
  const title = (type, id) => `/resources/${encodeURIComponent(type)}/${encodeURIComponent(id)}`;
  return {
    stats: () => request("GET", `${JOBS}/stats`),
    analytics: (query) => request("GET", `${JOBS}/analytics?${listQuery(query)}`),
    list: (filters, cursor, limit) => request("GET", `${JOBS}?${listQuery(filters, cursor, limit)}`),
    get: (id) => request("GET", job(id)),
    retry: (id, clientId) => request("POST", `${job(id)}/retry`, clientId ? { clientId } : {}),
    cancel: (id) => request("POST", `${job(id)}/cancel`),
    remove: (id) => request("DELETE", job(id)),
    cleanup: (id, removeSource) => request("POST", `${job(id)}/cleanup`, { removeSource }),
    sync: (id) => request("POST", `${job(id)}/sync`),
    clear: (status, olderThanDays) =>
      request("POST", `${JOBS}/clear`, olderThanDays === null ? { status } : { status, olderThanDays }),
    fixStuck: () => request("POST", `${JOBS}/fix-stuck`),
    bulk: (body) => request("POST", `${JOBS}/bulk`, body),
    websocketToken: () => request("POST", "/ws-tokens"),
    title: (type, id) => request("GET", `${title(type, id)}/uploads`),
    retryTitleFailed: (type, id, clientId) =>
      request("POST", `${title(type, id)}/retry-failed`, clientId ? { clientId } : {}),
  };
}
