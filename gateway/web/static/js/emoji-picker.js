/*
 * Emoji picker for a text box: an accessible popover with a search box and a grid of emoji built
 * from gateway/web/emoji_catalog.py, plus live expansion of :name: shortcodes as they are typed.
 *
 * Public API (window.EmojiPicker):
 *   attach(button, textarea, options) -> controller {open(), close(), isOpen(), ready, destroy()}
 *     options:
 *       catalogUrl        URL of emoji_catalog.picker_data() as JSON (fetched once, same origin),
 *       catalog           or the data itself: that object, or a catalog array alone;
 *       expandShortcodes  replace a known :name: as soon as its closing colon is typed (default
 *                         true); uses SmsCount.expandShortcodes, so smscount.js loads first;
 *       recent            keep "Recently used" in localStorage (default true);
 *       storageKey        localStorage key (default "gateway.emojiPicker.recent").
 *     `ready` is a Promise of the loaded data (pass it to SmsCount's counter as `shortcodes`).
 *
 * Keyboard: the button opens the picker with focus in the search box. Typing filters by name and
 * shortcode; Enter inserts the first match; Down (or Tab) moves into the grid, where the arrow
 * keys, Home/End and PageUp/PageDown move, Enter or Space inserts, and typing goes back to the
 * search box. Esc closes and returns focus to the button. Inserting puts the emoji at the text
 * box's caret, fires an `input` event (so a counter updates) and closes; Shift+Enter or
 * Shift+click inserts and keeps the picker open.
 *
 * Plain ES2020, no dependencies, no request to any other host; text is never inserted as HTML.
 */
