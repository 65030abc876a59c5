/*
 * Chat: a conversation with one profile, live, with a reply box (counter, emoji, short code).
 *
 * Public API (window.Chat):
 *   Conversation(root, options): the conversation inside `root`, which holds .history (an <ol>),
 *       .chat-notice, and the reply box of templates/agent/composer.html (.chat-form,
 *       .chat-short-code, .chat-text, .chat-counter, .chat-error, .chat-emoji, .chat-send and any
 *       .canned buttons, whose data-text they insert).
 *       options: {settings: {emojiUrl, maxParts, ref16}, onUpdate(data), onSent(message),
 *                 markRead (default true)}
 *       methods: load(profileId) -> Promise, refresh() -> Promise (fetch what is new),
 *                reload() -> Promise (everything again), send() -> Promise, stop(), focus(),
 *                state (the last GET /api/profiles/<id>/conversation answer), profileId.
 *   open(profileId, {name, phone}, opener) / close(): the pop-up panel of
 *       templates/chat_panel.html. Clicking any <button class="chat-open" data-profile-id
 *       data-name data-phone> opens it; Esc or "× Close" closes it and focus goes back to the
 *       button.
 *
 * Messages from the handset appear as soon as the event stream (live.js) says so; our messages
 * carry ⏳ (queued/sending), ✓ (sent), ✓✓ (delivered) or ✗ (failed, with the error as title).
 * Handset text is only ever set with textContent.
 */
