/*
 * Inbox page: new inbound messages appear at the top without a reload (on the first page), and
 * each row's actions follow the sender's subscription as it changes.
 *
 * A new message's row comes with its "message.new" event (the message and its sender ride
 * along), so that open Inbox tabs do not each ask the server for it; only when the event stream
 * (re)opens does the page read GET /api/inbox?after=<newest id shown>&kind=<filter>, for what
 * arrived while it was away. Rows are made from the page's <template id="inbox-row">; every
 * text is set with textContent. Re-subscribing a profile asks for confirmation first; it never
 * reactivates an inactive one (that is the separate Reactivate button).
 */
(function (global) {
  "use strict";

  const table = document.getElementById("inbox-table");
  if (!table) return;
  const tbody = document.getElementById("inbox-rows");
  const template = document.getElementById("inbox-row");
  const status = document.getElementById("inbox-live");
  const empty = document.getElementById("inbox-empty");
  const kind = table.dataset.kind || "";
  const firstPage = table.dataset.newest === "1";
  const labels = JSON.parse(table.dataset.kindLabels || "{}");
  const badges = JSON.parse(table.dataset.kindBadges || "{}");
  let latest = Number(table.dataset.latestId) || 0;
  let busy = false;
  let again = false;
  let missed = 0;

  /** "/inbox/profiles/0/opt-out" with 0 replaced by the profile's id. */
  function withId(url, id) {
    return url.replace(/\/0(\/|$)/, `/${id}$1`);
  }

  function fill(row) {
    const tr = template.content.firstElementChild.cloneNode(true);
    const m = row.message;
    const p = row.profile;
    tr.dataset.id = String(m.id);
    tr.dataset.profileId = String(p.id);
    // The row's buttons change the subscription to the short code the message came in on.
    tr.dataset.shortCode = m.short_code || "";
    for (const input of tr.querySelectorAll(".js-short-code")) input.value = m.short_code || "";
    tr.querySelector(".js-code-of").textContent = m.short_code ? ` of ${m.short_code}` : "";
    const link = tr.querySelector(".js-profile");
    link.href = withId(table.dataset.profileUrl, p.id);
    link.textContent = p.name || p.phone;
    tr.querySelector(".js-phone").textContent = p.name ? p.phone : "";
    tr.querySelector(".js-body").textContent = m.body;
    const answers = tr.querySelector(".js-broadcast");
    if (answers) {
      // A reply to a broadcast links to it (row.broadcast from the server, or none).
      answers.hidden = !row.broadcast;
      answers.textContent = row.broadcast ? "↩ " + row.broadcast.name : "";
      answers.href = row.broadcast ? "/broadcasts/" + row.broadcast.id : "#";
    }
    const badge = tr.querySelector(".js-kind");
    badge.textContent = row.kind_label;
    if (row.kind_badge) badge.classList.add(row.kind_badge);
    const time = tr.querySelector(".js-time");
    time.dateTime = m.created_at;
    time.textContent = row.shown_time;
    tr.querySelector(".js-opt-out").action = withId(table.dataset.optOutUrl, p.id);
    tr.querySelector(".js-resubscribe").action = withId(table.dataset.resubscribeUrl, p.id);
    tr.querySelector(".js-activate").action = withId(table.dataset.activateUrl, p.id);
    tr.querySelector(".js-text").href = `/profiles/${p.id}/text`;
    const chat = tr.querySelector(".chat-open");
    chat.dataset.profileId = String(p.id);
    chat.dataset.name = p.name;
    chat.dataset.phone = p.phone;
    setSubscription(tr, p.subscribed, p.status === "active", row.chat_available);
    tr.classList.add("inbox-new");
    return tr;
  }

  function setSubscription(tr, subscribed, active, chatAvailable) {
    tr.querySelector(".js-opted-out").hidden = subscribed;
    tr.querySelector(".js-opt-out").hidden = !subscribed;
    tr.querySelector(".js-resubscribe").hidden = subscribed;
    tr.querySelector(".js-activate").hidden = active;
    tr.querySelector(".chat-open").hidden = !chatAvailable;
  }

  function say(text) {
    status.textContent = text;
  }

  /** Rows (newest first) put on top of the table, or counted when this is an older page. */
  function show(rows) {
    const fresh = rows.filter((r) => r.message.id > latest);
    if (!fresh.length) return;
    latest = Math.max(latest, ...fresh.map((r) => r.message.id));
    if (!firstPage) {
      missed += fresh.length;
      say(`${missed} new message${missed === 1 ? "" : "s"} since this page was loaded; see the newest.`);
      return;
    }
    // Newest first: insert the oldest new one first so that the newest ends up on top.
    for (const row of fresh.slice().reverse()) {
      if (tbody.querySelector(`tr[data-id="${row.message.id}"]`)) continue;
      tbody.insertBefore(fill(row), tbody.firstElementChild);
    }
    empty.hidden = true;
    say(`${fresh.length} new message${fresh.length === 1 ? "" : "s"}.`);
  }

  /** The row of a "message.new" event that carries its message and sender. */
  function rowOf(d) {
    const p = d.profile;
    const chatReady = table.dataset.chatReady === "1";
    return {
      message: { id: d.id, body: d.body, created_at: d.created_at, short_code: d.short_code },
      profile: p,
      // The server's answer (messaging/eligibility.py), not the rule written again here.
      chat_available: !p.refusal && chatReady,
      kind_label: labels[d.kind] ?? d.kind ?? "",
      kind_badge: badges[d.kind] || "",
      shown_time: window.GatewayTime
        ? window.GatewayTime.shown(d.created_at)
        : String(d.created_at || "").slice(0, 16).replace("T", " "),
    };
  }

  async function pull() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const query = new URLSearchParams({ after: String(latest) });
        if (kind) query.set("kind", kind);
        const data = await global.gatewayFetch(`${table.dataset.api}?${query}`);
        if (!data.complete) {
          global.location.reload(); // more arrived than a page holds: start afresh
          return;
        }
        show(data.rows);
      } while (again);
    } catch (err) {
      say(`New messages could not be loaded: ${err.message}`);
    } finally {
      busy = false;
    }
  }

  async function profileChanged(profileId) {
    const rows = tbody.querySelectorAll(`tr[data-profile-id="${profileId}"]`);
    if (!rows.length) return;
    try {
      // after=<huge>: only the profile and whether chat is available, no messages.
      const data = await global.gatewayFetch(
        `/api/profiles/${profileId}/conversation?after=${Number.MAX_SAFE_INTEGER}`,
      );
      // Each row shows the subscription to its own short code.
      const byCode = new Map(data.short_codes.map((s) => [s.code, s.subscribed]));
      for (const tr of rows) {
        const here = byCode.has(tr.dataset.shortCode) ? byCode.get(tr.dataset.shortCode) : data.profile.subscribed;
        setSubscription(tr, here, data.profile.status === "active", data.chat_available);
      }
    } catch (err) {
      console.warn(`inbox: profile ${profileId} could not be refreshed:`, err.message);
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.classList || !form.classList.contains("js-resubscribe")) return;
    const tr = form.closest("tr");
    const who = tr ? tr.querySelector(".js-profile").textContent : "this profile";
    const ok = global.confirm(
      `Subscribe ${who} again? Only do this when they asked to receive messages again.`,
    );
    if (!ok) event.preventDefault();
  });

  if (global.Live) {
    global.Live.on("message.new", (d) => {
      if (d.direction !== "in" || (kind && d.kind !== kind)) return;
      if (d.profile && typeof d.body === "string") show([rowOf(d)]);
      else pull();
    });
    global.Live.on("profile.changed", (d) => profileChanged(d.id));
    // Every time the stream opens, the first time too: rows that arrived between the page's
    // render and the stream's start are fetched, not lost.
    global.Live.on("live.open", () => pull());
  }
})(window);
