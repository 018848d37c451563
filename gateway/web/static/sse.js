// Server-Sent Events over fetch. EventSource cannot send an Authorization
// header, so the page reads text/event-stream bodies itself. The parser
// follows the HTML standard's event stream interpretation: lines end in CR,
// LF or CRLF (also across chunk boundaries), a leading BOM is dropped, lines
// starting with ":" are comments, one space after the colon is removed, data
// lines are joined with "\n", and a blank line dispatches the event. An event
// left incomplete at the end of the stream is discarded.

/**
 * @typedef {{type: string, data: string, id: string}} StreamEvent
 */

/** Incremental text/event-stream parser. */
export class EventStreamParser {
  constructor() {
    this.buffer = "";
    this.started = false;
    this.type = "";
    this.data = [];
    /** The last event id seen (the stream's "last event ID"). */
    this.lastEventId = "";
    /** Reconnection time in milliseconds, when the stream set one. */
    this.retry = null;
  }

  /**
   * Feeds decoded text and returns the events it completed.
   * @param {string} text
   * @returns {StreamEvent[]}
   */
  push(text) {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buffer += text;
    const out = [];
    let pos = 0;
    const buf = this.buffer;
    for (;;) {
      let end = -1;
      for (let i = pos; i < buf.length; i++) {
        const c = buf.charCodeAt(i);
        if (c === 10 || c === 13) {
          end = i;
          break;
        }
      }
      if (end < 0) break;
      let next = end + 1;
      if (buf.charCodeAt(end) === 13) {
        // A CR at the very end may be the first half of a CRLF split across
        // chunks: wait for more text before deciding.
        if (end + 1 === buf.length) break;
        if (buf.charCodeAt(end + 1) === 10) next = end + 2;
      }
      const ev = this.line(buf.slice(pos, end));
      if (ev) out.push(ev);
      pos = next;
    }
    this.buffer = buf.slice(pos);
    return out;
  }

  /**
   * Ends the stream. A pending CR still ends its line; an event without its
   * blank line is discarded, as the standard says.
   * @returns {StreamEvent[]}
   */
  end() {
    const out = [];
    if (this.buffer.endsWith("\r")) {
      const ev = this.line(this.buffer.slice(0, -1));
      if (ev) out.push(ev);
    }
    this.buffer = "";
    this.type = "";
    this.data = [];
    return out;
  }

  /** @returns {StreamEvent|null} */
  line(line) {
    if (line === "") {
      if (this.data.length === 0) {
        this.type = "";
        return null;
      }
      const ev = { type: this.type || "message", data: this.data.join("\n"), id: this.lastEventId };
      this.type = "";
      this.data = [];
      return ev;
    }
    if (line.startsWith(":")) return null;
    let field = line;
    let value = "";
    const colon = line.indexOf(":");
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.retry = Number(value);
        break;
    }
    return null;
  }
}

/**
 * Reads the events of a fetch Response whose body is text/event-stream.
 * Pass the parser of the previous connection to keep its last event id and
 * reconnection time.
 * @param {Response} response
 * @param {EventStreamParser} [parser]
 * @returns {AsyncGenerator<StreamEvent>}
 */
export async function* readEventStream(response, parser = new EventStreamParser()) {
  parser.buffer = "";
  parser.started = false;
  parser.type = "";
  parser.data = [];
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* parser.push(value);
    }
    finished = true;
    yield* parser.end();
  } finally {
    // A consumer that stops early (a terminal status) closes the connection.
    if (!finished) reader.cancel().catch(() => {});
  }
}
