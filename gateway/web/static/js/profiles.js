/*
 * A profile's page: the Actions disclosure menu and the live message history.
 *
 * - button[data-disclosure="<id>"]: toggles the element with that id (aria-expanded), closes on
 *   Escape (focus back to the button) and on a click or focus outside. The menu is in the HTML
 *   open, so it works without this script; the script closes it at start.
 * - table#message-history[data-profile-id][data-live]: listens to /api/events (server-sent
 *   events; through live.js's shared stream when the page has it, else its own EventSource)
 *   for message.status and message.new of this profile. A status change updates the
 *   row's status cell; a new message is fetched from /api/profiles/<id>/conversation?after=<id>
 *   and put at the top (the table is newest first). Each time the stream opens (the first time
 *   too: a status may change between rendering and connecting), the page
 *   catches up the same way. profile.changed updates the subscription shown.
 *
 * Text from handsets is set with textContent only, never as HTML.
 */
(function () {
  "use strict";

  const MARKS = { queued: "⏳", sending: "⏳", sent: "✓", delivered: "✓✓", failed: "✗", expired: "✗" };

  // -- Actions menu ------------------------------------------------------------------------

  function disclosure(button) {
    const menu = document.getElementById(button.dataset.disclosure);
    if (!menu) return;
    const container = button.parentElement;
    function setOpen(open, focusButton) {
      menu.hidden = !open;
      button.setAttribute("aria-expanded", open ? "true" : "false");
      if (!open && focusButton) button.focus();
    }
    setOpen(false, false);
    button.addEventListener("click", function () {
      const open = menu.hidden;
      setOpen(open, false);
      if (open) {
        const first = menu.querySelector("a, button");
        if (first) first.focus();
      }
    });
    container.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !menu.hidden) {
        event.preventDefault();
        setOpen(false, true);
      }
    });
    document.addEventListener("click", function (event) {
      if (!menu.hidden && !container.contains(event.target)) setOpen(false, false);
    });
    container.addEventListener("focusout", function (event) {
      if (!menu.hidden && event.relatedTarget && !container.contains(event.relatedTarget)) {
        setOpen(false, false);
      }
    });
    // A chat opened from the menu takes the focus elsewhere; the menu has done its job.
    menu.addEventListener("click", function (event) {
      if (event.target.closest(".chat-open")) setOpen(false, false);
    });
  }

  document.querySelectorAll("button[data-disclosure]").forEach(disclosure);

  // -- Live history ------------------------------------------------------------------------

  const table = document.getElementById("message-history");
  if (!table || table.dataset.live !== "true") return;
  const profileId = Number(table.dataset.profileId);
  const tbody = table.tBodies[0];
  const live = document.getElementById("history-live");
  let modemLabels = {};
  try {
    modemLabels = JSON.parse(table.dataset.modems || "{}");
  } catch (err) {
    console.warn("bad modem labels:", err);
  }

  function shownTime(stamp) {
    if (window.GatewayTime) return window.GatewayTime.shown(stamp); // the site's time zone
    return stamp ? String(stamp).slice(0, 16).replace("T", " ") : "";
  }

  function cell(label, className) {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (className) td.className = className;
    return td;
  }

  function setStatus(td, direction, status, error, kind) {
    td.className = "status-" + status;
    td.replaceChildren();
    if (direction === "out") {
      const mark = document.createElement("span");
      mark.setAttribute("aria-hidden", "true");
      mark.textContent = MARKS[status] || "";
      td.append(mark, " ");
    }
    let word = status;
    if (direction === "in" && kind && kind !== "reply") word += " (" + kind + ")";
    td.append(word);
    if (error) td.title = error;
    else td.removeAttribute("title");
  }

  function setNotes(td, error, maybeDuplicate) {
    td.replaceChildren();
    if (error) {
      const span = document.createElement("span");
      span.className = "status-failed";
      span.dataset.error = "";
      span.textContent = error;
      td.append(span);
    }
    if (maybeDuplicate) {
      const badge = document.createElement("span");
      badge.className = "badge badge-warn";
      badge.textContent = "may have been sent twice";
      td.append(" ", badge);
    }
  }

  function rowFor(id) {
    return tbody.querySelector('tr[data-message-id="' + Number(id) + '"]');
  }

  function buildRow(m) {
    const tr = document.createElement("tr");
    tr.dataset.messageId = String(m.id);
    const when = cell("Time");
    const time = document.createElement("time");
    time.dateTime = m.created_at || "";
    time.textContent = shownTime(m.created_at);
    when.append(time);
    const direction = cell("Direction");
    direction.textContent = m.direction === "out" ? "sent" : "received";
    const body = cell("Message", "body-text");
    body.textContent = m.body || "";
    const status = cell("Status");
    status.dataset.status = "";
    setStatus(status, m.direction, m.status, m.error, m.kind);
    const parts = cell("Parts");
    parts.dataset.parts = "";
    parts.textContent = String(m.parts_total || 1);
    const modem = cell("Short code · modem");
    modem.dataset.modem = "";
    modem.textContent = m.short_code || "";
    const notes = cell("Notes");
    notes.dataset.notes = "";
    setNotes(notes, m.error, m.maybe_duplicate);
    tr.append(when, direction, body, status, parts, modem, notes);
    return tr;
  }

  function newestId() {
    let max = 0;
    tbody.querySelectorAll("tr[data-message-id]").forEach(function (tr) {
      max = Math.max(max, Number(tr.dataset.messageId));
    });
    return max;
  }

  function announce(text) {
    if (live) live.textContent = text;
  }

  let fetching = null;
  let again = false;
  // Status events seen so far; a row remembers the count of its last one (data-as-of). A fetch
  // is as new as the count when it started, so an answer that was on its way while an event
  // changed a status does not put the older status back ("delivered" reverting to "sent").
  let eventSeq = 0;
  // Status events of messages without a row yet (the fetch that brings it is on its way, and
  // may predate the event): id -> {data, asOf}, applied when the row is made.
  const early = new Map();

  // Fetch what is newer than the newest row and put it on top; one request at a time. With
  // `full` (after a reconnect) the recent history comes again and the rows' statuses follow it.
  function catchUp(full) {
    if (fetching) {
      again = true;
      return fetching;
    }
    const newest = newestId();
    const asOf = eventSeq;
    const after = full ? 0 : newest;
    const url = "/api/profiles/" + profileId + "/conversation?after=" + after;
    fetching = window
      .gatewayFetch(url)
      .then(function (data) {
        const messages = (data && data.messages) || [];
        const empty = tbody.querySelector("tr[data-empty]");
        let added = 0;
        for (const m of messages) {
          const existing = rowFor(m.id);
          if (existing) {
            const newer = Number(existing.dataset.asOf || 0) > asOf;
            if (m.direction === "out" && !newer) onStatus(m);
            continue;
          }
          // Older than the newest row yet not shown: beyond this page's oldest row (the API
          // gives more history than the page shows), not new.
          if (m.id < newest) continue;
          if (empty) empty.remove();
          const row = buildRow(m);
          tbody.insertBefore(row, tbody.firstChild);
          added += 1;
          const news = early.get(m.id);
          early.delete(m.id);
          if (news && news.asOf > asOf && m.direction === "out") {
            row.dataset.asOf = String(news.asOf);
            onStatus(news.data);
          }
        }
        if (added) announce(added === 1 ? "1 new message." : added + " new messages.");
        // The subscription per short code as it is now: a change whose event this page
        // missed (before its stream opened) is shown too.
        for (const sc of (data && data.short_codes) || []) {
          const shown = document.querySelector(`[data-subscription="${CSS.escape(sc.code)}"]`);
          if (shown && typeof sc.subscribed === "boolean") {
            shown.textContent = sc.subscribed ? "subscribed" : "opted out";
          }
        }
      })
      .catch(function (err) {
        console.warn("could not load new messages:", err);
        announce("New messages could not be loaded; reload the page to see them.");
      })
      .finally(function () {
        fetching = null;
        if (again) {
          again = false;
          catchUp(false);
        }
      });
    return fetching;
  }

  function onStatus(data) {
    const tr = rowFor(data.id);
    if (!tr) return;
    const td = tr.querySelector("[data-status]");
    if (td) setStatus(td, "out", data.status, data.error, null);
    const notes = tr.querySelector("[data-notes]");
    if (notes && data.error !== undefined) {
      const duplicate = Boolean(notes.querySelector(".badge-warn"));
      setNotes(notes, data.error, duplicate || data.maybe_duplicate);
    }
    const modem = tr.querySelector("[data-modem]");
    if (modem && data.modem_id) {
      const code = modem.textContent.split(" · ")[0];
      modem.textContent = code + " · " + (modemLabels[data.modem_id] || data.modem_id);
    }
  }

  function onNew(data) {
    if (Number(data.profile_id) === profileId && !rowFor(data.id)) catchUp(false);
  }

  function onProfile(data) {
    if (Number(data.id) !== profileId) return;
    // The change of one short code (data.short_code), or of all of them (null: every row).
    const selector = data.short_code
      ? `[data-subscription="${CSS.escape(data.short_code)}"]`
      : "[data-subscription]";
    const shown = Array.from(document.querySelectorAll(selector));
    if (shown.length && typeof data.subscribed === "boolean") {
      for (const el of shown) el.textContent = data.subscribed ? "subscribed" : "opted out";
      announce("The subscription changed; reload the page for its history.");
    }
  }

  function onStatusEvent(data) {
    if (Number(data.profile_id) !== profileId) return;
    const tr = rowFor(data.id);
    if (tr) tr.dataset.asOf = String(++eventSeq);
    else early.set(Number(data.id), { data: data, asOf: ++eventSeq });
    onStatus(data);
  }

  // The page's shared stream (live.js, loaded with the chat panel) when there is one.
  if (window.Live) {
    window.Live.on("message.status", onStatusEvent);
    window.Live.on("message.new", onNew);
    window.Live.on("profile.changed", onProfile);
    // On every open, the first one too: a status that changed between the server rendering
    // this page and the stream opening (a fast modem's "delivered") has no event left to see.
    window.Live.on("live.open", function () {
      catchUp(true);
    });
    return;
  }
  if (!window.EventSource) return;
  const source = new EventSource("/api/events");
  function listen(kind, fn) {
    source.addEventListener(kind, function (event) {
      let data = null;
      try {
        data = JSON.parse(event.data);
      } catch (err) {
        console.warn("bad event data:", err);
        return;
      }
      if (data) fn(data);
    });
  }
  source.addEventListener("open", function () {
    catchUp(true); // the first time too: see the live.open listener above
  });
  listen("message.status", onStatusEvent);
  listen("message.new", onNew);
  listen("profile.changed", onProfile);
})();
