// Messages page and a message's page: status changes arrive as server-sent events
// (GET /api/events, event "message.status" {id, status, error?}) and update the rows in place.
// Everything from the server is set with textContent: error texts come from modems and networks.
(function () {
  "use strict";
  if (typeof EventSource === "undefined") { return; }

  const MARKS = { queued: "⏳", sending: "⏳", sent: "✓", delivered: "✓✓", failed: "✗", expired: "✗" };

  function updateStatus(container, data) {
    const status = container.querySelector('[data-field="status"]');
    if (!status) { return; }
    status.className = "status status-" + data.status;
    const mark = status.querySelector('[data-field="mark"]');
    const text = status.querySelector('[data-field="status-text"]');
    if (mark) { mark.textContent = MARKS[data.status] || ""; }
    if (text) { text.textContent = data.status; }
    const error = container.querySelector('[data-field="error"]');
    if (data.error) {
      status.title = data.error;
      if (error) { error.textContent = data.error; error.hidden = false; }
    } else if (data.status === "sent" || data.status === "delivered") {
      status.removeAttribute("title");
      if (error) { error.textContent = ""; error.hidden = true; }
    }
  }

  function onStatus(data) {
    if (!data || data.id === undefined) { return; }
    const id = String(data.id);
    document.querySelectorAll('[data-message-id="' + CSS.escape(id) + '"]').forEach(function (el) {
      updateStatus(el, data);
      const changed = el.querySelector('[data-field="changed"]');
      if (changed) { changed.hidden = false; }
    });
  }

  function onNew() {
    const note = document.querySelector('[data-field="new-messages"]');
    if (note) { note.hidden = false; }
  }

  function parse(event) {
    try { return JSON.parse(event.data); } catch (e) { return null; }
  }

  let source = null;
  function connect() {
    if (source) { return; }
    source = new EventSource("/api/events");
    source.addEventListener("message.status", function (e) { onStatus(parse(e)); });
    source.addEventListener("message.new", function () { onNew(); });
  }
  function disconnect() {
    if (source) { source.close(); source = null; }
  }
  // No open stream while the tab is hidden: the server keeps no thread for a page nobody sees.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { disconnect(); } else { connect(); }
  });
  window.addEventListener("pagehide", disconnect);
  if (!document.hidden) { connect(); }
})();
