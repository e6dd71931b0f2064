/*
 * The feedback widget, for other sites' pages. Plain JavaScript, no build step, no eval and no
 * inline handlers or styles: it runs under a strict Content-Security-Policy (its styles are a
 * constructed style sheet inside a shadow root, so the page's CSS and the widget's keep apart).
 *
 *   <div data-feedback-answer="chat-42-turn-3">…the answer…</div>
 *   <script src="https://feedback.example.com/widget.js" data-key="fbk_…" data-token="…" async></script>
 *
 * and for single-page apps: FeedbackWidget.mount(element, {answer, token}), FeedbackWidget.unmountAll().
 * Without a token the widget names its viewer by a random id kept in localStorage, which only
 * projects that allow anonymous viewers accept. Every event carries an id made here, so a retry
 * (a flaky network, a double click) is recorded once; failures are retried with backoff, and
 * nothing here ever throws into the page.
 */
(function () {
  "use strict";
  if (window.FeedbackWidget) return;

  var script = document.currentScript;
  var BASE = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  var DEFAULTS = {
    key: script && script.getAttribute("data-key"),
    token: script && script.getAttribute("data-token"),
  };
  var STORE = "feedback-widget:";
  var MAX_ATTEMPTS = 6;
  var EMOJI = { love: "❤️", like: "👍", dislike: "👎", laugh: "😂", wow: "😮", sad: "😢", angry: "😠" };
  var CSS =
    ":host{all:initial!important;display:block!important;visibility:visible!important;opacity:1!important;" +
    "position:static!important;transform:none!important;margin:8px 0!important}" +
    ".fbw{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2937;background:#fff;" +
    "border:1px solid #d1d5db;border-radius:8px;padding:8px 10px;box-sizing:border-box;text-align:left}" +
    ".fbw *{box-sizing:border-box;font:inherit;color:inherit;letter-spacing:normal;text-transform:none}" +
    ".row{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:0 0 6px}" +
    "button{cursor:pointer;border:1px solid #9ca3af;border-radius:6px;background:#f9fafb;padding:3px 9px;min-height:30px}" +
    "button:hover{background:#f3f4f6}button:focus-visible,textarea:focus-visible{outline:2px solid #2563eb;outline-offset:1px}" +
    "button[aria-pressed=true]{background:#dbeafe;border-color:#2563eb}" +
    "button[disabled]{opacity:.6;cursor:default}" +
    "label{display:block;font-weight:600;margin:4px 0 2px}" +
    "textarea{display:block;width:100%;min-height:3em;border:1px solid #9ca3af;border-radius:6px;padding:4px 6px;background:#fff;resize:vertical}" +
    "fieldset{border:0;margin:6px 0 0;padding:0}legend{font-weight:600;padding:0;margin:0 0 4px}" +
    ".status{margin:4px 0 0;min-height:1.2em;color:#374151}[hidden]{display:none!important}";

  var instances = new Map();
  var sheet = null;
  var memoryViewer = null;

  function store(name, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(STORE + name);
      window.localStorage.setItem(STORE + name, value);
    } catch (error) {
      return null; // storage blocked: the widget still works for this page view
    }
    return null;
  }

  function randomHex() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join("");
  }

  function anonymousViewer() {
    var id = store("viewer");
    if (!/^[0-9a-f]{32}$/.test(id || "")) {
      id = memoryViewer || randomHex();
      memoryViewer = id;
      store("viewer", id);
    }
    return "anon:" + id;
  }

  function hash(text) {
    var h = 5381;
    for (var i = 0; i < text.length; i++) h = (h * 33 + text.charCodeAt(i)) >>> 0;
    return h.toString(36);
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function backoff(attempt, retryAfter) {
    var seconds = parseInt(retryAfter || "", 10);
    if (seconds > 0) return Math.min(seconds, 300) * 1000;
    return Math.min(30000, 1000 * Math.pow(2, attempt)) * (0.75 + Math.random() / 2);
  }

  // One request, retried on network errors, 429 and 5xx; resolves to {status, body}.
  function call(method, path, widget, body, attempt) {
    attempt = attempt || 0;
    var url = BASE + "/api/v1/widget/" + path + (path.indexOf("?") < 0 ? "?" : "&") + "key=" + encodeURIComponent(widget.key);
    var headers = { "X-Feedback-Viewer": widget.viewer };
    if (body) headers["Content-Type"] = "application/json";
    function again(retryAfter) {
      if (attempt + 1 >= MAX_ATTEMPTS || !widget.live) return null;
      return sleep(backoff(attempt, retryAfter)).then(function () { return call(method, path, widget, body, attempt + 1); });
    }
    return fetch(url, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      mode: "cors",
      credentials: "omit",
      cache: "no-store",
    }).then(function (response) {
      if (response.status === 429 || response.status >= 500) {
        var retried = again(response.headers.get("Retry-After"));
        if (retried) return retried;
      }
      return response.json().catch(function () { return null; }).then(function (data) {
        return { status: response.status, body: data };
      });
    }, function () {
      return again() || { status: 0, body: null };
    });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text) node.textContent = text;
    return node;
  }

  function Widget(element, options) {
    this.element = element;
    this.answer = options.answer || element.getAttribute("data-feedback-answer") || "";
    this.key = options.key || DEFAULTS.key || "";
    var token = options.token || element.getAttribute("data-token") || DEFAULTS.token;
    this.viewer = token || anonymousViewer();
    this.live = true;
    this.busy = {};
    this.timers = [];
    this.host = document.createElement("feedback-widget");
    this.root = this.host.attachShadow({ mode: "open" });
    if (this.root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
      }
      this.root.adoptedStyleSheets = [sheet];
    }
    element.appendChild(this.host);
    this.load();
  }

  Widget.prototype.later = function (fn, ms) {
    var self = this;
    var id = setTimeout(function () { if (self.live) fn(); }, ms);
    this.timers.push(id);
    return id;
  };

  Widget.prototype.load = function () {
    var self = this;
    if (!this.key || !this.answer) return;
    call("GET", "config?answer=" + encodeURIComponent(this.answer), this).then(function (reply) {
      if (!self.live) return;
      if (reply.status !== 200 || !reply.body) {
        if (window.console) console.warn("Feedback widget: " + ((reply.body && reply.body.error && reply.body.error.message) || "unavailable") + " (answer " + self.answer + ")");
        return;
      }
      self.render(reply.body);
    });
  };

  Widget.prototype.render = function (config) {
    var self = this;
    this.config = config;
    var box = el("div", { class: "fbw", role: "group", "aria-label": "Feedback on this answer" });
    var reactions = el("div", { class: "row", role: "group", "aria-label": "Reactions" });
    config.reactions.forEach(function (reaction) {
      var pressed = config.active.indexOf(reaction.kind) >= 0;
      var button = el("button", { type: "button", "aria-label": reaction.label, title: reaction.label, "aria-pressed": String(pressed), "data-reaction": reaction.kind });
      button.appendChild(el("span", { "aria-hidden": "true" }, EMOJI[reaction.kind] || reaction.label));
      button.addEventListener("click", function (event) { self.react(reaction.kind, button, event); });
      reactions.appendChild(button);
    });
    box.appendChild(reactions);

    var uid = "fbw" + randomHex().slice(0, 8);
    box.appendChild(el("label", { for: uid + "c" }, "Critique"));
    this.critique = el("textarea", { id: uid + "c", maxlength: "5000", rows: "2" });
    box.appendChild(this.critique);
    box.appendChild(el("label", { for: uid + "q" }, "Quote"));
    this.quote = el("textarea", { id: uid + "q", maxlength: "5000", rows: "1", placeholder: "Select text of the answer to quote it" });
    box.appendChild(this.quote);
    var send = el("button", { type: "button" }, "Send critique");
    send.addEventListener("click", function (event) { self.sendCritique(send, event); });
    var row = el("div", { class: "row" });
    row.appendChild(send);
    box.appendChild(row);

    this.followup = el("fieldset", { hidden: "" });
    this.followup.appendChild(el("legend", {}, config.followup.question));
    var outcomes = el("div", { class: "row" });
    config.followup.outcomes.forEach(function (outcome) {
      var button = el("button", { type: "button" }, outcome.label);
      button.addEventListener("click", function (event) { self.answerFollowup(outcome.value, event); });
      outcomes.appendChild(button);
    });
    this.followup.appendChild(outcomes);
    box.appendChild(this.followup);

    this.status = el("p", { class: "status", role: "status", "aria-live": "polite" });
    box.appendChild(this.status);
    this.root.appendChild(box);

    if (!config.followup.answered && config.followup.due_in_seconds !== null) {
      this.scheduleFollowup(config.followup.due_in_seconds);
    }
    this.observe();
  };

  Widget.prototype.say = function (text) {
    if (this.status) this.status.textContent = text;
  };

  // Resolves to true once the event is recorded (now or by an earlier try of the same id).
  Widget.prototype.send = function (event) {
    var self = this;
    event.event_id = event.event_id || randomHex();
    event.answer = this.answer;
    return call("POST", "events", this, { events: [event] }).then(function (reply) {
      var result = reply.body && reply.body.results && reply.body.results[0];
      if (result && (result.status === "created" || result.status === "duplicate")) return true;
      var errors = result && result.errors;
      var message = errors ? errors[Object.keys(errors)[0]][0] : (reply.body && reply.body.error && reply.body.error.message);
      self.say(message || "Could not send your feedback; please try again later.");
      return false;
    });
  };

  Widget.prototype.react = function (kind, button, event) {
    var self = this;
    // The second click of a double click, or a click while this reaction is being sent.
    if (event.detail > 1 || this.busy[kind]) return;
    var on = button.getAttribute("aria-pressed") !== "true";
    this.busy[kind] = true;
    button.setAttribute("aria-pressed", String(on));
    this.send({ type: on ? "reaction" : "unreaction", reaction: kind }).then(function (ok) {
      self.busy[kind] = false;
      if (!ok) button.setAttribute("aria-pressed", String(!on));
    });
  };

  Widget.prototype.sendCritique = function (button, event) {
    var self = this;
    if (event.detail > 1 || this.busy.critique) return;
    var text = this.critique.value.trim();
    var quote = this.quote.value.trim();
    if (!text) {
      this.say("Write your critique first.");
      return;
    }
    // The same critique sent again (after a failure) keeps its id, so it is recorded once.
    var draft = this.draft && this.draft.text === text && this.draft.quote === quote ? this.draft : { text: text, quote: quote, id: randomHex() };
    this.draft = draft;
    this.busy.critique = true;
    button.disabled = true;
    var sent = { type: "critique", text: text, event_id: draft.id };
    if (quote) sent.quote = quote;
    this.send(sent).then(function (ok) {
      self.busy.critique = false;
      button.disabled = false;
      if (ok) {
        self.draft = null;
        self.critique.value = "";
        self.quote.value = "";
        self.say("Thank you: your critique was sent.");
      }
    });
  };

  Widget.prototype.scheduleFollowup = function (seconds) {
    var self = this;
    if (seconds <= 0) this.followup.hidden = false;
    else if (seconds <= 86400) this.later(function () { self.followup.hidden = false; }, seconds * 1000);
  };

  Widget.prototype.answerFollowup = function (outcome, event) {
    var self = this;
    if (event.detail > 1 || this.busy.followup) return;
    this.busy.followup = true;
    this.followupId = this.followupId || randomHex();
    this.send({ type: "followup", outcome: outcome, event_id: this.followupId }).then(function (ok) {
      self.busy.followup = false;
      if (ok) {
        self.followup.hidden = true;
        self.say("Thank you for telling us.");
      }
    });
  };

  // An exposure once the answer is at least half visible (or fills half the viewport) for a
  // second, at most once per exposure window for this viewer and answer.
  Widget.prototype.observe = function () {
    var self = this;
    if (!window.IntersectionObserver) return;
    this.observer = new IntersectionObserver(function (entries) {
      var entry = entries[entries.length - 1];
      var viewport = entry.rootBounds ? entry.rootBounds.height : window.innerHeight;
      var visible = entry.isIntersecting && (entry.intersectionRatio >= 0.5 || entry.intersectionRect.height >= viewport / 2);
      if (visible && !self.seenTimer) {
        self.seenTimer = self.later(function () { self.expose(); }, 1000);
      } else if (!visible && self.seenTimer) {
        clearTimeout(self.seenTimer);
        self.seenTimer = null;
      }
    }, { threshold: [0, 0.25, 0.5, 0.75, 1] });
    this.observer.observe(this.element);
  };

  Widget.prototype.expose = function () {
    var self = this;
    var memo = "seen:" + hash(this.viewer + "\n" + this.answer);
    var windowMs = this.config.exposure_window_seconds * 1000;
    var last = parseInt(store(memo) || "0", 10);
    if (Date.now() - last < windowMs) return;
    store(memo, String(Date.now()));
    this.send({ type: "exposure" }).then(function (ok) {
      if (!ok) {
        store(memo, "0");
        self.seenTimer = null;
        return;
      }
      var followup = self.config.followup;
      if (!followup.answered && followup.due_in_seconds === null) {
        followup.due_in_seconds = followup.delay_seconds;
        self.scheduleFollowup(followup.delay_seconds);
      }
    });
  };

  Widget.prototype.unmount = function () {
    this.live = false;
    this.timers.forEach(clearTimeout);
    if (this.observer) this.observer.disconnect();
    if (this.host.parentNode) this.host.parentNode.removeChild(this.host);
    instances.delete(this.element);
  };

  // Text selected inside an answer (not inside its widget) becomes the quote of its critique.
  document.addEventListener("selectionchange", function () {
    var selection = document.getSelection();
    if (!selection || selection.isCollapsed || !selection.rangeCount) return;
    var node = selection.getRangeAt(0).commonAncestorContainer;
    instances.forEach(function (widget) {
      if (widget.quote && widget.element.contains(node) && !widget.host.contains(node)) {
        widget.quote.value = selection.toString().trim().slice(0, 5000);
      }
    });
  });

  function mount(element, options) {
    try {
      if (!element || instances.has(element)) return instances.get(element) || null;
      var widget = new Widget(element, options || {});
      instances.set(element, widget);
      return widget;
    } catch (error) {
      if (window.console) console.warn("Feedback widget: could not mount", error);
      return null;
    }
  }

  function mountAll() {
    if (!DEFAULTS.key) return;
    document.querySelectorAll("[data-feedback-answer]").forEach(function (element) { mount(element, {}); });
  }

  window.FeedbackWidget = {
    mount: mount,
    unmountAll: function () { Array.from(instances.values()).forEach(function (w) { w.unmount(); }); },
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
