// Phones page (demo): keeps each simulated handset's "Received" list fresh. It re-fetches
// GET /phones/<number>/inbox.json ({number, messages: [{sender, text, time, parts}], newest
// first}) when the gateway reports a message status change (server-sent events) and every few
// seconds while the page is visible; nothing runs while the tab is hidden. Handset texts are
// put in with textContent only.
(function () {
  "use strict";
  const POLL_MS = 4000;
  const phones = Array.from(document.querySelectorAll(".phone[data-inbox-url]"));
  if (!phones.length) { return; }

  function shown(stamp) {
    if (window.GatewayTime) return window.GatewayTime.shown(stamp); // the site's time zone
    return stamp ? String(stamp).slice(0, 16).replace("T", " ") : "";
  }

  function render(phone, messages) {
    const list = phone.querySelector('[data-field="inbox"]');
    const count = phone.querySelector('[data-field="count"]');
    const key = messages.length + "|" + (messages[0] ? messages[0].time + messages[0].text : "");
    if (!list || list.dataset.key === key) { return; }
    list.dataset.key = key;
    if (count) { count.textContent = "(" + messages.length + ")"; }
    const items = messages.map(function (m) {
      const li = document.createElement("li");
      li.className = "bubble";
      const body = document.createElement("div");
      body.className = "body-text";
      body.textContent = m.text;
      const meta = document.createElement("div");
      meta.className = "meta";
      const time = document.createElement("time");
      time.dateTime = m.time;
      time.textContent = shown(m.time);
      meta.append("from " + m.sender + " · ", time);
      if (m.parts > 1) { meta.append(" · " + m.parts + " parts"); }
      li.append(body, meta);
      return li;
    });
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "muted empty";
      li.textContent = "Nothing received yet.";
      items.push(li);
    }
    list.replaceChildren.apply(list, items);
  }

  let busy = false;
  async function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    try {
      await Promise.all(phones.map(async function (phone) {
        try {
          const data = await window.gatewayFetch(phone.dataset.inboxUrl);
          if (data && Array.isArray(data.messages)) { render(phone, data.messages); }
        } catch (err) {
          // A handset removed from the simulator or a restart: keep what is shown.
          if (window.console) { console.warn("phones: " + phone.dataset.number + ": " + err.message); }
        }
      }));
    } finally {
      busy = false;
    }
  }

  // A message status change (or a new message) often means a handset got something: refresh
  // then, through live.js's shared stream when the page loads it.
  let source = null;
  function listen() {
    if (window.Live && typeof window.Live.on === "function") {
      if (!source) {
        source = "live";
        ["message.status", "message.new", "live.open"].forEach(function (kind) {
          window.Live.on(kind, refresh);
        });
      }
      return;
    }
    if (!source && typeof EventSource !== "undefined") {
      source = new EventSource("/api/events");
      source.addEventListener("message.status", refresh);
      source.addEventListener("message.new", refresh);
    }
  }
  function unlisten() {
    if (source && source !== "live") { source.close(); source = null; }
  }

  let timer = null;
  function start() {
    if (timer === null) { timer = window.setInterval(refresh, POLL_MS); }
    listen();
    refresh();
  }
  function stop() {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
    unlisten();
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { stop(); } else { start(); }
  });
  window.addEventListener("pagehide", stop);
  if (!document.hidden) { start(); }
})();
