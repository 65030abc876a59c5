/*
 * Live updates for any page: one EventSource on /api/events (server-sent events), shared by every
 * script of the page.
 *
 * Public API (window.Live):
 *   on(kind, fn) -> off(): call fn(data, event) for each event of that kind, data being the
 *       event's parsed JSON. Kinds: message.new, message.status, profile.changed, agent.changed,
 *       modem.up, modem.down, modem.health, inbound.undecodable; "*" for all of them; and two of
 *       this script's own: "live.open" ({reconnected}) each time the stream (re)opens, so a page
 *       can fetch what it may have missed while disconnected, and "live.error" ({}) when it drops.
 *       The first on() opens the stream.
 *   connected() -> whether the stream is open now.
 *
 * The server ends each stream after about a minute and the browser reconnects by itself; when the
 * browser gives up (an HTTP error, e.g. after logging out or with too many pages open), this
 * script tries again with a growing delay, up to a minute. When the same user opens more live
 * pages than the gateway allows one person, the server ends the oldest with "live.replaced": that
 * page stops following (no reconnect that would in turn end another page) until it is shown
 * again. Safe to load twice.
 */
(function (global) {
  "use strict";
  if (global.Live) return;

  const URL = "/api/events";
  const KNOWN = [
    "message.new", "message.status", "profile.changed", "agent.changed",
    "modem.up", "modem.down", "modem.health", "inbound.undecodable", "broadcast.progress",
  ];
  const OWN = ["live.open", "live.error"];
  const MIN_DELAY = 2000;
  const MAX_DELAY = 60000;

  const listeners = new Map(); // kind -> Set of functions
  let source = null;
  let bound = new Set(); // kinds listened to on the current source
  let opened = false;
  let everOpened = false;
  let delay = MIN_DELAY;
  let timer = null;
  let paused = false; // replaced by a newer page of this user; resumes when shown

  function emit(kind, data, event) {
    for (const key of [kind, "*"]) {
      if (key === "*" && OWN.includes(kind)) continue;
      const set = listeners.get(key);
      if (!set) continue;
      for (const fn of Array.from(set)) {
        try {
          fn(data, event);
        } catch (err) {
          console.error(`live: a listener of ${kind} failed:`, err);
        }
      }
    }
  }

  function onMessage(event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      console.error(`live: event ${event.type} carries no JSON:`, err);
      return;
    }
    emit(event.type, data, event);
  }

  function bind(kind) {
    if (!source || OWN.includes(kind)) return;
    const kinds = kind === "*" ? KNOWN : [kind];
    for (const k of kinds) {
      if (bound.has(k)) continue;
      bound.add(k);
      source.addEventListener(k, onMessage);
    }
  }

  function connect() {
    timer = null;
    if (typeof global.EventSource !== "function") {
      console.warn("live: this browser has no EventSource; pages will not update by themselves");
      return;
    }
    source = new global.EventSource(URL);
    bound = new Set();
    source.addEventListener("open", () => {
      opened = true;
      delay = MIN_DELAY;
      emit("live.open", { reconnected: everOpened });
      everOpened = true;
    });
    source.addEventListener("error", () => {
      const wasOpen = opened;
      opened = false;
      if (wasOpen) emit("live.error", {});
      if (source && source.readyState === global.EventSource.CLOSED) {
        // The browser gave up (an HTTP error): try again later, ourselves.
        source.close();
        source = null;
        if (!timer) {
          timer = global.setTimeout(connect, delay);
          delay = Math.min(delay * 2, MAX_DELAY);
        }
      }
    });
    source.addEventListener("live.replaced", () => {
      // A newer page of this user took this stream's place: wait until this one is looked at.
      source.close();
      source = null;
      if (opened) emit("live.error", {});
      opened = false;
      paused = true;
    });
    for (const kind of listeners.keys()) bind(kind);
  }

  global.document.addEventListener("visibilitychange", () => {
    if (paused && global.document.visibilityState === "visible" && !source && !timer) {
      paused = false;
      connect();
    }
  });

  function on(kind, fn) {
    if (typeof fn !== "function") throw new TypeError("Live.on(kind, fn): fn must be a function");
    if (!listeners.has(kind)) listeners.set(kind, new Set());
    listeners.get(kind).add(fn);
    if (!source && !timer && !paused) connect();
    else bind(kind);
    return function off() {
      const set = listeners.get(kind);
      if (set) set.delete(fn);
    };
  }

  global.Live = Object.freeze({ on, connected: () => opened });
})(window);
