// Modems page, live: the daemon's modem.health events (ModemStatus.to_json()) and
// modem.up / modem.down {id, reason?} from GET /api/events update the cards in place.
// Values come from modems and networks (operator names, error texts): set with textContent only.
(function () {
  "use strict";

  const STATE_HELP = {
    searching: "looking for its port",
    starting: "port found, setting the modem up",
    up: "ready to send and receive",
    down: "lost; reconnecting",
    failed: "cannot be used until the problem is fixed",
    failing: "its sends fail: out of routing, its messages go to the rest of its pool",
    probing: "its check passed: the next message it sends brings it back into routing",
    unconfigured: "found, but no configured modem matches it",
  };
  const STATE_BADGE = { up: "badge-ok", starting: "badge-warn", searching: "badge-warn", probing: "badge-warn" };

  function card(id) {
    return document.querySelector('.modem-card[data-modem-id="' + CSS.escape(String(id)) + '"]');
  }
  function field(el, name) { return el.querySelector('[data-field="' + name + '"]'); }
  function setText(el, name, value) {
    const f = field(el, name);
    if (f) { f.textContent = (value === null || value === undefined || value === "") ? "—" : String(value); }
  }
  function shown(stamp) {
    // As the server renders it: the site's one format and time zone (app.js).
    if (!stamp) return "—";
    return window.GatewayTime ? window.GatewayTime.shown(stamp) : String(stamp).slice(0, 16).replace("T", " ");
  }

  function setState(el, state, reason) {
    const badge = field(el, "state");
    if (badge) {
      badge.textContent = state;
      badge.className = "badge " + (STATE_BADGE[state] || "badge-bad");
    }
    setText(el, "state-help", reason ? (STATE_HELP[state] || "") + " (" + reason + ")" : (STATE_HELP[state] || ""));
  }

  function setSignal(el, signal) {
    const bars = signal ? Number(signal.bars) || 0 : 0;
    const meter = field(el, "bars");
    if (meter) {
      meter.dataset.bars = String(bars);
      meter.setAttribute("aria-label", "signal " + bars + " of 4 bars");
      meter.querySelectorAll(".bar").forEach(function (bar, i) { bar.classList.toggle("on", i < bars); });
    }
    let text = "—";
    if (signal && signal.dbm !== null && signal.dbm !== undefined) {
      text = signal.dbm + " dBm, " + bars + " of 4 bars";
    } else if (signal) {
      text = "no signal measured";
    }
    setText(el, "signal", text);
  }

  function setStorage(el, storage) {
    const f = field(el, "storage");
    if (!f) { return; }
    f.textContent = "";
    if (!storage) { f.textContent = "—"; return; }
    f.append(storage.used + " of " + storage.total + " used (" + storage.memory + ")");
    if (storage.full) {
      const badge = document.createElement("span");
      badge.className = "badge badge-bad";
      badge.textContent = "full";
      f.append(" ", badge);
    }
  }

  function unknownModem() {
    const note = document.querySelector('[data-field="live"]');
    if (note) {
      note.textContent = "A modem this page does not show has appeared; reload the page to see it.";
      note.hidden = false;
    }
  }

  function sendingText(state, sending) {
    // As the server's sending_text (gateway/web/views/modems.py).
    if ((state !== "failing" && state !== "probing") || !sending) { return state === "up" ? "ok" : "—"; }
    const text = (sending.failures || 0) + " failed in a row (" + (sending.reason || "no reason given") + ")";
    if (state === "failing" && sending.next_check) { return text + "; checked again at " + shown(sending.next_check); }
    return text + "; the next message it sends decides";
  }

  function onHealth(s) {
    if (!s || s.id === undefined) { return; }
    const el = card(s.id);
    if (!el) { unknownModem(); return; }
    setState(el, s.state);
    setText(el, "since", shown(s.since));
    setSignal(el, s.signal);
    setText(el, "registration", s.registration);
    setText(el, "operator", s.operator);
    setStorage(el, s.storage);
    setText(el, "last_error", s.last_error);
    setText(el, "sending", sendingText(s.state, s.sending));
    ["number", "imei", "iccid", "imsi", "port"].forEach(function (k) {
      if (s[k]) { setText(el, k, s[k]); }
    });
    if (s.manufacturer || s.model) {
      let hw = [s.manufacturer, s.model].filter(Boolean).join(" ");
      if (s.firmware) { hw += ", firmware " + s.firmware; }
      setText(el, "hardware", hw);
    }
  }

  // Live events through live.js's shared stream (the page loads live.js first).
  function listen(handlers) {
    if (!window.Live || typeof window.Live.on !== "function") { return; }
    Object.keys(handlers).forEach(function (kind) { window.Live.on(kind, handlers[kind]); });
  }

  // The page may miss changes while hidden: the manager's next health event brings each card
  // up to date again.
  listen({
    "modem.health": onHealth,
    "modem.up": function (d) { const el = d && card(d.id); if (el) { setState(el, "up"); } },
    "modem.down": function (d) { const el = d && card(d.id); if (el) { setState(el, "down", d.reason); } },
  });
})();
