/*
 * SMS character counter for the browser: which alphabet a text needs, how many parts it takes and
 * where they split, by exactly the rules of the server's gateway/modem/text.py (default GSM
 * alphabet, no national tables). Both are checked against tests/vectors/count.json and against
 * each other on random texts (tests/browser/test_smscount.py); text.py is the reference.
 *
 * Public API (window.SmsCount):
 *   analyze(text, {ref16 = false, maxParts = 10, encoding = "auto"}) -> the shape of
 *       Analysis.to_json(): {encoding, parts, units, remaining, part_capacity, unicode_chars,
 *       suggestion, max_parts, too_long, segments}. Throws SmsCount.CodecError for
 *       encoding "gsm7" on a text that needs Unicode, an unknown encoding or maxParts < 1.
 *   clusters(text) -> array of grapheme clusters (text.py's small rule set, not Intl.Segmenter).
 *   lookalike(ch) -> GSM-7 replacement string for one code point, or null.
 *   transliterate(text) -> text with every look-alike replaced.
 *   expandShortcodes(text, shortcodes) -> text with known :name: replaced by its emoji, as the
 *       server's emoji.emojize(text, language="alias") does. `shortcodes` is a Map or object
 *       {":name:": emoji} (emoji_catalog.shortcode_map()), a catalog array of
 *       {emoji, shortcodes: [...]}, or {emoji: [...], shortcodes: {...}} as the picker loads it
 *       (emoji_catalog.picker_data()); a catalog array alone knows only the listed emoji's names.
 *   attach(textarea, output, options) -> controller {update(), analysis(), setOptions(changes),
 *       detach()}: shows "N characters remaining · P SMS" and what forced Unicode, with a button
 *       that applies the GSM look-alike suggestion, in aria-live regions inside `output`.
 *       options: {ref16, maxParts, encoding, shortcodes, transform}; with `shortcodes` the text is
 *       counted as the server will send it, after expanding :name:; `transform(text) -> text`
 *       then gives the text to count (a broadcast's longest expansion of its merge fields). output gets data-encoding,
 *       data-parts and data-remaining attributes for scripts and tests.
 *
 * Plain ES2020, no dependencies; text is never inserted as HTML.
 */
