"""ARI REST requests: what goes on the wire, and how answers and failures come back."""

from __future__ import annotations

import base64
import json

import pytest
from twisted.internet import defer, error, task
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from ivr.ari import ARIClient, ARIError, ARIUnavailable, place_test_call
from ivr.ari.testing import FakeAsteriskEvents, ari_http

BASE = "http://127.0.0.1:8088/ari"


class Recorder:
    """Answers ARI requests from a table and remembers what was asked."""

    def __init__(self, answers: dict[tuple[bytes, str], tuple[int, bytes | str]]):
        self.answers = answers
        self.requests: list[dict] = []

    def __call__(self, method, url, params, headers, data):
        path = url.removeprefix(BASE)
        self.requests.append(
            {"method": method, "path": path, "params": params, "headers": headers, "data": data}
        )
        code, body = self.answers.get((method, path), (404, '{"message": "Not found"}'))
        data = body.encode() if isinstance(body, str) else body
        return code, {b"Content-Type": b"application/json"}, data


def client(recorder: Recorder) -> ARIClient:
    return ARIClient(
        BASE,
        "hotline",
        "s3cret",
        reactor=task.Clock(),
        http=ari_http(recorder),
        connect=FakeAsteriskEvents(),
    )


# The stubbed HTTP answers synchronously: results are read straight off the Deferreds.
result_of = SynchronousTestCase().successResultOf
failure_of = SynchronousTestCase().failureResultOf


def test_originate_puts_parameters_in_query_and_variables_in_json_body():
    """originate is POST /channels: scalars as query parameters, variables as the JSON body,
    with basic auth; the answer is the channel description."""
    channel = {"id": "call-1", "name": "Local/s@caller-sim-00000000;1", "state": "Down"}
    rec = Recorder({(b"POST", "/channels"): (200, json.dumps(channel))})
    d = client(rec).originate(
        "Local/s@caller-sim",
        extension="s",
        context="hotline",
        caller_id="5551234",
        timeout=20,
        variables={"CALLER_SCRIPT": "w1|d1|h"},
        channel_id="call-1",
        other_channel_id="call-1-sim",
    )
    assert result_of(d) == channel
    (req,) = rec.requests
    assert req["params"] == {
        b"endpoint": [b"Local/s@caller-sim"],
        b"extension": [b"s"],
        b"context": [b"hotline"],
        b"priority": [b"1"],
        b"callerId": [b"5551234"],
        b"timeout": [b"20"],
        b"channelId": [b"call-1"],
        b"otherChannelId": [b"call-1-sim"],
    }
    assert json.loads(req["data"]) == {"variables": {"CALLER_SCRIPT": "w1|d1|h"}}
    auth = base64.b64encode(b"hotline:s3cret")
    assert req["headers"][b"Authorization"] == [b"Basic " + auth]


def test_originate_into_stasis_app_sends_app_and_args_and_no_body():
    """An originate into a Stasis app sends app/appArgs instead of a dialplan location, and no
    body when there are no variables."""
    rec = Recorder({(b"POST", "/channels"): (200, '{"id": "x"}')})
    result_of(client(rec).originate("PJSIP/agent101", app="hotline", app_args="offer,42"))
    (req,) = rec.requests
    assert req["params"][b"app"] == [b"hotline"]
    assert req["params"][b"appArgs"] == [b"offer,42"]
    assert b"extension" not in req["params"]
    assert req["data"] == b""


@pytest.mark.parametrize("kwargs", [{}, {"extension": "s", "app": "hotline"}])
def test_originate_needs_exactly_one_destination(kwargs):
    """originate refuses to guess between a dialplan extension and a Stasis app."""
    with pytest.raises(ValueError, match="exactly one"):
        client(Recorder({})).originate("PJSIP/agent101", **kwargs)


def test_get_channel_is_none_once_the_channel_is_gone():
    """get_channel answers the channel while it exists and None on 404."""
    rec = Recorder({(b"GET", "/channels/call-1"): (200, '{"id": "call-1", "state": "Up"}')})
    ari = client(rec)
    assert result_of(ari.get_channel("call-1")) == {"id": "call-1", "state": "Up"}
    assert result_of(ari.get_channel("call-2")) is None


def test_hangup_is_idempotent():
    """hangup is True when we hung the channel up (204), False when it was already gone."""
    rec = Recorder({(b"DELETE", "/channels/call-1"): (204, "")})
    ari = client(rec)
    assert result_of(ari.hangup("call-1")) is True
    assert rec.requests[0]["params"] == {b"reason": [b"normal"]}
    assert result_of(ari.hangup("call-2")) is False


def test_error_status_raises_ari_error_with_asterisk_message():
    """An error status becomes ARIError carrying status, method, path and Asterisk's message."""
    rec = Recorder({(b"POST", "/channels"): (400, '{"message": "Endpoint must be specified"}')})
    f = failure_of(client(rec).originate("", extension="s"))
    assert f.check(ARIError)
    e = f.value
    assert (e.status, e.method, e.path) == (400, "POST", "/channels")
    assert "Endpoint must be specified" in str(e)


