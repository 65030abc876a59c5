/*
 * Agent View: the queue of waiting conversations, kept current from the event stream, and the
 * work pane where an agent answers one (a Chat.Conversation with canned responses).
 *
 * Take next claims the conversation that has waited longest; Answer claims the one picked (the
 * server refuses it when another agent already has it). Sending an answer takes the conversation
 * out of the queue; "Return to queue" and "No response needed" do what they say. Every text is
 * set with textContent.
 */
(function (global) {
  "use strict";

  const root = document.getElementById("agent");
  if (!root) return;
  const show = root.dataset.show || "all";
  const me = root.dataset.me || "";
  const list = document.getElementById("queue-list");
  const empty = document.getElementById("queue-empty");
  const status = document.getElementById("agent-status");
  const takeNextButton = document.getElementById("take-next");
  const work = document.getElementById("agent-work");
  const title = document.getElementById("work-title");
  const phone = work.querySelector(".work-phone");
  const profileLink = work.querySelector(".work-profile");
  let current = null; // profile id in the work pane
  let soon = null;
  let busy = false;
  let again = false;

  const conversation = new global.Chat.Conversation(work.querySelector(".conversation"), {
    settings: {
      emojiUrl: work.dataset.emojiUrl,
      maxParts: Number(work.dataset.maxParts) || 10,
      ref16: work.dataset.ref16 === "true",
    },
    onSent() {
      say("Sent. The conversation has left the queue; replies bring it back.");
      refreshSoon();
    },
  });

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function say(text) {
    status.textContent = text;
  }

  function post(url, body) {
    return global.gatewayFetch(url, { method: "POST", body: body || {} });
  }

  function renderItem(item) {
    const li = el("li", "queue-item");
    li.dataset.profileId = String(item.profile_id);
    li.dataset.state = item.state;
    if (item.profile_id === current) li.classList.add("current");
    const head = el("div", "queue-head");
    head.append(el("strong", "queue-name", item.name || item.phone));
    if (item.name) head.append(" ", el("span", "muted", item.phone));
    head.append(" ", el("span", "badge", `${item.messages.length} waiting`));
    if (item.urgent.length) head.append(" ", el("span", "badge badge-bad", `urgent: ${item.urgent.join(", ")}`));
    if (item.question) head.append(" ", el("span", "badge badge-warn", "question"));
    if (!item.subscribed) head.append(" ", el("span", "badge badge-bad", "opted out"));
    const messages = el("ul", "queue-messages");
    for (const m of item.messages) messages.append(el("li", "body-text", m.body));
    const foot = el("div", "queue-foot");
    const since = el("span", "muted", "waiting since ");
    const time = el("time", null, item.shown_time);
    time.dateTime = item.oldest_at;
    since.append(time);
    foot.append(since);
    const mine = item.claimed_by === me;
    if (item.claimed_by) {
      foot.append(" ", el("span", "queue-claimed", mine ? "You are answering" : `${item.claimed_by} is answering`));
    }
    foot.append(el("span", "spacer"));
    const pick = el("button", "queue-pick", mine ? "Continue" : "Answer");
    pick.type = "button";
    pick.dataset.profileId = String(item.profile_id);
    pick.disabled = Boolean(item.claimed_by) && !mine;
    foot.append(pick);
    li.append(head, messages, foot);
    return li;
  }

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const data = await global.gatewayFetch(`/api/agent/queue?show=${encodeURIComponent(show)}`);
        // Keep keyboard focus on the same button across the re-render.
        const focused = document.activeElement && list.contains(document.activeElement)
          ? document.activeElement.dataset.profileId
          : null;
        list.replaceChildren(...data.items.map(renderItem));
        empty.hidden = data.items.length > 0;
        for (const [key, value] of Object.entries(data.counts)) {
          const span = root.querySelector(`[data-count="${key}"]`);
          if (span) span.textContent = String(value);
        }
        if (focused) {
          const button = list.querySelector(`.queue-pick[data-profile-id="${focused}"]`);
          if (button && !button.disabled) button.focus();
        }
      } while (again);
    } catch (err) {
      say(`The queue could not be loaded: ${err.message}`);
    } finally {
      busy = false;
    }
  }

  function refreshSoon() {
    if (soon) return;
    soon = global.setTimeout(() => {
      soon = null;
      refresh();
    }, 200);
  }

  function openWork(item) {
    current = item.profile_id;
    work.hidden = false;
    title.textContent = item.name || item.phone;
    phone.textContent = item.name ? item.phone : "";
    profileLink.href = root.dataset.profileUrl.replace(/\/0(\/|$)/, `/${item.profile_id}$1`);
    conversation.load(item.profile_id).then(() => conversation.focus());
    refreshSoon();
  }

  function closeWork(message) {
    work.hidden = true;
    conversation.stop();
    current = null;
    if (message) say(message);
    takeNextButton.focus();
    refreshSoon();
  }

  async function takeNext() {
    takeNextButton.disabled = true;
    try {
      const data = await post("/api/agent/take-next");
      if (!data.item) {
        say("Nothing is waiting.");
        return;
      }
      say(`You are answering ${data.item.name || data.item.phone}.`);
      openWork(data.item);
    } catch (err) {
      say(err.message);
    } finally {
      takeNextButton.disabled = false;
    }
  }

  async function pick(profileId) {
    try {
      const data = await post(`/api/agent/profiles/${profileId}/claim`);
      say(`You are answering ${data.item.name || data.item.phone}.`);
      openWork(data.item);
    } catch (err) {
      say(err.message);
      refreshSoon();
    }
  }

  async function finish(action, done) {
    if (current === null) return;
    try {
      await post(`/api/agent/profiles/${current}/${action}`);
      closeWork(done);
    } catch (err) {
      say(err.message);
      refreshSoon();
    }
  }

  takeNextButton.addEventListener("click", takeNext);
  list.addEventListener("click", (event) => {
    const button = event.target.closest(".queue-pick");
    if (button && !button.disabled) pick(Number(button.dataset.profileId));
  });
  work.querySelector(".work-release").addEventListener("click", () => finish("release", "Returned to the queue."));
  work.querySelector(".work-no-response").addEventListener("click", () =>
    finish("no-response", "Marked: no response needed."),
  );
  work.querySelector(".work-close").addEventListener("click", () =>
    closeWork("Closed. The conversation stays yours until you answer or return it."),
  );
  work.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.defaultPrevented) {
      event.preventDefault();
      closeWork("");
    }
  });

  if (global.Live) {
    for (const kind of ["agent.changed", "profile.changed"]) global.Live.on(kind, refreshSoon);
    global.Live.on("message.new", refreshSoon);
    // Every time the stream opens, the first time too (see inbox.js).
    global.Live.on("live.open", () => refreshSoon());
  }
})(window);
