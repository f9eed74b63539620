"""What can go wrong in a FastAGI session, as the call flow sees it."""

from __future__ import annotations


class AGIError(Exception):
    """Base of every error the AGI layer raises into a call flow."""


class ChannelHungUp(AGIError):
    """
    The caller's channel is gone: Asterisk sent C{HANGUP}, answered C{511} (dead channel), or
    a channel command returned C{result=-1}. Flows let it propagate; the server ends the
    session quietly.
    """


class AGIConnectionLost(ChannelHungUp):
    """The FastAGI connection closed; for the flow this is the end of the call, like a hangup."""


class AGICommandError(AGIError):
    """Asterisk refused a command: C{510} (unknown command), C{520} (usage) or a failed result."""

    def __init__(self, message: str, code: int = 0, text: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.text = text


class AGITimeout(AGIError):
    """No reply within the command's timeout. The session is dropped: a late reply would be
    taken for the answer to the next command."""


class AGIProtocolError(AGIError):
    """The peer broke the protocol (garbage, oversized lines); the session is dropped."""
