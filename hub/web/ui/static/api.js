// The hub's APIs, called with the user's bearer token (kept in sessionStorage: gone when the
// tab closes). A 401 from any call shows the login again with the hub's Status message.

const KEY = "fleetplane.token";
let onUnauthorized = () => {};

export function token() {
  return sessionStorage.getItem(KEY) || "";
}
export function setToken(t) {
  sessionStorage.setItem(KEY, t);
}
export function forgetToken() {
  sessionStorage.removeItem(KEY);
}
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/** An error the hub answered: its Kubernetes Status (message, reason, code). */
export class HubError extends Error {
  constructor(status, code) {
    super(status?.message || `the hub answered ${code}`);
    this.status = status || {};
    this.code = code;
  }
}

async function statusOf(r) {
  try {
    return await r.json();
  } catch {
    return { message: `the hub answered ${r.status} ${r.statusText}` };
  }
}

/** GET (or `init.method`) a path of the hub; the parsed JSON, or a HubError. */
export async function api(path, init = {}) {
  const headers = { Accept: "application/json", ...(init.headers || {}), Authorization: `Bearer ${token()}` };
  const r = await fetch(path, { ...init, headers });
  if (!r.ok) {
    const status = await statusOf(r);
    if (r.status === 401) onUnauthorized(status.message || "Unauthorized");
    throw new HubError(status, r.status);
  }
  return r.json();
}

/**
 * Follow a Kubernetes watch: `list()` reads the current state (and renders it) and returns
 * the resourceVersion it is consistent with; then `watchPath?watch=1&resourceVersion=…`
 * streams JSON lines to `onEvent(type, object)`. A stream that ends is resumed from the last
 * resourceVersion seen; a 410 (compacted) lists again. `onLive(bool)` tells whether the
 * stream is open. Stops when `signal` aborts.
 */
export async function follow(watchPath, { list, onEvent, onLive, signal }) {
  let rv = null;
  let delay = 500;
  while (!signal.aborted) {
    try {
      if (rv === null) {
        rv = String((await list()) || "0");
      }
      const sep = watchPath.includes("?") ? "&" : "?";
      const url = `${watchPath}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}`;
      const r = await fetch(url, { signal, headers: { Authorization: `Bearer ${token()}` } });
      if (r.status === 410) throw new HubError(await statusOf(r), 410); // compacted: list again, after the pause
      if (!r.ok) {
        const status = await statusOf(r);
        if (r.status === 401) onUnauthorized(status.message || "Unauthorized");
        throw new HubError(status, r.status);
      }
      onLive(true);
      delay = 500;
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line) continue;
          const ev = JSON.parse(line);
          if (ev.type === "ERROR") {
            if (ev.object?.code === 410) rv = null;
            throw new HubError(ev.object, ev.object?.code || 500);
          }
          const next = ev.object?.metadata?.resourceVersion;
          if (next) rv = next;
          if (ev.type !== "BOOKMARK") onEvent(ev.type, ev.object);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof HubError && err.code === 401) return;
      if (err instanceof HubError && err.code === 410) rv = null;
    }
    onLive(false);
    if (signal.aborted) return;
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 10000);
  }
}