(function (global) {
  "use strict";

  const API = "/api/profiles/";
  const MARKS = {
    queued: ["⏳", "Queued"],
    sending: ["⏳", "Sending"],
    sent: ["✓", "Sent"],
    delivered: ["✓✓", "Delivered"],
    failed: ["✗", "Failed"],
    expired: ["✗", "Expired, not sent"],
  };
  const KIND_NOTES = {
    "opt-out": "opted out",
    "opt-out-all": "opted out of all",
    "opt-in": "opted in",
    help: "asked for help",
    oops: "undid STOP",
    keyword: "keyword",
    confirm: "confirmed (Y)",
    answer: "answered a question",
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  /** A random idempotency key; crypto.randomUUID needs HTTPS, getRandomValues does not. */
  function newKey() {
    const bytes = new Uint8Array(16);
    global.crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** The site's one time format (app.js), not the browser's 12- or 24-hour locale. */
  function shownTime(iso) {
    if (global.GatewayTime) return global.GatewayTime.shown(iso);
    return iso ? String(iso).slice(0, 16).replace("T", " ") : "";
  }

  class Conversation {
    constructor(root, options) {
      this.root = root;
      this.options = Object.assign({ markRead: true }, options);
      const settings = Object.assign({ maxParts: 10, ref16: false, emojiUrl: "/api/emoji" }, this.options.settings);
      const find = (selector) => root.querySelector(selector);
      this.history = find(".history");
      this.notice = find(".chat-notice");
      this.form = find(".chat-form");
      this.select = find(".chat-short-code");
      this.textarea = find(".chat-text");
      this.errorBox = find(".chat-error");
      this.emojiButton = find(".chat-emoji");
      this.sendButton = find(".chat-send");
      this.profileId = null;
      this.state = null;
      this.lastId = 0; // the newest message fetched from the conversation endpoint
      this.readId = 0;
      this.items = new Map(); // message id -> {message, li, asOf}
      // Status events seen so far. A fetch or a send answer is as new as this count when it
      // started: an answer that was on its way while an event changed a message's status must
      // not put the older status back (a "delivered" that reverted to "sent" for good).
      this.eventSeq = 0;
      // Status events of messages not shown yet (their fetch is on its way): id -> {status,
      // error, asOf}. The fetch that brings one may predate the event, and a later fetch asks
      // only for newer messages, so the event's news is kept for when the message appears.
      this.early = new Map();
      this.generation = 0; // answers for an earlier load() are ignored
      this.busy = null;
      this.again = false;
      this.fullNext = false;
      this.sending = false;
      this.unavailable = false; // chat not available for this profile (renderAvailability)
      this.key = null; // idempotency key of the text being sent, kept until it is accepted
      this.chosenCode = null;
      this.soon = null;

      this.counter = global.SmsCount.attach(this.textarea, find(".chat-counter"), {
        maxParts: settings.maxParts,
        ref16: settings.ref16,
      });
      this.picker = global.EmojiPicker.attach(this.emojiButton, this.textarea, { catalogUrl: settings.emojiUrl });
      this.picker.ready.then((data) => {
        this.counter.setOptions({ shortcodes: data });
        this.syncSend();
      }, () => {});

      this.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.send();
      });
      this.textarea.addEventListener("keydown", (event) => {
        if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
        if (event.ctrlKey || event.altKey || event.metaKey) return;
        event.preventDefault();
        this.send();
      });
      this.textarea.addEventListener("input", () => {
        if (!this.sending) this.key = null;
        this.hideError();
        this.syncSend();
      });
      this.select.addEventListener("change", () => {
        this.chosenCode = this.select.value;
      });
      for (const button of root.querySelectorAll(".canned")) {
        button.addEventListener("click", () => this.insert(button.dataset.text || ""));
      }
      this.listen();
    }

    listen() {
      const live = global.Live;
      if (!live) {
        console.warn("chat: live.js is not loaded; the conversation will not update by itself");
        return;
      }
      live.on("message.new", (d) => {
        if (!this.is(d.profile_id)) return;
        this.refresh();
      });
      live.on("message.status", (d) => {
        // Some senders leave profile_id out; a message shown here is known by its id alone.
        const item = this.profileId === null ? null : this.items.get(d.id);
        if (item && item.message.direction === "out") {
          item.asOf = ++this.eventSeq;
          item.message.status = d.status;
          item.message.error = d.error || item.message.error;
          this.renderMark(item);
        } else if (item) {
          this.reload(); // an inbound message completed by late parts: its text changed
        } else if (this.is(d.profile_id)) {
          this.early.set(d.id, { status: d.status, error: d.error, asOf: ++this.eventSeq });
          this.refresh();
        }
      });
      live.on("profile.changed", (d) => {
        if (this.is(d.id)) this.refresh();
      });
      const later = () => {
        if (this.profileId !== null) this.refreshSoon();
      };
      live.on("modem.up", later);
      live.on("modem.down", later);
      // Every time the stream opens, the first time too (see inbox.js): a reconnect may have
      // missed anything, so everything is fetched again; the first opening only needs what
      // came after the panel's own fetch.
      live.on("live.open", (d) => {
        if (this.profileId === null) return;
        if (d.reconnected) this.reload();
        else this.refresh();
      });
    }

    is(profileId) {
      return this.profileId !== null && Number(profileId) === this.profileId;
    }

    /** Show this profile's conversation (from the start). */
    load(profileId) {
      this.profileId = Number(profileId);
      this.generation += 1;
      this.state = null;
      this.lastId = 0;
      this.readId = 0;
      this.items.clear();
      this.early.clear();
      this.history.replaceChildren();
      this.chosenCode = null;
      this.key = null;
      this.textarea.value = "";
      this.textarea.dispatchEvent(new Event("input", { bubbles: true }));
      this.hideError();
      this.busy = null;
      this.again = false;
      return this.refresh();
    }

    stop() {
      this.profileId = null;
      this.generation += 1;
    }

    focus() {
      if (this.textarea.disabled) this.history.focus();
      else this.textarea.focus();
    }

    reload() {
      this.fullNext = true;
      return this.refresh();
    }

    refreshSoon() {
      if (this.soon) return;
      this.soon = global.setTimeout(() => {
        this.soon = null;
        this.refresh();
      }, 300);
    }

    /** Fetch what is new; calls made while a fetch runs are folded into one more fetch. */
    refresh() {
      if (this.profileId === null) return Promise.resolve();
      if (this.busy) {
        this.again = true;
        return this.busy;
      }
      const generation = this.generation;
      this.busy = (async () => {
        do {
          this.again = false;
          await this.pull(generation);
        } while (this.again && generation === this.generation);
      })().finally(() => {
        if (generation === this.generation) this.busy = null;
      });
      return this.busy;
    }

    async pull(generation) {
      const full = this.fullNext;
      this.fullNext = false;
      const after = full ? 0 : this.lastId;
      const asOf = this.eventSeq;
      let data;
      try {
        data = await global.gatewayFetch(`${API}${this.profileId}/conversation?after=${after}`);
      } catch (err) {
        if (generation === this.generation) this.showError(`The conversation could not be loaded: ${err.message}`);
        return;
      }
      if (generation !== this.generation) return;
      if (full) {
        this.items.clear();
        this.history.replaceChildren();
        this.lastId = 0;
      }
      this.apply(data, asOf);
    }

    apply(data, asOf = this.eventSeq) {
      this.state = data;
      this.renderAvailability(data);
      this.renderShortCodes(data);
      const stick = this.nearBottom() || this.items.size === 0;
      this.addMessages(data.messages, asOf);
      for (const m of data.messages) this.lastId = Math.max(this.lastId, m.id);
      if (stick) this.history.scrollTop = this.history.scrollHeight;
      this.markRead();
      if (this.options.onUpdate) this.options.onUpdate(data);
    }

    nearBottom() {
      const h = this.history;
      return h.scrollHeight - h.scrollTop - h.clientHeight < 48;
    }

    renderAvailability(data) {
      const off = !data.chat_available;
      this.notice.hidden = !off;
      this.notice.textContent = off ? `Chat is not available. ${data.reason}` : "";
      this.unavailable = off;
      for (const control of [this.textarea, this.select, this.emojiButton]) control.disabled = off;
      for (const button of this.root.querySelectorAll(".canned")) button.disabled = off;
      this.syncSend();
    }

    /** Send is off while chat is unavailable (the notice says why), while sending, while the
     *  text is empty, and while the counter says the text is too long (its own warning is the
     *  one message about it). */
    syncSend() {
      const off = Boolean(this.unavailable);
      const analysis = this.counter.analysis();
      const tooLong = Boolean(analysis && analysis.too_long);
      const empty = !this.textarea.value.trim();
      this.sendButton.disabled = off || this.sending || tooLong || empty;
      if (tooLong) this.sendButton.title = "Shorten the message to send it: see the count.";
      else if (empty && !off) this.sendButton.title = "Write the message to send it.";
      else this.sendButton.removeAttribute("title");
    }

    renderShortCodes(data) {
      // The code the user picked stays picked; otherwise the one the profile last talked with.
      // Only the short codes the profile may be texted from (sc.refusal says why not).
      const known = (code) => data.short_codes.some((s) => s.code === code && !s.refusal);
      let chosen = known(this.chosenCode) ? this.chosenCode : data.default_short_code;
      if (!known(chosen)) chosen = (data.short_codes.find((s) => !s.refusal) || { code: "" }).code;
      this.select.replaceChildren();
      for (const sc of data.short_codes) {
        const note = sc.refusal ? ` (cannot: ${sc.refusal})` : sc.up ? "" : " (no modem up)";
        const option = el("option", null, `${sc.code} ${sc.name}${note}`);
        option.value = sc.code;
        option.disabled = Boolean(sc.refusal);
        this.select.append(option);
      }
      this.select.value = chosen;
    }

    addMessages(messages, asOf = this.eventSeq) {
      for (let m of messages) {
        const known = this.items.get(m.id);
        if (known) {
          if (asOf < known.asOf) continue; // an event since this answer left says more
          known.message = m;
          known.asOf = asOf;
          this.renderMark(known);
          continue;
        }
        let itemAsOf = asOf;
        const early = this.early.get(m.id);
        if (early) {
          this.early.delete(m.id);
          if (m.direction === "out" && early.asOf > asOf) {
            m = Object.assign({}, m, { status: early.status, error: early.error || m.error });
            itemAsOf = early.asOf;
          }
        }
        const item = { message: m, li: this.renderMessage(m), asOf: itemAsOf };
        this.items.set(m.id, item);
        // Keep the list in id order: a just-sent message may be shown before an earlier one
        // that the next fetch brings.
        let before = null;
        for (const child of this.history.children) {
          if (Number(child.dataset.id) > m.id) {
            before = child;
            break;
          }
        }
        this.history.insertBefore(item.li, before);
      }
    }

    renderMessage(m) {
      const out = m.direction === "out";
      const li = el("li", out ? "bubble out" : "bubble in");
      li.dataset.id = String(m.id);
      li.append(el("div", "body-text", m.body));
      const meta = el("div", "meta");
      const time = el("time", null, shownTime(m.created_at));
      time.dateTime = m.created_at;
      meta.append(time);
      if (!out && KIND_NOTES[m.kind]) meta.append(" · ", el("span", "badge", KIND_NOTES[m.kind]));
      if (!out && m.broadcast) {
        const answers = el("a", "badge", "↩ " + m.broadcast.name);
        answers.href = "/broadcasts/" + m.broadcast.id;
        answers.title = "A reply to this broadcast";
        meta.append(" · ", answers);
      }
      if (!out && m.status === "incomplete") meta.append(" · ", el("span", "badge badge-warn", "parts missing"));
      if (out && m.created_by) meta.append(" · ", el("span", "chat-by", m.created_by));
      if (out) {
        meta.append(" ");
        meta.append(el("span", "chat-mark"));
      }
      li.append(meta);
      if (out) this.renderMark({ message: m, li });
      return li;
    }

    renderMark(item) {
      const mark = item.li.querySelector(".chat-mark");
      if (!mark) return;
      const m = item.message;
      const [symbol, words] = MARKS[m.status] || ["", m.status];
      let title = words;
      if (m.error && (m.status === "failed" || m.status === "expired" || m.status === "queued")) {
        title += `: ${m.error}`;
      }
      if (m.maybe_duplicate) title += " (may have arrived twice)";
      mark.textContent = symbol;
      mark.title = title;
      mark.setAttribute("aria-label", title);
      mark.className = `chat-mark status-${m.status}`;
      item.li.dataset.status = m.status;
    }

    markRead() {
      if (!this.options.markRead || this.lastId <= this.readId || document.visibilityState !== "visible") return;
      const last = this.lastId;
      this.readId = last;
      global
        .gatewayFetch(`${API}${this.profileId}/read`, { method: "POST", body: { last_id: last } })
        .catch((err) => console.warn("chat: could not mark the conversation read:", err.message));
    }

    insert(text) {
      const t = this.textarea;
      if (t.disabled) return;
      const start = t.selectionStart ?? t.value.length;
      const end = t.selectionEnd ?? t.value.length;
      t.setRangeText(text, start, end, "end");
      t.dispatchEvent(new Event("input", { bubbles: true }));
      t.focus();
    }

    showError(message) {
      this.errorBox.textContent = message;
      this.errorBox.hidden = false;
    }

    hideError() {
      this.errorBox.hidden = true;
      this.errorBox.textContent = "";
    }

    // force: an admin's answer to a conversation another agent has taken (asked first).
    async send(force = false) {
      if (this.profileId === null || this.sending) return;
      if (this.state && !this.state.chat_available) return;
      const text = this.textarea.value;
      // Send is off with its title saying why; Enter lands here too and adds no second message.
      if (!text.trim()) return;
      const analysis = this.counter.analysis();
      if (analysis && analysis.too_long) return; // Send is off; the counter says why

      const profileId = this.profileId;
      this.key = this.key || newKey();
      this.sending = true;
      const asOf = this.eventSeq;
      this.sendButton.disabled = true;
      this.form.setAttribute("aria-busy", "true");
      let again = false;
      try {
        const body = { text, short_code: this.select.value || null, idempotency_key: this.key };
        if (force) body.force = true;
        const data = await global.gatewayFetch(`${API}${profileId}/messages`, {
          method: "POST",
          body,
        });
        this.key = null;
        if (profileId !== this.profileId) return;
        this.textarea.value = "";
        this.textarea.dispatchEvent(new Event("input", { bubbles: true }));
        this.hideError();
        this.addMessages([data.message], asOf);
        this.history.scrollTop = this.history.scrollHeight;
        if (this.options.onSent) this.options.onSent(data.message);
        this.refresh();
      } catch (err) {
        const holder = err.status === 409 && err.data ? err.data.claimed_by : null;
        // Someone else is answering: an admin may answer anyway, once asked; an agent may not.
        again = Boolean(holder) && !force && document.body.dataset.role === "admin" &&
          global.confirm(`${holder} is answering this conversation. Send your answer anyway?`);
        if (!again) this.showError(err.message);
        if (err.data && err.data.field === "profile") this.refresh();
      } finally {
        this.sending = false;
        this.form.removeAttribute("aria-busy");
        this.syncSend();
      }
      if (again) await this.send(true);
    }
  }

  // ----- the pop-up panel ----------------------------------------------------------------------
  let panel = null;
  let conversation = null;
  let opener = null;

  function panelConversation() {
    if (!conversation) {
      const data = panel.dataset;
      conversation = new Conversation(panel.querySelector(".conversation"), {
        settings: {
          emojiUrl: data.emojiUrl,
          maxParts: Number(data.maxParts) || 10,
          ref16: data.ref16 === "true",
        },
        onUpdate(state) {
          const p = state.profile;
          setTitle(p.name, p.phone);
          if (document.activeElement === conversation.textarea && conversation.textarea.disabled) {
            panel.querySelector(".chat-close").focus();
          }
        },
      });
    }
    return conversation;
  }

  function setTitle(name, phone) {
    panel.querySelector("#chat-title").textContent = `Chat with ${name || phone || "…"}`;
    panel.querySelector(".chat-phone").textContent = name ? phone || "" : "";
  }

  function open(profileId, info, from) {
    if (!panel) return;
    const conv = panelConversation();
    opener = from || document.activeElement;
    setTitle(info && info.name, info && info.phone);
    panel.hidden = false;
    conv.load(profileId).then(() => {
      if (!panel.hidden && panel.contains(document.activeElement)) conv.focus();
    });
    conv.textarea.disabled = false;
    conv.textarea.focus();
  }

  function close() {
    if (!panel || panel.hidden) return;
    panel.hidden = true;
    if (conversation) conversation.stop();
    if (opener && opener.isConnected) opener.focus();
    if (!opener || document.activeElement !== opener) {
      // The CHAT button went away (e.g. hidden after an opt-out): its row, else the page.
      const row = opener && opener.isConnected ? opener.closest("tr, li") : null;
      const fallback = (row && row.querySelector("a[href]")) || document.getElementById("main");
      if (fallback) fallback.focus();
    }
    opener = null;
  }

  function init() {
    panel = document.getElementById("chat-panel");
    if (!panel) return;
    document.addEventListener("click", (event) => {
      const button = event.target.closest(".chat-open");
      if (!button || !button.dataset.profileId) return;
      event.preventDefault();
      open(button.dataset.profileId, { name: button.dataset.name, phone: button.dataset.phone }, button);
    });
    panel.querySelector(".chat-close").addEventListener("click", close);
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.defaultPrevented) {
        event.preventDefault();
        close();
      }
    });
  }

  global.Chat = Object.freeze({ Conversation, open, close });
  init();
})(window);
