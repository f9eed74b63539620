/* The screens' only script of their own (no build step): keeps the live stream's place,
 * and runs the durations on screen.
 *
 * htmx's SSE extension opens a new EventSource when the old one gave up (the service was
 * restarting and refused the connection), and a new EventSource sends no Last-Event-ID. So
 * every stream is created here, with the last id seen passed as `last_event_id`: the server
 * then replays what this page missed, from the shared events stream. Loaded before the SSE
 * extension, which keeps a createEventSource it finds.
 *
 * Running durations (screens/running.py) come as `role="timer"` elements with `data-since`
 * (counting up) or `data-until` (counting down), epoch seconds on the service's clock, whose
 * time the page carries in `<body data-now>`; their text is advanced here every second and
 * after every swap, so the server sends a view again only when something happened.
 *
 * Refused actions: their message is shown (see the end of this file).
 */
(function () {
  "use strict";
  var lastId = null;
  var names = ["activity", "queues", "agents", "chart", "clocks", "notice", "state", "pop", "order",
               "orders", "rows"];

  function live(on) {
    var mark = document.getElementById("live");
    if (mark) {
      mark.setAttribute("data-live", on ? "on" : "off");
      mark.textContent = mark.getAttribute(on ? "data-on" : "data-off");
    }
  }

  htmx.createEventSource = function (url) {
    var full = url;
    if (lastId) {
      full += (url.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + encodeURIComponent(lastId);
    }
    var source = new EventSource(full, { withCredentials: true });
    names.forEach(function (name) {
      source.addEventListener(name, function (event) {
        if (event.lastEventId) { lastId = event.lastEventId; }
      });
    });
    source.addEventListener("open", function () { live(true); });
    source.addEventListener("error", function () { live(false); });
    return source;
  };

  var skew = 0; // the service's clock minus this browser's, in seconds

  function duration(seconds) { // as screens/i18n.py's Strings.duration
    var total = Math.max(0, Math.floor(seconds));
    var hours = Math.floor(total / 3600), minutes = Math.floor((total % 3600) / 60);
    var secs = total % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return hours ? hours + ":" + pad(minutes) + ":" + pad(secs) : minutes + ":" + pad(secs);
  }

  function tick() {
    var now = Date.now() / 1000 + skew;
    var timers = document.querySelectorAll("[data-since], [data-until]");
    for (var i = 0; i < timers.length; i++) {
      var since = timers[i].getAttribute("data-since");
      var text = since !== null ? duration(now - parseFloat(since))
        : duration(parseFloat(timers[i].getAttribute("data-until")) - now);
      if (timers[i].textContent !== text) { timers[i].textContent = text; }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var served = parseFloat(document.body.getAttribute("data-now"));
    if (!isNaN(served)) { skew = served - Date.now() / 1000; }
    tick();
    window.setInterval(tick, 1000);
  });
  document.addEventListener("htmx:sseMessage", tick);
  document.addEventListener("htmx:afterSettle", tick);

  /* An action the service refuses (4xx) or fails (5xx) is answered with a message fragment
   * (_message.html, role="alert"). htmx swaps no error answer by default, so the person saw
   * nothing happen. The message goes to the page's message area for what was asked (the
   * request's own *-result or detail target), never in place of the order panel it came from. */
  function messageArea(target) {
    if (target && target.id && /(-result|^detail|^orders-filtered)$/.test(target.id)) {
      return target;
    }
    return document.getElementById("order-result") || document.getElementById("action-result");
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (detail.xhr.status < 400 || !detail.xhr.responseText) { return; }
    var area = messageArea(detail.target);
    if (!area) { return; }
    detail.shouldSwap = true;
    detail.isError = false;
    detail.target = area;
    detail.swapOverride = "innerHTML";
  });
})();
