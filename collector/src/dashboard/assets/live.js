// The page's one WebSocket to /api/v1/stream: subscriptions by selector, alert and anomaly
// events, reconnection with backoff. After a reconnect (or a "lagged" notice) each
// subscription's `gap` callback runs so its page back-fills with query_range from the last
// point it had. `body[data-live]` says whether the socket is open.

export class Live {
  constructor() {
    this.subs = new Map();
    this.listeners = { alert: new Set(), anomaly: new Set(), state: new Set() };
    this.socket = null;
    this.backoff = 500;
    this.serial = 0;
    this.opened = false;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${location.host}/api/v1/stream`);
    } catch {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      const reconnected = this.opened;
      this.opened = true;
      this.backoff = 500;
      this.setState("open");
      for (const [id, sub] of this.subs) this.send({ type: "subscribe", id, match: sub.match });
      if (reconnected) for (const sub of this.subs.values()) sub.gap?.();
    });
    socket.addEventListener("message", event => this.receive(event.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setState("closed");
      this.retry();
    });
    socket.addEventListener("error", () => { /* a close follows */ });
  }

  retry() {
    const wait = this.backoff * (0.75 + Math.random() / 2);
    this.backoff = Math.min(this.backoff * 2, 15000);
    setTimeout(() => this.connect(), wait);
  }

  setState(state) {
    document.body.dataset.live = state;
    for (const f of this.listeners.state) f(state);
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  receive(text) {
    let message;
    try { message = JSON.parse(text); } catch { return; }
    switch (message.type) {
      case "samples": this.subs.get(message.id)?.samples(message.series || []); break;
      case "alert": for (const f of this.listeners.alert) f(message.alert); break;
      case "anomaly": for (const f of this.listeners.anomaly) f(message); break;
      case "lagged": for (const sub of this.subs.values()) sub.gap?.(); break;
      case "error": this.lastError = message.error; break;
      default: break;
    }
  }

  /** Subscribes to the series `match` selects: `samples(series)` gets new points,
   * `gap()` runs after a reconnect or a drop. Answers an unsubscribe function. */
  subscribe(match, samples, gap) {
    const id = `s${++this.serial}`;
    this.subs.set(id, { match, samples, gap });
    this.send({ type: "subscribe", id, match });
    return () => {
      this.subs.delete(id);
      this.send({ type: "unsubscribe", id });
    };
  }

  /** Listens for "alert", "anomaly" or "state" events until the page changes. */
  on(kind, f) { this.listeners[kind].add(f); }

  /** Drops the previous page's subscriptions and listeners. */
  reset() {
    for (const id of this.subs.keys()) this.send({ type: "unsubscribe", id });
    this.subs.clear();
    this.listeners.alert.clear();
    this.listeners.anomaly.clear();
    this.listeners.state.clear();
  }
}
