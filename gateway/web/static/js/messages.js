// Messages page and a message's page: status changes arrive as server-sent events
// (GET /api/events, event "message.status" {id, status, error?}) and update the rows in place.
// Everything from the server is set with textContent: error texts come from modems and networks.
(function () {
  "use strict";

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

  // Live events through live.js's shared stream (the page loads live.js first).
  function listen(handlers) {
    if (!window.Live || typeof window.Live.on !== "function") { return; }
    Object.keys(handlers).forEach(function (kind) { window.Live.on(kind, handlers[kind]); });
  }

  listen({ "message.status": onStatus, "message.new": onNew });
})();
