/* The screens' only script of their own (no build step): keeps the live stream's place.
 *
 * htmx's SSE extension opens a new EventSource when the old one gave up (the service was
 * restarting and refused the connection), and a new EventSource sends no Last-Event-ID. So
 * every stream is created here, with the last id seen passed as `last_event_id`: the server
 * then replays what this page missed, from the shared events stream. Loaded before the SSE
 * extension, which keeps a createEventSource it finds.
 */
(function () {
  "use strict";
  var lastId = null;
  var names = ["activity", "queues", "agents", "chart", "clocks", "notice", "state", "pop", "order",
               "orders"];

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
})();
