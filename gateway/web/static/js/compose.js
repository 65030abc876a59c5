/*
 * Text This Profile: the compose form's live SMS counter, emoji picker and :name: shortcodes.
 *
 * Wires, for every form[data-compose] on the page:
 *   - SmsCount.attach(textarea, [data-counter], {maxParts, ref16}) from the textarea's
 *     data-max-parts / data-ref16 (the server's limits), so the count follows the codec's rules;
 *     once the emoji catalog is loaded the counter counts :name: as the emoji the server sends;
 *   - EmojiPicker.attach([data-emoji-button], textarea, {catalogUrl}) (which also turns a typed
 *     :name: into its emoji);
 *   - Send is disabled while the text is empty (or only spaces), while the counter says the
 *     text is too long or cannot be sent (its
 *     own warning is the one message about it: a server refusal of the same text is hidden), or
 *     when the server marked the button data-blocked (the profile cannot be texted; the page
 *     says why once, and the button points at it with aria-describedby);
 *   - on submit: known :name: are expanded in the text box and the Send button is disabled, so a
 *     double click sends once (the form's idempotency key covers a resubmit as well).
 *
 * Needs smscount.js and emoji-picker.js loaded first. No inline script (CSP), no HTML from text.
 */
(function () {
  "use strict";

  function wire(form) {
    const textarea = form.querySelector("textarea[name=text]");
    const output = form.querySelector("[data-counter]");
    const emojiButton = form.querySelector("[data-emoji-button]");
    const send = form.querySelector("[data-send]");
    if (!textarea) return;
    // Send, Back, Send: asks before the same text goes twice (resend-guard.js, opt-in).
    const guard =
      window.ResendGuard && form.hasAttribute("data-resend-guard")
        ? window.ResendGuard.attach(form)
        : null;
    let counter = null;
    let catalog = null;
    if (window.SmsCount && output) {
      counter = window.SmsCount.attach(textarea, output, {
        maxParts: parseInt(textarea.dataset.maxParts || "10", 10),
        ref16: textarea.dataset.ref16 === "true",
      });
    }
    if (window.EmojiPicker && emojiButton) {
      const picker = window.EmojiPicker.attach(emojiButton, textarea, {
        catalogUrl: emojiButton.dataset.catalogUrl || "/api/emoji",
      });
      Promise.resolve(picker.ready)
        .then(function (data) {
          catalog = data;
          if (counter) counter.setOptions({ shortcodes: data });
          syncSend();
        })
        .catch(function (err) {
          // The text box and counter still work; only the picker and :name: need the catalog.
          console.warn("emoji catalog unavailable:", err);
          emojiButton.disabled = true;
          emojiButton.title = "Emoji are unavailable right now";
        });
    } else if (emojiButton) {
      emojiButton.hidden = true;
    }

    // The server's error about the text as it was sent, if the page came back refused.
    const serverError = form.querySelector("#text-error");
    const sendDescribedBy = send ? send.getAttribute("aria-describedby") : null;

    function syncSend() {
      if (!send) return;
      const result = counter ? counter.analysis() : null;
      const unsendable = Boolean(
        counter && output && (output.dataset.error === "true" || (result && result.too_long))
      );
      const empty = !textarea.value.trim();
      send.disabled = send.hasAttribute("data-blocked") || unsendable || empty;
      if (unsendable) {
        send.setAttribute("aria-describedby", output.id);
        send.title = "Shorten the message to send it: see the count.";
        if (serverError) serverError.hidden = true; // the counter already says so
      } else if (!send.hasAttribute("data-blocked")) {
        if (sendDescribedBy) send.setAttribute("aria-describedby", sendDescribedBy);
        else send.removeAttribute("aria-describedby");
        if (empty) send.title = "Write the message to send it.";
        else send.removeAttribute("title");
      }
    }
    textarea.addEventListener("input", function () {
      if (serverError) serverError.hidden = true; // it was about the text before this edit
      textarea.removeAttribute("aria-invalid");
      syncSend();
    });
    syncSend();

    form.addEventListener("submit", function (event) {
      if (send && send.disabled) {
        event.preventDefault();
        return;
      }
      if (catalog && window.SmsCount) {
        const expanded = window.SmsCount.expandShortcodes(textarea.value, catalog);
        if (expanded !== textarea.value) textarea.value = expanded;
      }
      if (guard && !guard.mayProceed(event)) return; // it asked whether to send again
      if (send) {
        // After this event: disabling during it would not stop the form's own submission.
        window.setTimeout(function () {
          send.disabled = true;
          send.textContent = "Sending…";
        }, 0);
      }
    });
    // Back/forward cache: a page restored after sending must be usable again.
    // Every pageshow, not only from the cache: the browser may put back the text of a page
    // loaded again after this script ran, and Send (off while the text is empty) must follow.
    window.addEventListener("pageshow", function (event) {
      if (event.persisted && send) send.textContent = "Send Message";
      syncSend();
    });
  }

  document.querySelectorAll("form[data-compose]").forEach(wire);
})();
