/*
 * Resend guard for a compose form (form[data-resend-guard]): Send, then Back, then Send must
 * not send the same text twice without asking.
 *
 * Why: after a send the browser's Back restores the typed text into a page whose hidden
 * duplicate-protection key is new (the server made a fresh one), so the server cannot tell a
 * second press from a new message. This remembers, per page (sessionStorage: this tab only),
 * the text, short code and key of the last send. Sending the same text from the same short
 * code again shows a question ("already sent — send it again?") instead of sending; "Send it
 * again" sends it as a new message with a new key. A page that comes back refused by the
 * server (data-refused, echoing the key) was not sent, so its record is dropped.
 *
 * API: window.ResendGuard.attach(form) -> { mayProceed(event) }: compose.js calls mayProceed
 * in its submit handler; false means the guard cancelled the submission and asked.
 * No inline script (CSP), no HTML from text.
 */
(function () {
  "use strict";

  const PREFIX = "gateway.sent:";

  function newKey() {
    // getRandomValues also works on a plain-http LAN address (randomUUID needs HTTPS).
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function storage() {
    try {
      return window.sessionStorage;
    } catch (err) {
      return null; // storage disabled: the server's key still stops a double click
    }
  }

  function attach(form) {
    const keyInput = form.querySelector("input[name=idempotency_key]");
    const textarea = form.querySelector("textarea[name=text]");
    const code = form.querySelector("[name=short_code]");
    const send = form.querySelector("[data-send]");
    const store = storage();
    const slot = PREFIX + window.location.pathname;
    let confirmed = false;
    let notice = null;

    function read() {
      if (!store) return null;
      try {
        return JSON.parse(store.getItem(slot) || "null");
      } catch (err) {
        return null;
      }
    }

    function write(record) {
      if (!store) return;
      try {
        store.setItem(slot, JSON.stringify(record));
      } catch (err) {
        console.warn("resend guard: cannot remember the send:", err);
      }
    }

    const earlier = read();
    if (earlier && form.hasAttribute("data-refused") && earlier.key === keyInput.value) {
      store.removeItem(slot); // the server refused that send: nothing went out
    }

    function hide() {
      if (notice) notice.hidden = true;
    }

    function ask(record) {
      if (!notice) {
        notice = document.createElement("div");
        notice.className = "form-error resend-question";
        notice.setAttribute("role", "alert");
        const words = document.createElement("p");
        const buttons = document.createElement("p");
        const again = document.createElement("button");
        again.type = "button";
        again.className = "primary";
        again.textContent = "Send it again";
        again.addEventListener("click", function () {
          confirmed = true;
          keyInput.value = newKey(); // a new message, on purpose
          hide();
          form.requestSubmit(send || undefined);
        });
        const keep = document.createElement("button");
        keep.type = "button";
        keep.textContent = "Don't send";
        keep.addEventListener("click", function () {
          hide();
          textarea.focus();
        });
        buttons.append(again, " ", keep);
        notice.append(words, buttons);
        (send ? send.closest(".toolbar") || send : form).before(notice);
      }
      notice.firstChild.textContent =
        "This exact text was already sent from " +
        (record.shortCode || "this short code") +
        " on this page. Send it again as a new message?";
      notice.hidden = false;
      notice.querySelector("button").focus();
    }

    textarea.addEventListener("input", hide);
    if (code) code.addEventListener("change", hide);

    return {
      mayProceed: function (event) {
        const record = read();
        const text = textarea.value;
        const shortCode = code ? code.value : "";
        if (!confirmed && record && record.text === text && record.shortCode === shortCode) {
          event.preventDefault();
          ask(record);
          return false;
        }
        confirmed = false;
        write({ key: keyInput.value, text: text, shortCode: shortCode });
        return true;
      },
    };
  }

  window.ResendGuard = { attach: attach };
})();