(function (global) {
  "use strict";

  const RECENT_MAX = 16;
  const DEFAULT_STORAGE_KEY = "gateway.emojiPicker.recent";
  const NARROW = "(max-width: 480px)";
  let instances = 0;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Accepts picker_data() ({emoji, shortcodes}) or a bare catalog array. */
  function normalise(data) {
    if (Array.isArray(data)) return { emoji: data, shortcodes: {} };
    if (data && Array.isArray(data.emoji)) return { emoji: data.emoji, shortcodes: data.shortcodes || {} };
    throw new TypeError("emoji catalog: expected an array of entries or {emoji: [...], shortcodes: {...}}");
  }

  function load(options) {
    if (options.catalog) return Promise.resolve(normalise(options.catalog));
    if (!options.catalogUrl) return Promise.reject(new Error("EmojiPicker: give catalog or catalogUrl"));
    return fetch(options.catalogUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => {
        if (!response.ok) throw new Error(`${options.catalogUrl} answered ${response.status}`);
        return response.json();
      })
      .then(normalise);
  }

  function searchTerms(query) {
    return query.toLowerCase().split(/[\s:_]+/u).filter(Boolean);
  }

  function attach(button, textarea, options) {
    const opts = Object.assign({ expandShortcodes: true, recent: true, storageKey: DEFAULT_STORAGE_KEY }, options);
    const id = `emoji-picker-${++instances}`;
    let data = null;
    let built = false;
    let allOptions = []; // every option element of the full list, in catalog order
    let entries = []; // catalog entries, index-aligned with allOptions
    let visible = []; // option elements now shown, in display order
    let active = -1; // index into visible
    let expanding = false;

    // ----- the popover -------------------------------------------------------------------------
    const dialog = el("div", "emoji-picker");
    dialog.id = id;
    dialog.hidden = true;
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-label", "Emoji");
    const search = el("input", "emoji-picker-search");
    search.type = "search";
    search.placeholder = "Search emoji";
    search.autocomplete = "off";
    search.spellcheck = false;
    search.setAttribute("aria-label", "Search emoji by name");
    search.setAttribute("aria-controls", `${id}-list`);
    const list = el("div", "emoji-picker-list");
    list.id = `${id}-list`;
    list.tabIndex = 0;
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Emoji");
    const message = el("p", "emoji-picker-message");
    message.setAttribute("role", "status");
    const hint = el("p", "emoji-picker-hint", "Enter inserts · arrows move · Esc closes");
    hint.setAttribute("aria-hidden", "true");
    dialog.append(search, message, list, hint);
    button.after(dialog);

    button.setAttribute("aria-haspopup", "dialog");
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", id);

    const ready = load(opts).then(
      (loaded) => {
        data = loaded;
        return loaded;
      },
      (err) => {
        console.error("emoji picker: could not load the emoji catalog:", err);
        message.textContent = `Emoji could not be loaded: ${err.message}`;
        throw err;
      },
    );
    // The error is shown and logged above; a caller that awaits `ready` still sees it.
    ready.catch(() => {});

    // ----- recently used -----------------------------------------------------------------------
    function readRecent() {
      if (!opts.recent) return [];
      try {
        const value = JSON.parse(global.localStorage.getItem(opts.storageKey) || "[]");
        return Array.isArray(value) ? value.filter((e) => typeof e === "string") : [];
      } catch (err) {
        console.warn("emoji picker: recently used emoji not readable, starting afresh:", err);
        return [];
      }
    }

    function remember(emoji) {
      if (!opts.recent) return;
      const recent = [emoji, ...readRecent().filter((e) => e !== emoji)].slice(0, RECENT_MAX);
      try {
        global.localStorage.setItem(opts.storageKey, JSON.stringify(recent));
      } catch (err) {
        console.warn("emoji picker: could not store recently used emoji:", err);
      }
    }

    // ----- building the grid (once, on first open) ---------------------------------------------
    function makeOption(entry, key) {
      const option = el("div", "emoji-picker-option", entry.emoji);
      option.id = `${id}-${key}`;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.setAttribute("aria-label", entry.name);
      option.title = entry.shortcodes && entry.shortcodes.length ? `${entry.name} ${entry.shortcodes[0]}` : entry.name;
      option.dataset.emoji = entry.emoji;
      return option;
    }

    function makeGroup(name, key) {
      const group = el("div", "emoji-picker-group");
      group.setAttribute("role", "group");
      const heading = el("div", "emoji-picker-heading", name);
      heading.id = `${id}-g-${key}`;
      group.setAttribute("aria-labelledby", heading.id);
      group.append(heading);
      return group;
    }

    function build() {
      built = true;
      const fragment = document.createDocumentFragment();
      const recentGroup = makeGroup("Recently used", "recent");
      recentGroup.classList.add("emoji-picker-recent");
      fragment.append(recentGroup);
      let group = null;
      let groupName = null;
      entries = data.emoji;
      allOptions = entries.map((entry, i) => {
        const name = entry.group || "Emoji";
        if (name !== groupName) {
          groupName = name;
          group = makeGroup(name, i);
          fragment.append(group);
        }
        const option = makeOption(entry, i);
        option.dataset.search = [entry.name, ...(entry.shortcodes || []), ...(entry.keywords || [])]
          .join(" ")
          .toLowerCase();
        group.append(option);
        return option;
      });
      list.append(fragment);
    }

    function fillRecent() {
      const group = list.querySelector(".emoji-picker-recent");
      group.querySelectorAll("[role=option]").forEach((o) => o.remove());
      const byEmoji = new Map(entries.map((e) => [e.emoji, e]));
      readRecent()
        .filter((e) => byEmoji.has(e))
        .forEach((e, i) => group.append(makeOption(byEmoji.get(e), `r${i}`)));
      group.hidden = group.children.length < 2;
    }

    // ----- filtering and the active option -----------------------------------------------------
    function filter() {
      const terms = searchTerms(search.value);
      const searching = terms.length > 0;
      const recentGroup = list.querySelector(".emoji-picker-recent");
      recentGroup.hidden = searching || recentGroup.children.length < 2;
      for (const option of allOptions) {
        const haystack = option.dataset.search;
        option.hidden = searching && !terms.every((t) => haystack.includes(t));
      }
      for (const group of list.querySelectorAll(".emoji-picker-group:not(.emoji-picker-recent)")) {
        group.hidden = !group.querySelector("[role=option]:not([hidden])");
      }
      visible = Array.from(list.querySelectorAll(".emoji-picker-group:not([hidden]) [role=option]:not([hidden])"));
      message.textContent = searching ? (visible.length ? `${visible.length} found` : "No emoji found") : "";
      setActive(visible.length ? 0 : -1, false);
      fitRows();
    }

    /** The list shows whole rows: it ends at the bottom of the last row that fits, so no row
     *  is cut in half just above the hint line (a new user read that as the hint covering the
     *  last row). The few pixels left over go between the list and the hint. */
    function fitRows() {
      list.style.flex = "";
      list.style.height = "";
      if (!isOpen()) return;
      const room = list.clientHeight;
      if (list.scrollHeight <= room) return; // all of it shows: nothing is cut
      // Offsets in the list's content (as if scrolled to the top), so a scrolled list fits too.
      const origin = list.getBoundingClientRect().top + list.clientTop - list.scrollTop;
      let fit = 0;
      scan: for (const group of list.querySelectorAll(".emoji-picker-group:not([hidden])")) {
        for (const option of group.querySelectorAll("[role=option]:not([hidden])")) {
          const r = option.getBoundingClientRect();
          if (r.top - origin >= room) break scan;
          if (r.bottom - origin <= room) fit = r.bottom - origin;
        }
      }
      if (fit > 0 && fit < room) {
        // Not rounded: a pixel more would show the top of the next row, a pixel less cut this.
        list.style.flex = "0 0 auto";
        list.style.height = `${fit}px`;
      }
    }

    function setActive(index, scroll) {
      // The selected element is looked up afresh: `visible` may have changed since it was set.
      const previous = list.querySelector("[aria-selected=true]");
      if (previous) previous.setAttribute("aria-selected", "false");
      active = index;
      const option = visible[active];
      if (option) {
        option.setAttribute("aria-selected", "true");
        list.setAttribute("aria-activedescendant", option.id);
        if (scroll) option.scrollIntoView({ block: "nearest" });
      } else {
        list.removeAttribute("aria-activedescendant");
      }
    }

    /** The option in the next (+1) or previous (-1) visual row nearest in x to the active one. */
    function rowNeighbour(direction) {
      const here = visible[active].getBoundingClientRect();
      let best = -1;
      let bestRow = null;
      let bestDx = Infinity;
      for (let i = active + direction; i >= 0 && i < visible.length; i += direction) {
        const r = visible[i].getBoundingClientRect();
        const sameRow = Math.abs(r.top - here.top) < here.height / 2;
        if (sameRow) continue;
        if (bestRow === null) bestRow = r.top;
        else if (Math.abs(r.top - bestRow) >= here.height / 2) break; // past the next row
        const dx = Math.abs(r.left - here.left);
        if (dx < bestDx) {
          bestDx = dx;
          best = i;
        }
      }
      return best;
    }

    function pageSize() {
      const option = visible[active];
      if (!option) return 1;
      const height = option.getBoundingClientRect().height || 1;
      return Math.max(1, Math.floor(list.clientHeight / height) - 1);
    }

    // ----- inserting ---------------------------------------------------------------------------
    function insert(emoji, keepOpen) {
      const start = textarea.selectionStart ?? textarea.value.length;
      const end = textarea.selectionEnd ?? start;
      textarea.setRangeText(emoji, start, end, "end");
      remember(emoji);
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
      if (keepOpen) {
        fillRecent();
        filter();
        return;
      }
      close(false);
      textarea.focus();
    }

    // ----- open, close, place ------------------------------------------------------------------
    function place() {
      const narrow = global.matchMedia && global.matchMedia(NARROW).matches;
      dialog.classList.toggle("emoji-picker--sheet", Boolean(narrow));
      if (narrow) {
        dialog.style.left = dialog.style.top = "";
        fitRows();
        return;
      }
      const margin = 8;
      const b = button.getBoundingClientRect();
      const w = dialog.offsetWidth;
      const h = dialog.offsetHeight;
      const left = Math.min(Math.max(margin, b.left), global.innerWidth - w - margin);
      const below = b.bottom + 4;
      const top = below + h <= global.innerHeight - margin || b.top - h - 4 < margin ? below : b.top - h - 4;
      dialog.style.left = `${Math.max(margin, left)}px`;
      dialog.style.top = `${Math.max(margin, top)}px`;
      fitRows();
    }

    function open() {
      if (isOpen()) return;
      dialog.hidden = false;
      button.setAttribute("aria-expanded", "true");
      search.value = "";
      if (data) {
        if (!built) build();
        fillRecent();
        filter();
      } else {
        message.textContent = message.textContent || "Loading emoji…";
        ready.then(() => {
          if (!isOpen()) return;
          message.textContent = "";
          if (!built) build();
          fillRecent();
          filter();
        }, () => {});
      }
      place();
      search.focus();
      document.addEventListener("pointerdown", onOutside, true);
      global.addEventListener("resize", place);
    }

    function close(returnFocus) {
      if (!isOpen()) return;
      dialog.hidden = true;
      button.setAttribute("aria-expanded", "false");
      document.removeEventListener("pointerdown", onOutside, true);
      global.removeEventListener("resize", place);
      if (returnFocus !== false) button.focus();
    }

    function isOpen() {
      return !dialog.hidden;
    }

    // ----- events ------------------------------------------------------------------------------
    function onOutside(event) {
      if (!dialog.contains(event.target) && !button.contains(event.target)) close(false);
    }

    function onButton() {
      if (isOpen()) close();
      else open();
    }

    function onDialogKey(event) {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        close();
      }
    }

    function onSearchKey(event) {
      if (event.key === "Enter") {
        event.preventDefault();
        if (visible[active]) insert(visible[active].dataset.emoji, event.shiftKey);
      } else if (event.key === "ArrowDown" || (event.key === "Tab" && !event.shiftKey && visible.length)) {
        event.preventDefault();
        if (active < 0 && visible.length) setActive(0, true);
        list.focus();
      }
    }

    function onListKey(event) {
      if (active < 0 || !visible.length) return;
      let next = null;
      switch (event.key) {
        case "ArrowRight":
          next = Math.min(active + 1, visible.length - 1);
          break;
        case "ArrowLeft":
          next = Math.max(active - 1, 0);
          break;
        case "ArrowDown":
          next = rowNeighbour(1);
          if (next < 0) next = active;
          break;
        case "ArrowUp":
          next = rowNeighbour(-1);
          if (next < 0) {
            event.preventDefault();
            search.focus();
            return;
          }
          break;
        case "Home":
          next = 0;
          break;
        case "End":
          next = visible.length - 1;
          break;
        case "PageDown":
          next = Math.min(active + pageSize() * columns(), visible.length - 1);
          break;
        case "PageUp":
          next = Math.max(active - pageSize() * columns(), 0);
          break;
        case "Enter":
        case " ":
          event.preventDefault();
          insert(visible[active].dataset.emoji, event.shiftKey);
          return;
        default:
          // Typing while in the grid goes on searching.
          if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey) {
            search.focus();
          }
          return;
      }
      event.preventDefault();
      setActive(next, true);
    }

    /** How many options share the active one's row (read from its neighbours only). */
    function columns() {
      const top = visible[active].getBoundingClientRect().top;
      const inRow = (i) => Math.abs(visible[i].getBoundingClientRect().top - top) < 2;
      let first = active;
      let last = active;
      while (first > 0 && inRow(first - 1)) first -= 1;
      while (last < visible.length - 1 && inRow(last + 1)) last += 1;
      return last - first + 1;
    }

    function onListClick(event) {
      const option = event.target.closest("[role=option]");
      if (!option || !list.contains(option)) return;
      insert(option.dataset.emoji, event.shiftKey);
    }

    function onFocusOut(event) {
      const to = event.relatedTarget;
      if (to && !dialog.contains(to) && to !== button) close(false);
    }

    /** Expand a known :name: that ends before the caret, keeping the caret where it was. */
    function onTextInput() {
      if (expanding || !data || !opts.expandShortcodes || !global.SmsCount) return;
      const caret = textarea.selectionStart ?? textarea.value.length;
      const before = textarea.value.slice(0, caret);
      if (!before.includes(":")) return;
      const expanded = global.SmsCount.expandShortcodes(before, data);
      if (expanded === before) return;
      const end = textarea.selectionEnd ?? caret;
      textarea.setRangeText(expanded, 0, caret, "preserve");
      const shift = expanded.length - before.length;
      textarea.setSelectionRange(caret + shift, end + shift);
      expanding = true;
      try {
        textarea.dispatchEvent(new Event("input", { bubbles: true }));
      } finally {
        expanding = false;
      }
    }

    button.addEventListener("click", onButton);
    dialog.addEventListener("keydown", onDialogKey);
    dialog.addEventListener("focusout", onFocusOut);
    search.addEventListener("input", filter);
    search.addEventListener("keydown", onSearchKey);
    list.addEventListener("keydown", onListKey);
    list.addEventListener("click", onListClick);
    textarea.addEventListener("input", onTextInput);

    return {
      open,
      close,
      isOpen,
      ready,
      destroy() {
        close(false);
        button.removeEventListener("click", onButton);
        textarea.removeEventListener("input", onTextInput);
        dialog.remove();
      },
    };
  }

  global.EmojiPicker = Object.freeze({ attach });
})(window);