def test_device_and_endpoint_names_are_quoted_as_one_path_segment():
    """A device name's slash is encoded, so PJSIP/agent101 stays one path segment; the state
    word is returned, and unknown endpoints are None."""
    rec = Recorder(
        {
            (b"GET", "/deviceStates/PJSIP%2Fagent101"): (
                200,
                '{"name": "PJSIP/agent101", "state": "NOT_INUSE"}',
            ),
            (b"GET", "/endpoints/PJSIP/agent101"): (200, '{"resource": "agent101"}'),
        }
    )
    ari = client(rec)
    assert result_of(ari.get_device_state("PJSIP/agent101")) == "NOT_INUSE"
    assert result_of(ari.get_endpoint("PJSIP", "agent101")) == {"resource": "agent101"}
    assert result_of(ari.get_endpoint("PJSIP", "nobody")) is None


def test_list_endpoints_and_asterisk_info_return_parsed_json():
    """list_endpoints and asterisk_info return Asterisk's JSON as Python objects."""
    rec = Recorder(
        {
            (b"GET", "/endpoints"): (200, '[{"technology": "PJSIP", "resource": "agent101"}]'),
            (b"GET", "/asterisk/info"): (200, '{"system": {"version": "22.10.1"}}'),
        }
    )
    ari = client(rec)
    assert result_of(ari.list_endpoints()) == [{"technology": "PJSIP", "resource": "agent101"}]
    assert result_of(ari.asterisk_info())["system"]["version"] == "22.10.1"


class RefusingHTTP:
    """An HTTP client for an Asterisk that is not listening."""

    def request(self, method, url, **kwargs):
        return defer.fail(error.ConnectionRefusedError("111: Connection refused"))


def test_connection_refused_raises_ari_unavailable():
    """When nothing listens on ARI's port the request fails with ARIUnavailable, not a raw
    Twisted error, so callers can handle "Asterisk is down" in one place."""
    ari = ARIClient(
        BASE,
        "hotline",
        "s3cret",
        reactor=task.Clock(),
        http=RefusingHTTP(),
        connect=FakeAsteriskEvents(),
    )
    f = failure_of(ari.asterisk_info())
    assert f.check(ARIUnavailable)
    assert "GET /asterisk/info" in str(f.value)


def test_request_that_gets_no_answer_times_out_as_unavailable():
    """A request that gets no answer is cancelled after the timeout (on the injected clock)
    and reported as ARIUnavailable."""
    reactor = MemoryReactorClock()
    ari = ARIClient(BASE, "hotline", "s3cret", reactor=reactor, timeout=5.0)
    d = ari.asterisk_info()
    assert reactor.tcpClients[0][:2] == ("127.0.0.1", 8088)  # connecting, never answered
    assert not d.called
    reactor.advance(5.0)
    assert failure_of(d).check(ARIUnavailable)


def test_password_appears_in_no_repr_or_error():
    """The password is in neither the client's repr nor error messages (they reach logs)."""
    rec = Recorder({(b"GET", "/asterisk/info"): (401, "Authentication required")})
    ari = client(rec)
    f = failure_of(ari.asterisk_info())
    assert "s3cret" not in str(f.value)
    assert "s3cret" not in repr(ari)
    assert "s3cret" not in ari.events.url


def test_place_test_call_originates_local_caller_into_hotline():
    """place_test_call originates Local/s@caller-sim into s@hotline with the call id on the
    hotline half, the script inherited to the caller half, and the caller ID set verbatim."""
    rec = Recorder({(b"POST", "/channels"): (200, '{"id": "call-7"}')})
    name = 'Eve "x" \\ ${EVIL}'
    d = place_test_call(
        client(rec), script="w1|d12|h", caller_number="5551234", caller_name=name, call_id="call-7"
    )
    assert result_of(d) == "call-7"
    (req,) = rec.requests
    assert req["params"][b"endpoint"] == [b"Local/s@caller-sim"]
    assert req["params"][b"context"] == [b"hotline"]
    assert req["params"][b"extension"] == [b"s"]
    assert req["params"][b"channelId"] == [b"call-7"]
    assert req["params"][b"otherChannelId"] == [b"call-7-sim"]
    assert json.loads(req["data"])["variables"] == {
        "__CALLER_SCRIPT": "w1|d12|h",
        "CALLER_NUM": "5551234",
        "CALLER_NAME": name,
        "CALLERID(num)": "5551234",
        "CALLERID(name)": name,
    }


@pytest.mark.parametrize("script", ["x1", "d", "p/tmp/a,b", "w1|pfoo&bar", "d1 2", "p${X}"])
def test_place_test_call_refuses_bad_script_steps(script):
    """A malformed caller script is refused before anything reaches Asterisk: its steps end
    up as dialplan application arguments."""
    rec = Recorder({})
    d = place_test_call(client(rec), script=script, caller_number="1", caller_name="a", call_id="c")
    assert failure_of(d).check(ValueError)
    assert rec.requests == []
