/*
 * Broadcasts, segments and lists (issue 11).
 *
 * - [data-conditions]: the conditions editor: add and remove rows; each row's operators follow
 *   its field (the server's table, in <template id="condition-ops">), known values are offered.
 * - form[data-segment-form]: the count and the first profiles of the conditions, fetched from
 *   data-preview-url as they are edited (debounced; the server counts, the page never does).
 * - form[data-broadcast-compose]: the SMS counter of Text This Profile (SmsCount, emoji picker,
 *   :name: shortcodes) counting the LONGEST expansion of the merge fields over the audience:
 *   the server sends each field's longest values (data-longest-url), and the counter takes the
 *   worst combination of them, as the server does when it stores the broadcast's parts. The
 *   audience's count and a preview for its first profile come with them. Create is disabled
 *   while the longest expansion is over the limit.
 * - [data-broadcast-live]: the broadcast page's counters, state and buttons, from the
 *   "broadcast.progress" events of the live stream (Live), read again when it reconnects.
 * - form[data-confirm]: asks before a destructive post.
 *
 * No inline script (CSP); text is never inserted as HTML.
 */
(function () {
  "use strict";

  const FIELD = /\{([^{}\n]{1,64})\}/g;
  const MAX_COMBINATIONS = 64;
  // The server's words for the states (views/broadcasts.py STATE_LABELS).
  const LABELS = {
    scheduled: "Scheduled", sending: "Sending", paused: "Paused", done: "Sent", cancelled: "Cancelled",
  };

  function debounce(fn, ms) {
    let timer = null;
    return function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(fn, ms);
    };
  }

  // -- conditions editor ----------------------------------------------------------------

  function wireConditions(box, onChange) {
    const rows = box.querySelector("[data-condition-rows]");
    const table = {};
    const tpl = document.getElementById("condition-ops");
    if (tpl) {
      tpl.content.querySelectorAll("span").forEach(function (s) {
        table[s.dataset.field] = s.dataset.ops.split("|");
      });
    }
    function fitRow(row) {
      const field = row.querySelector("[name=field]").value.trim();
      const select = row.querySelector("[name=op]");
      const value = row.querySelector("[name=value]");
      const ops = table[field] || table["*"] || [];
      const current = select.value;
      select.replaceChildren();
      ops.forEach(function (op) {
        const o = document.createElement("option");
        o.value = op;
        o.textContent = op;
        select.append(o);
      });
      if (ops.includes(current)) select.value = current;
      const list = document.getElementById("condition-values-" + field);
      if (list) value.setAttribute("list", list.id);
      else value.removeAttribute("list");
      value.hidden = select.value === "is empty" || select.value === "is not empty";
    }
    function wireRow(row) {
      fitRow(row);
      row.querySelector("[name=field]").addEventListener("change", function () {
        fitRow(row);
        onChange();
      });
      row.querySelector("[name=op]").addEventListener("change", function () {
        fitRow(row);
        onChange();
      });
      row.querySelector("[name=value]").addEventListener("input", onChange);
      row.querySelector("[name=field]").addEventListener("input", onChange);
      row.querySelector("[data-remove-condition]").addEventListener("click", function () {
        if (rows.querySelectorAll("[data-condition-row]").length > 1) row.remove();
        else row.querySelectorAll("input").forEach(function (i) { i.value = ""; });
        onChange();
      });
    }
    rows.querySelectorAll("[data-condition-row]").forEach(wireRow);
    const add = box.querySelector("[data-add-condition]");
    if (add) {
      add.addEventListener("click", function () {
        const last = rows.querySelector("[data-condition-row]:last-of-type");
        const row = last.cloneNode(true);
        row.querySelectorAll("input").forEach(function (i) { i.value = ""; i.hidden = false; });
        rows.append(row);
        wireRow(row);
        row.querySelector("[name=field]").focus();
      });
    }
    const match = box.querySelector("[name=match]");
    if (match) match.addEventListener("change", onChange);
  }

  // -- segment page ---------------------------------------------------------------------

  function wireSegment(form) {
    const count = document.querySelector("[data-field=segment-count]");
    const error = document.querySelector("[data-field=segment-error]");
    const body = document.querySelector("[data-field=segment-sample]");
    let seq = 0;
    const refresh = debounce(async function () {
      const mine = ++seq;
      try {
        const data = await window.gatewayFetch(form.dataset.previewUrl, {
          method: "POST",
          body: new FormData(form),
        });
        if (mine !== seq) return;
        if (!data.ok) throw new Error(data.error);
        error.hidden = true;
        count.textContent = String(data.count);
        body.replaceChildren();
        data.sample.forEach(function (p) {
          const tr = document.createElement("tr");
          const a = document.createElement("a");
          a.href = p.url;
          a.textContent = p.name || "(no name)";
          const cells = [a, p.phone, p.status, p.subscribed ? "yes" : "no"];
          ["Name", "Phone", "Status", "Subscribed"].forEach(function (label, i) {
            const td = document.createElement("td");
            td.dataset.label = label;
            td.append(cells[i]);
            tr.append(td);
          });
          body.append(tr);
        });
      } catch (err) {
        if (mine !== seq) return;
        error.hidden = false;
        error.textContent = " " + err.message;
      }
    }, 300);
    const box = form.querySelector("[data-conditions]");
    if (box) wireConditions(box, refresh);
  }

  // -- compose --------------------------------------------------------------------------

  function worstExpansion(text, values, opts) {
    const fields = [];
    text.replace(FIELD, function (_, name) {
      name = name.trim();
      if (!fields.includes(name)) fields.push(name);
      return "";
    });
    if (!fields.length || !window.SmsCount) return text;
    const choices = fields.map(function (f) {
      const v = values[f];
      return v && v.length ? v : [""];
    });
    let worst = null;
    let worstKey = null;
    let tried = 0;
    const pick = new Array(fields.length).fill(0);
    for (;;) {
      const lookup = {};
      fields.forEach(function (f, i) { lookup[f] = choices[i][pick[i]]; });
      const filled = text.replace(FIELD, function (_, name) {
        const v = lookup[name.trim()];
        return v === undefined ? "" : v;
      });
      const a = window.SmsCount.analyze(filled, opts);
      const key = [a.parts, -a.remaining];
      if (worstKey === null || key[0] > worstKey[0] || (key[0] === worstKey[0] && key[1] > worstKey[1])) {
        worst = filled;
        worstKey = key;
      }
      if (++tried >= MAX_COMBINATIONS) break;
      // The next combination, the last field changing fastest (itertools.product's order).
      let i = fields.length - 1;
      while (i >= 0 && ++pick[i] >= choices[i].length) {
        pick[i] = 0;
        i--;
      }
      if (i < 0) break;
    }
    return worst;
  }

  function wireCompose(form) {
    const textarea = form.querySelector("textarea[name=text]");
    const output = form.querySelector("[data-counter]");
    const send = form.querySelector("[data-send]");
    const emojiButton = form.querySelector("[data-emoji-button]");
    const countOut = form.querySelector("[data-field=audience-count]");
    const preview = form.querySelector("[data-field=preview]");
    const note = form.querySelector("[data-field=longest-note]");
    const opts = {
      maxParts: parseInt(textarea.dataset.maxParts || "10", 10),
      ref16: textarea.dataset.ref16 === "true",
    };
    let values = {};
    let audienceCount = null;
    let counter = null;
    let catalog = null;

    function sendable() {
      const a = counter ? counter.analysis() : null;
      if (send) send.disabled = Boolean(a && a.too_long);
    }
    if (window.SmsCount && output) {
      counter = window.SmsCount.attach(textarea, output, Object.assign({}, opts, {
        transform: function (t) { return worstExpansion(t, values, opts); },
      }));
      textarea.addEventListener("input", sendable);
    }
    if (window.EmojiPicker && emojiButton) {
      const picker = window.EmojiPicker.attach(emojiButton, textarea, {
        catalogUrl: emojiButton.dataset.catalogUrl || "/api/emoji",
      });
      Promise.resolve(picker.ready).then(function (data) {
        catalog = data;
        if (counter) counter.setOptions({ shortcodes: data });
      }).catch(function () {
        emojiButton.disabled = true;
        emojiButton.title = "Emoji are unavailable right now";
      });
    } else if (emojiButton) {
      emojiButton.hidden = true;
    }

    form.querySelectorAll("[data-insert]").forEach(function (b) {
      b.addEventListener("click", function () {
        const at = textarea.selectionStart ?? textarea.value.length;
        const end = textarea.selectionEnd ?? at;
        textarea.value = textarea.value.slice(0, at) + b.dataset.insert + textarea.value.slice(end);
        textarea.selectionStart = textarea.selectionEnd = at + b.dataset.insert.length;
        textarea.dispatchEvent(new Event("input", { bubbles: true }));
        textarea.focus();
      });
    });

    function showAudience() {
      const chosen = (form.querySelector("[name=audience]:checked") || {}).value || "segment";
      form.querySelectorAll("[data-audience-part]").forEach(function (part) {
        part.hidden = part.dataset.audiencePart !== chosen;
      });
    }
    function showWhen() {
      const later = (form.querySelector("[name=when]:checked") || {}).value === "later";
      const box = form.querySelector("[data-when-later]");
      if (box) box.hidden = !later;
    }

    let seq = 0;
    const refresh = debounce(async function () {
      const mine = ++seq;
      const data = new FormData(form);
      if (catalog && window.SmsCount) {
        data.set("text", window.SmsCount.expandShortcodes(textarea.value, catalog));
      }
      try {
        const r = await window.gatewayFetch(form.dataset.longestUrl, { method: "POST", body: data });
        if (mine !== seq) return;
        if (!r.ok) throw new Error(r.error);
        values = r.fields || {};
        audienceCount = r.count;
        countOut.textContent = r.count + " profile(s) match";
        if (r.preview) {
          preview.hidden = false;
          preview.querySelector("[data-field=preview-name]").textContent = r.preview.name;
          preview.querySelector("[data-field=preview-text]").textContent = r.preview.text;
        } else {
          preview.hidden = true;
        }
        if (r.merge && r.merge.length) {
          note.hidden = false;
          note.textContent = "Counted on the longest expansion over the audience: " + r.longest;
        } else {
          note.hidden = true;
        }
        output.removeAttribute("data-server-error");
      } catch (err) {
        if (mine !== seq) return;
        values = {};
        countOut.textContent = err.message;
      }
      if (counter) counter.update();
      sendable();
    }, 300);

    form.querySelectorAll("[name=audience]").forEach(function (r) {
      r.addEventListener("change", function () { showAudience(); refresh(); });
    });
    form.querySelectorAll("[name=when]").forEach(function (r) { r.addEventListener("change", showWhen); });
    ["segment_id", "list_id"].forEach(function (n) {
      const el = form.querySelector("[name=" + n + "]");
      if (el) el.addEventListener("change", refresh);
    });
    textarea.addEventListener("input", refresh);
    const box = form.querySelector("[data-conditions]");
    if (box) wireConditions(box, refresh);
    showAudience();
    showWhen();
    refresh();

    form.addEventListener("submit", function (event) {
      const button = event.submitter;
      if (button === send && send.disabled) {
        event.preventDefault();
        return;
      }
      if (button === send) {
        // Many texts go out at once: say how many, and from which short code, before they do.
        const later = (form.querySelector("[name=when]:checked") || {}).value === "later";
        const code = form.querySelector("[name=short_code]").value;
        const question = (later ? "Schedule" : "Send") + " this broadcast from " + code +
          " to " + (audienceCount === null ? "its audience" : audienceCount + " profile(s)") +
          "? Opted-out and inactive ones are skipped.";
        if (!window.confirm(question)) {
          event.preventDefault();
          return;
        }
      }
      if (catalog && window.SmsCount) {
        const expanded = window.SmsCount.expandShortcodes(textarea.value, catalog);
        if (expanded !== textarea.value) textarea.value = expanded;
      }
      if (button === send) {
        window.setTimeout(function () {
          send.disabled = true;
          send.textContent = "Creating…";
        }, 0);
      }
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted && send) {
        send.textContent = "Create broadcast";
        sendable();
      }
    });
  }

  // -- a broadcast's page ---------------------------------------------------------------

  function wireLive(box) {
    const id = parseInt(box.dataset.broadcastId, 10);
    function show(p) {
      if (!p || p.id !== id) return;
      Object.keys(p).forEach(function (k) {
        const el = box.querySelector('[data-count="' + k + '"]');
        if (el) el.textContent = String(p[k]);
      });
      const state = box.querySelector("[data-field=state]");
      state.textContent = LABELS[p.state] || p.state;
      state.dataset.state = p.state;
      state.className = "badge badge-" + p.state;
      const bar = box.querySelector("[data-field=bar]");
      if (bar) {
        bar.max = Math.max(1, p.recipients);
        bar.value = p.sent + p.failed;
      }
      box.querySelectorAll("form[data-allowed]").forEach(function (f) {
        f.hidden = !f.dataset.allowed.split(" ").includes(p.state);
      });
    }
    if (!window.Live) return;
    window.Live.on("broadcast.progress", show);
    window.Live.on("live.open", async function () {
      try {
        show(await window.gatewayFetch(box.dataset.progressUrl));
      } catch (err) {
        console.warn("broadcast progress unavailable:", err);
      }
    });
  }

  // -- the Broadcasts table: each row's status follows its broadcast ----------------------

  function wireTable(table) {
    if (!window.Live) return;
    window.Live.on("broadcast.progress", function (p) {
      const row = table.querySelector('tr[data-broadcast-id="' + p.id + '"]');
      if (!row) return;
      const state = row.querySelector("[data-field=state]");
      state.textContent = LABELS[p.state] || p.state;
      state.className = "badge badge-" + p.state;
    });
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (!window.confirm(f.dataset.confirm)) event.preventDefault();
    });
  });
  document.querySelectorAll("form[data-segment-form]").forEach(wireSegment);
  document.querySelectorAll("form[data-broadcast-compose]").forEach(wireCompose);
  document.querySelectorAll("[data-broadcast-live]").forEach(wireLive);
  document.querySelectorAll("[data-broadcasts-table]").forEach(wireTable);
})();
