// One WebSocket to /ws speaking JSON text frames: requests matched by rid, events handed on,
// reconnects with exponential back-off. The app decides what to resume after each hello.

const REQUEST_TIMEOUT_MS = 35000; // the server gives up on a raid after 30 s
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class ConnectionError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class Connection {
  constructor({ token, onHello, onEvent, onState, onRejected }) {
    this.token = token;
    this.onHello = onHello; // (hello reply, reconnected: boolean)
    this.onEvent = onEvent;
    this.onState = onState; // ({state, detail})
    this.onRejected = onRejected; // the token was refused: stop and log out
    this.ws = null;
    this.rid = 0;
    this.pending = new Map(); // rid -> {resolve, reject, timer}
    this.attempt = 0; // failed connection attempts since the last good hello
    this.everConnected = false;
    this.stopped = false;
    this.retryTimer = null;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000, "bye");
    this.failPending("disconnected");
  }

  get ready() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.authenticated;
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    this.ws = ws;
    this.authenticated = false;
    this.onState({ state: "connecting", attempt: this.attempt });
    ws.onopen = () => this.hello(ws);
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => this.closed(ws, e);
  }

  async hello(ws) {
    let reply;
    try {
      reply = await this.send({ op: "hello", token: this.token });
    } catch {
      return; // the close handler schedules the retry
    }
    if (reply.op === "error" && reply.code === "unauthenticated") {
      this.stopped = true;
      ws.close(1000, "token refused");
      this.onRejected(reply);
      return;
    }
    if (reply.op === "error") {
      ws.close(1000, reply.code); // e.g. unavailable while the server restarts: retry later
      return;
    }
    this.authenticated = true;
    const reconnected = this.everConnected;
    this.everConnected = true;
    this.attempt = 0;
    this.onState({ state: "connected", user: reply.user_id, role: reply.role });
    this.onHello(reply, reconnected);
  }

  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return; // we only ever send text, so the server answers in JSON
    }
    if (msg.op === "event") {
      this.onEvent(msg);
      return;
    }
    const waiter = this.pending.get(msg.rid);
    if (!waiter) return;
    this.pending.delete(msg.rid);
    clearTimeout(waiter.timer);
    waiter.resolve(msg);
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.authenticated = false;
    this.failPending("disconnected");
    if (this.stopped) {
      this.onState({ state: "stopped" });
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    this.onState({ state: "waiting", delay: jittered, code: event.code });
    this.retryTimer = setTimeout(() => this.open(), jittered);
  }

  failPending(code) {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new ConnectionError(code, "connection closed"));
    }
    this.pending.clear();
  }

  // Resolves with the reply (an "<op>.ok" or an "error" map); rejects only when no reply came.
  send(message) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ConnectionError("disconnected", "not connected"));
    }
    const rid = ++this.rid;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new ConnectionError("timeout", "no answer"));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(rid, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...message, rid }));
    });
  }

  // Like send, but an error reply rejects too: for callers that treat every refusal alike.
  async ok(message) {
    const reply = await this.send(message);
    if (reply.op === "error") throw Object.assign(new ConnectionError(reply.code, reply.message), reply);
    return reply;
  }
}