(function (global) {
  "use strict";

  const GSM7 = "gsm7";
  const UCS2 = "ucs2";
  const USER_DATA_OCTETS = 140;
  const CONCAT8_UDH_OCTETS = 6;
  const CONCAT16_UDH_OCTETS = 7;
  const DEFAULT_MAX_PARTS = 10;

  /** Raised for what the server's CodecError stands for; `where` and `why` as in Python. */
  class CodecError extends Error {
    constructor(where, why) {
      super(`${where}: ${why}`);
      this.name = "CodecError";
      this.where = where;
      this.why = why;
    }
  }

  // TS 23.038 default alphabet (alphabets.DEFAULT_LOCKING); 0x1B is the escape, never a character.
  const DEFAULT_LOCKING =
    "@£$¥èéùìòÇ\nØø\rÅå" +
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ" +
    " !\"#¤%&'()*+,-./" +
    "0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNO" +
    "PQRSTUVWXYZÄÖÑÜ§" +
    "¿abcdefghijklmno" +
    "pqrstuvwxyzäöñüà";
  // The extension table (alphabets.DEFAULT_SINGLE_SHIFT): each costs an escape plus its code.
  const DEFAULT_SINGLE_SHIFT = "\f^{}\\[~]|€";

  // Character -> septets it costs (1 or 2). The locking table wins over an escape, as in text.py.
  const SEPTETS = new Map();
  for (const ch of DEFAULT_SINGLE_SHIFT) SEPTETS.set(ch, 2);
  for (const ch of DEFAULT_LOCKING) if (ch !== "\x1b") SEPTETS.set(ch, 1);

  // text.py _LOOKALIKES, character for character.
  const LOOKALIKES = new Map([
    ["\u2018", "'"], ["\u2019", "'"], ["\u201a", "'"], ["\u201b", "'"], ["\u2032", "'"],
    ["\u00b4", "'"], ["`", "'"], ["\u2039", "'"], ["\u203a", "'"],
    ["\u201c", '"'], ["\u201d", '"'], ["\u201e", '"'], ["\u201f", '"'], ["\u2033", '"'],
    ["\u00ab", '"'], ["\u00bb", '"'],
    ["\u2010", "-"], ["\u2011", "-"], ["\u2012", "-"], ["\u2013", "-"], ["\u2014", "-"],
    ["\u2015", "-"], ["\u2212", "-"],
    ["\u2026", "..."], ["\u2022", "*"], ["\u00b7", "."],
    ["\u00a0", " "], ["\u2002", " "], ["\u2003", " "], ["\u2004", " "], ["\u2005", " "],
    ["\u2006", " "], ["\u2007", " "], ["\u2008", " "], ["\u2009", " "], ["\u200a", " "],
    ["\u202f", " "], ["\u205f", " "], ["\u3000", " "], ["\t", " "],
    ["\u200b", ""], ["\u200c", ""], ["\u2060", ""], ["\ufeff", ""], ["\u00ad", ""],
    ["\u2028", "\n"], ["\u2029", "\n"],
    ["\u00e7", "Ç"], ["\u2122", "TM"], ["\u00a9", "(c)"], ["\u00ae", "(R)"],
  ]);

  const MARK = /^[\p{Mn}\p{Mc}\p{Me}]$/u;
  const ZWJ = "\u200d";

  /** Mirrors text.py _is_extend for one code point. */
  function isExtend(ch) {
    const cp = ch.codePointAt(0);
    return (
      MARK.test(ch) ||
      cp === 0x200d ||
      (cp >= 0x1f3fb && cp <= 0x1f3ff) || // emoji skin tone modifiers
      (cp >= 0xe0020 && cp <= 0xe007f) || // tag characters (subdivision flags)
      (cp >= 0xfe00 && cp <= 0xfe0f)
    );
  }

  function isRegional(ch) {
    const cp = ch.codePointAt(0);
    return cp >= 0x1f1e6 && cp <= 0x1f1ff;
  }

  /** Grapheme clusters of an array of code points (text.py clusters(), index for index). */
  function clusterCodePoints(cps) {
    const out = [];
    const n = cps.length;
    let i = 0;
    while (i < n) {
      const start = i;
      const ch = cps[i];
      i += 1;
      if (ch === "\r" && i < n && cps[i] === "\n") {
        i += 1;
      } else if (isRegional(ch) && i < n && isRegional(cps[i])) {
        i += 1;
      }
      if (ch !== "\r" && ch !== "\n") {
        while (i < n) {
          if (cps[i - 1] === ZWJ) {
            i += 1; // whatever follows a zero-width joiner belongs to the cluster
          } else if (isExtend(cps[i])) {
            i += 1;
          } else {
            break;
          }
        }
      }
      out.push(cps.slice(start, i));
    }
    return out;
  }

  /** Split text into grapheme clusters by text.py's rules. */
  function clusters(text) {
    return clusterCodePoints(Array.from(text)).map((c) => c.join(""));
  }

  function capacity(encoding, udhOctets) {
    const free = USER_DATA_OCTETS - udhOctets;
    if (encoding === GSM7) return Math.floor((free * 8) / 7);
    if (encoding === UCS2) return Math.floor(free / 2);
    return free;
  }

  function utf16Units(ch) {
    return ch.codePointAt(0) > 0xffff ? 2 : 1;
  }

  function gsm7Cost(ch) {
    const septets = SEPTETS.get(ch);
    if (septets === undefined) {
      throw new CodecError("text", `${repr(ch)} (${codepoint(ch)}) is not in the GSM 7-bit alphabet`);
    }
    return septets;
  }

  function sumCost(cps, cost) {
    let total = 0;
    for (const ch of cps) total += cost(ch);
    return total;
  }

  /** text.py _segment over code points; returns arrays of code points, one per part. */
  function segment(cps, cap, cost) {
    const parts = [];
    let current = [];
    let used = 0;
    for (const cluster of clusterCodePoints(cps)) {
      const size = sumCost(cluster, cost);
      if (used + size <= cap) {
        current.push(...cluster);
        used += size;
        continue;
      }
      if (size <= cap) {
        parts.push(current);
        current = cluster.slice();
        used = size;
        continue;
      }
      // A cluster longer than a whole part: split it between characters, never inside one.
      for (const ch of cluster) {
        const c = cost(ch);
        if (used + c > cap) {
          parts.push(current);
          current = [];
          used = 0;
        }
        current.push(ch);
        used += c;
      }
    }
    parts.push(current);
    return parts;
  }

  /** text.py plan() for the default tables: [segments (code point arrays), units, capacity]. */
  function plan(cps, encoding, ref16) {
    const cost = encoding === GSM7 ? gsm7Cost : utf16Units;
    const units = sumCost(cps, cost);
    const single = capacity(encoding, 0);
    if (units <= single) return [[cps], units, single];
    const cap = capacity(encoding, ref16 ? CONCAT16_UDH_OCTETS : CONCAT8_UDH_OCTETS);
    return [segment(cps, cap, cost), units, cap];
  }

  /** A GSM-7 replacement for one code point that has none, or null (text.py lookalike()). */
  function lookalike(ch) {
    if (SEPTETS.has(ch)) return null;
    const rep = LOOKALIKES.get(ch);
    if (rep !== undefined) return rep;
    // unicodedata.combining(c) != 0 is approximated by "is a mark"; the browser test compares
    // both over every code point.
    let base = "";
    for (const c of ch.normalize("NFD")) if (!MARK.test(c)) base += c;
    if (base && base !== ch && Array.from(base).every((c) => SEPTETS.has(c))) return base;
    return null;
  }

  function transliterate(text) {
    let out = "";
    for (const ch of text) {
      const rep = lookalike(ch);
      out += rep === null ? ch : rep;
    }
    return out;
  }

  function codepoint(ch) {
    return "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
  }

  function repr(ch) {
    return JSON.stringify(ch);
  }

  /**
   * Count and split `text` as the server would send it (never throws for length: see too_long).
   * Returns the shape of text.py Analysis.to_json().
   */
  function analyze(text, options) {
    const opts = options || {};
    const ref16 = Boolean(opts.ref16);
    const maxParts = opts.maxParts === undefined ? DEFAULT_MAX_PARTS : opts.maxParts;
    let encoding = opts.encoding === undefined ? "auto" : opts.encoding;
    if (encoding !== "auto" && encoding !== GSM7 && encoding !== UCS2) {
      throw new CodecError("encoding", `unknown encoding ${repr(encoding)}; use auto, gsm7 or ucs2`);
    }
    if (!(maxParts >= 1)) {
      throw new CodecError("max_parts", `must be at least 1, not ${maxParts}`);
    }
    const cps = Array.from(String(text));
    if (encoding === "auto") {
      encoding = cps.every((ch) => SEPTETS.has(ch)) ? GSM7 : UCS2;
    } else if (encoding === GSM7) {
      cps.forEach((ch, pos) => {
        if (!SEPTETS.has(ch)) {
          throw new CodecError(
            `character ${pos}`,
            `${repr(ch)} (${codepoint(ch)}) is not in the GSM 7-bit alphabet`,
          );
        }
      });
    }
    const [segments, units, cap] = plan(cps, encoding, ref16);
    const cost = encoding === GSM7 ? gsm7Cost : utf16Units;
    const lastUnits = sumCost(segments[segments.length - 1], cost);
    const forced = [];
    if (encoding === UCS2) {
      cps.forEach((ch, position) => {
        if (!SEPTETS.has(ch)) {
          forced.push({ char: ch, position, codepoint: codepoint(ch), replacement: lookalike(ch) });
        }
      });
    }
    const suggestion = forced.some((u) => u.replacement !== null) ? transliterate(text) : null;
    return {
      encoding,
      parts: segments.length,
      units,
      remaining: cap - lastUnits,
      part_capacity: cap,
      unicode_chars: forced,
      suggestion,
      max_parts: maxParts,
      too_long: segments.length > maxParts,
      segments: segments.map((s) => s.join("")),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // :name: shortcodes, as emoji.emojize(text, language="alias") finds them: the delimiters around
  // one or more of Python's \w or the library's extra name characters, NFKC-normalised, and only
  // names the library knows are replaced.

  const SHORTCODE =
    /:[\p{L}\p{N}_\-&.’”“()!#*+,/«»\u0300\u0301\u0302\u0303\u0306\u0308\u030a\u0327\u064b\u064e\u064f\u0650\u0653\u0654\u3099\u30fb\u309a\u0655]+:/gu;

  const mapCache = new WeakMap();

  /** Normalise the accepted shortcode sources into a Map(":name:" -> emoji). */
  function shortcodeMap(source) {
    if (!source) return new Map();
    if (source instanceof Map) return source;
    const cached = mapCache.get(source);
    if (cached) return cached;
    const map = new Map();
    const addCatalog = (entries) => {
      for (const entry of entries) {
        for (const name of entry.shortcodes || []) if (!map.has(name)) map.set(name, entry.emoji);
      }
    };
    const addObject = (object) => {
      for (const [name, emoji] of Object.entries(object)) map.set(name, emoji);
    };
    if (Array.isArray(source)) {
      addCatalog(source);
    } else if (Array.isArray(source.emoji)) {
      // emoji_catalog.picker_data(): listed emoji plus the names only the server knows.
      addCatalog(source.emoji);
      if (source.shortcodes) addObject(source.shortcodes);
    } else {
      addObject(source);
    }
    mapCache.set(source, map);
    return map;
  }

  function expandShortcodes(text, shortcodes) {
    const map = shortcodeMap(shortcodes);
    if (map.size === 0) return String(text);
    return String(text).replace(SHORTCODE, (match) => {
      const name = ":" + match.slice(1, -1).normalize("NFKC") + ":";
      const emoji = map.get(name);
      return emoji === undefined ? match : emoji;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The counter under a text box.

  const INVISIBLE = /^[\p{M}\p{Cf}\p{Z}\p{Cc}\p{Cs}]$/u;
  const SHOWN_CHARS = 12;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  /**
   * Show the count of `textarea` in `output`, updated on every input event.
   * Returns {update(), analysis(), setOptions(changes), detach()}.
   */
  function attach(textarea, output, options) {
    const opts = Object.assign({}, options);
    const status = el("span", "smscount-status");
    status.setAttribute("aria-live", "polite");
    status.setAttribute("aria-atomic", "true");
    const notice = el("span", "smscount-unicode");
    notice.setAttribute("aria-live", "polite");
    notice.hidden = true;
    output.replaceChildren(status, notice);
    output.classList.add("smscount");
    let last = null;

    function describeForced(result) {
      notice.replaceChildren();
      if (result.encoding !== UCS2 || result.unicode_chars.length === 0) {
        notice.hidden = true;
        return;
      }
      notice.hidden = false;
      notice.append(el("span", "smscount-label", "Unicode: "));
      const seen = new Set();
      for (const u of result.unicode_chars) {
        if (seen.has(u.char)) continue;
        seen.add(u.char);
        if (seen.size > SHOWN_CHARS) {
          notice.append(el("span", "smscount-more", "…"), " ");
          break;
        }
        const shown = INVISIBLE.test(u.char) ? u.codepoint : u.char;
        const chip = el("span", "smscount-char", shown);
        chip.title = u.codepoint;
        notice.append(chip, " ");
      }
      notice.append(el("span", "smscount-forced", "forced Unicode"));
      if (result.suggestion !== null) {
        const button = el("button", "smscount-replace", "Replace with GSM look-alikes");
        button.type = "button";
        const suggestion = result.suggestion;
        button.addEventListener("click", () => {
          textarea.value = suggestion;
          textarea.dispatchEvent(new Event("input", { bubbles: true }));
          textarea.focus();
        });
        notice.append(" — ", button);
      }
    }

    function update() {
      const expanded = expandShortcodes(textarea.value, opts.shortcodes);
      // A broadcast counts its longest expansion over the audience (broadcasts.js).
      const text = opts.transform ? opts.transform(expanded) : expanded;
      let result;
      try {
        result = analyze(text, opts);
      } catch (err) {
        if (!(err instanceof CodecError)) throw err;
        status.textContent = err.message;
        output.dataset.error = "true";
        last = null;
        return null;
      }
      delete output.dataset.error;
      last = result;
      output.dataset.encoding = result.encoding;
      output.dataset.parts = String(result.parts);
      output.dataset.remaining = String(result.remaining);
      output.classList.toggle("smscount-too-long", result.too_long);
      let line = `${plural(result.remaining, "character", "characters")} remaining · ${result.parts} SMS`;
      if (result.too_long) line += ` — too long, the limit is ${result.max_parts} SMS`;
      status.textContent = line;
      describeForced(result);
      return result;
    }

    textarea.addEventListener("input", update);
    update();
    return {
      update,
      analysis: () => last,
      setOptions(changes) {
        Object.assign(opts, changes);
        return update();
      },
      detach() {
        textarea.removeEventListener("input", update);
        output.replaceChildren();
      },
    };
  }

  global.SmsCount = Object.freeze({
    analyze,
    clusters,
    lookalike,
    transliterate,
    expandShortcodes,
    attach,
    isExtend,
    CodecError,
  });
})(window);
