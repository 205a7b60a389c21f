// Calls to the service's public API, from the page's own origin only.
//
// URLs are relative to the page ("v1/schemes"), so the page works wherever the
// service is mounted. A refused request becomes a ProblemError carrying the
// RFC 9457 problem the service answered (title, detail, errors, instance).

let apiKey = "";

/** Use `key` (a string, "" for none) as the bearer token of later requests. */
export function setApiKey(key) {
  apiKey = key.trim();
}

/** A refusal by the service: `problem` is its application/problem+json body. */
export class ProblemError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ProblemError";
    this.status = status;
    this.problem = problem;
  }
}

/** The service could not be reached, or answered something that is not JSON. */
export class TransportError extends Error {
  constructor(message) {
    super(message);
    this.name = "TransportError";
  }
}

/** The URL (relative to the page) of GET `path` with `params` as its query. */
export function queryUrl(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** GET `url` (from queryUrl) and return the parsed JSON answer. */
export function getJSON(url, signal) {
  return send(url, { method: "GET", signal });
}

/** POST `body` as JSON to `path` and return the parsed JSON answer. */
export function postJSON(path, body, signal) {
  return send(path, {
    method: "POST",
    signal,
    body: JSON.stringify(body),
    headers: { "Content-Type": "application/json" },
  });
}

async function send(url, init) {
  const headers = { Accept: "application/json", ...(init.headers || {}) };
  if (apiKey) {
    headers.Authorization = `Bearer ${apiKey}`;
  }

  let response;
  try {
    response = await fetch(url, { ...init, headers, credentials: "same-origin" });
  } catch (error) {
    if (error.name === "AbortError") {
      throw error;
    }
    throw new TransportError(`The service could not be reached (${error.message}).`);
  }

  const type = response.headers.get("Content-Type") || "";
  let body = null;
  if (type.includes("json")) {
    try {
      body = await response.json();
    } catch (error) {
      throw new TransportError(
        `The service answered ${response.status} with JSON the page cannot read (${error.message}).`,
      );
    }
  }
  if (!response.ok) {
    if (body && typeof body === "object") {
      throw new ProblemError(response.status, body);
    }
    throw new TransportError(
      `The service answered ${response.status} ${response.statusText} without a problem document.`,
    );
  }
  if (body === null) {
    throw new TransportError(`The service answered ${response.status} with ${type || "no content type"}, not JSON.`);
  }

  return body;
}
