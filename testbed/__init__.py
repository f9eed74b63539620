"""A real local stack for end-to-end tests and the demo: Asterisk, redis-server, SIP agents.

Nothing here is a fake: each class starts the real program, waits until it answers, and
stops it (and everything it started) on ``stop()``.
"""
