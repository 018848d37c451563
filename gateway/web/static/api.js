// The jobs API client of the page: every request goes through one fetch
// wrapper that adds the Bearer key when one is set and turns error answers
// into APIError values.

import { EventStreamParser, readEventStream } from "./sse.js";

/** Job statuses after which nothing changes any more. */
export const TERMINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

/** An error answer of the service, or a network failure (status 0). */
export class APIError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the service was not reached
   * @param {string} message a message fit to show the user
   * @param {string} [field] the form field the service named, if any
   */
  constructor(status, message, field = "", problems = []) {
    super(message);
    this.name = "APIError";
    this.status = status;
    this.field = field;
    /** Every problem the service listed, as {field, message}. */
    this.problems = problems;
  }
}

const FIELDS = ["target", "reference", "mask", "prompt", "strength", "seed"];

/** Reads the message (and the field it names) out of an error body. */
async function errorFrom(res) {
  let message = "";
  let field = "";
  let text = "";
  let problems = [];
  try {
    text = (await res.text()).slice(0, 4096);
  } catch {
    // keep the status text
  }
  try {
    const body = JSON.parse(text);
    const err = body && typeof body === "object" ? (body.error ?? body) : null;
    if (typeof err === "string") message = err;
    else if (err && typeof err === "object") {
      message = String(err.message ?? err.detail ?? err.error ?? "");
      field = String(err.field ?? err.param ?? body.field ?? "");
      if (Array.isArray(err.problems)) {
        problems = err.problems
          .filter((p) => p && typeof p.message === "string")
          .map((p) => ({ field: typeof p.field === "string" ? p.field : "", message: p.message }));
      }
    }
    if (!message && typeof body.message === "string") message = body.message;
    if (!field && typeof body.field === "string") field = body.field;
  } catch {
    if (text && !/^\s*</.test(text)) message = text.trim();
  }
  if (!field) field = problems.find((p) => p.field)?.field ?? "";
  if (!field) field = FIELDS.find((f) => new RegExp(`^${f}\\b`, "i").test(message)) ?? "";
  if (!message) message = problems.map((p) => p.message).join(" ");
  if (!message) message = `${res.status} ${res.statusText || "error"}`.trim();
  return new APIError(res.status, message, field, problems);
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/**
 * Normalizes a progress value to 0..1, or null when unknown. The service may
 * send a fraction, a percentage, or {value, max} / {step, steps}.
 */
export function progressFraction(p) {
  if (p == null) return null;
  if (typeof p === "number" && Number.isFinite(p)) return p > 1 ? Math.min(1, p / 100) : Math.max(0, p);
  if (typeof p === "object") {
    const v = p.value ?? p.step ?? p.current ?? p.done;
    const m = p.max ?? p.steps ?? p.total;
    if (typeof v === "number" && typeof m === "number" && m > 0) return Math.min(1, Math.max(0, v / m));
    if (typeof p.fraction === "number") return progressFraction(p.fraction);
    if (typeof p.percent === "number") return Math.min(1, Math.max(0, p.percent / 100));
  }
  return null;
}

/**
 * Client of the Image Brush jobs API. Paths are relative to the page (the
 * service serves the page at the root of the API), so the page also works
 * behind a proxy that mounts the service under a path.
 */
export class Client {
  /** @param {string} [base] the API's root URL; the page's folder by default */
  constructor(base = document.baseURI) {
    this.base = new URL(".", base);
    this.key = "";
  }

  /**
   * Where to fetch a URL the service handed out. Job URLs are fetched from
   * the service the page came from: the service may write them with the
   * public address it gives RunPod, which this browser may not reach (and
   * the page's security policy allows its own origin only).
   */
  resolve(url) {
    const u = new URL(url, this.base);
    const i = u.pathname.indexOf("/v1/jobs/");
    return i >= 0 ? new URL(`.${u.pathname.slice(i)}${u.search}`, this.base).href : u.href;
  }

  async fetch(path, init = {}) {
    const headers = new Headers(init.headers);
    if (this.key) headers.set("Authorization", `Bearer ${this.key}`);
    let res;
    try {
      res = await fetch(this.resolve(path), { ...init, headers, cache: "no-store" });
    } catch (e) {
      if (init.signal?.aborted) throw e;
      throw new APIError(0, "Could not reach the service. Check your connection and try again.");
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  async json(path, init) {
    const res = await this.fetch(path, { ...init, headers: { Accept: "application/json", ...init?.headers } });
    return res.json();
  }

  /** Submits a job; form holds target, reference, mask, prompt, strength, seed. */
  submit(form, signal) {
    return this.json("v1/jobs", { method: "POST", body: form, signal });
  }

  job(id, signal) {
    return this.json(`v1/jobs/${encodeURIComponent(id)}`, { signal });
  }

  /** The package's description: its params, limits and workflow. */
  package(signal) {
    return this.json("v1/package", { signal });
  }

  cancel(id) {
    return this.fetch(`v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
  }

  /**
   * One page of the caller's jobs, newest first.
   * @returns {Promise<{jobs: object[], next: string}>}
   */
  async list({ limit = 12, cursor = "" } = {}, signal) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set("cursor", cursor);
    const body = await this.json(`v1/jobs?${q}`, { signal });
    const jobs = Array.isArray(body) ? body : (body.jobs ?? body.data ?? body.items ?? []);
    const next = Array.isArray(body) ? "" : (body.next_cursor ?? body.next ?? body.cursor ?? "");
    return { jobs, next: typeof next === "string" ? next : "" };
  }

  /** Fetches a file (an output) as a Blob, with the key when one is set. */
  async blob(url, signal) {
    const res = await this.fetch(url, { signal });
    return res.blob();
  }

  /**
   * Follows a job until it ends, calling onUpdate with every new state, and
   * returns the final job. Uses the events stream; when the service has none,
   * or the stream keeps failing, polls the job instead.
   */
  async watch(id, onUpdate, signal) {
    let job = null;
    const update = (patch) => {
      job = { ...(job ?? {}), ...patch };
      onUpdate(job);
    };
    let streaming = true;
    let failures = 0;
    const parser = new EventStreamParser();
    while (!signal.aborted) {
      if (streaming) {
        try {
          const headers = { Accept: "text/event-stream" };
          // A reconnection asks only for what is newer than what it saw.
          if (parser.lastEventId) headers["Last-Event-ID"] = parser.lastEventId;
          const res = await this.fetch(`v1/jobs/${encodeURIComponent(id)}/events`, { headers, signal });
          if (!(res.headers.get("Content-Type") ?? "").startsWith("text/event-stream")) {
            res.body?.cancel();
            streaming = false;
          } else {
            for await (const ev of readEventStream(res, parser)) {
              let data;
              try {
                data = JSON.parse(ev.data);
              } catch {
                continue;
              }
              if (!data || typeof data !== "object") continue;
              const patch = data.job && typeof data.job === "object" ? data.job : data;
              if (!patch.status && TERMINAL.has(ev.type)) patch.status = ev.type;
              failures = 0;
              update(patch);
              if (TERMINAL.has(job.status)) break;
            }
          }
        } catch (e) {
          if (signal.aborted) throw e;
          if (e instanceof APIError && [404, 405, 406, 501].includes(e.status) && job === null) {
            // No events route: poll. A 404 for the job itself shows below.
            streaming = false;
          } else if (e instanceof APIError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
            throw e;
          }
          failures++;
        }
      }
      // Between streams, or instead of them: read the job itself.
      try {
        const fresh = await this.job(id, signal);
        update(fresh);
        if (TERMINAL.has(fresh.status)) return job;
      } catch (e) {
        if (signal.aborted || (e instanceof APIError && e.status >= 400 && e.status < 500 && e.status !== 429)) throw e;
        failures++;
      }
      const base = streaming && parser.retry !== null ? Math.min(parser.retry, 10000) : 500;
      const wait = streaming ? Math.min(10000, base * 2 ** Math.min(failures, 5)) : 1500;
      if (failures > 4 && streaming) streaming = false;
      await sleep(wait, signal);
    }
    throw signal.reason;
  }
}
