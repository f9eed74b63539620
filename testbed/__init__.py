"""A real local stack for end-to-end tests and the demo: Asterisk, redis-server, SIP agents.

Nothing here is a fake: each class starts the real program, waits until it answers, and
stops it (and everything it started) on ``stop()``.

    testbed.asterisk     Asterisk from asterisk/ (host package or the Debian sid chroot)
    testbed.softphones   SIPp softphones for agent101..agent104 and the operator
    testbed.redis        a throw-away redis-server
    testbed.stack        all of them together; ``python -m testbed up|down|status``
"""
