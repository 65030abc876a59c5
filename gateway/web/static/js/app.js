// Site-wide behaviour: the phone-size menu toggle and a fetch helper that sends the CSRF token.
(function () {
  "use strict";
  const toggle = document.querySelector(".nav-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      const open = document.body.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }
  // Times as every page shows them: "YYYY-MM-DD HH:MM", 24-hour, in the site's time zone
  // (helpers.shown_time on the server), for what scripts add (chat, live rows).
  const zoneMeta = document.querySelector('meta[name="site-timezone"]');
  const zone = (zoneMeta && zoneMeta.content) || "UTC";
  let parts = null;
  try {
    parts = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    });
  } catch (err) {
    console.warn("time zone " + zone + " unknown to this browser; times shown in UTC");
  }
  window.GatewayTime = Object.freeze({
    zone: zone,
    shown: function (stamp) {
      if (!stamp) return "";
      const when = new Date(stamp);
      if (Number.isNaN(when.getTime()) || !parts) return String(stamp).slice(0, 16).replace("T", " ");
      const p = {};
      for (const part of parts.formatToParts(when)) p[part.type] = part.value;
      return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute;
    },
  });

  const meta = document.querySelector('meta[name="csrf-token"]');
  // JSON requests to our own API: same origin, CSRF header, errors as exceptions with the
  // server's message so the page can show it.
  window.gatewayFetch = async function (url, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    opts.headers = Object.assign({ Accept: "application/json" }, opts.headers);
    if (opts.body && typeof opts.body !== "string" && !(opts.body instanceof FormData)) {
      opts.body = JSON.stringify(opts.body);
      opts.headers["Content-Type"] = "application/json";
    }
    if (meta && opts.method && opts.method.toUpperCase() !== "GET") {
      opts.headers["X-CSRFToken"] = meta.content;
    }
    const response = await fetch(url, opts);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const err = new Error((data && data.error) || ("HTTP " + response.status));
      err.status = response.status;
      err.data = data;
      throw err;
    }
    return data;
  };
})();
