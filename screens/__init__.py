"""The agent's desk and the supervisor's wallboard: server-rendered pages (Jinja2, htmx)
served by ``ivr serve``'s own twisted.web under ``/screens/``, kept live by Server-Sent
Events.

- :mod:`screens.board`: the live picture as plain data; :mod:`screens.aggregate` builds it,
  one per instance, from the events stream and the live routing state, and fans it out;
- :mod:`screens.wallboard` and :mod:`screens.desk`: the two screens' view models (pure) and
  what they do (supervisor actions, state changes, the work order panel);
- :mod:`screens.sse`: the stream's framing and resume point (pure);
- :mod:`screens.app`: requests to answers (login, sessions, CSRF, authorization), no Twisted;
  :mod:`screens.web`: the twisted.web shell; :mod:`screens.wiring`: mounting into the service;
- :mod:`screens.i18n` and ``screens/strings/``: the UI's words, one file per language;
- :mod:`screens.settings`: ``config/screens.yaml`` (language, thresholds).
"""
