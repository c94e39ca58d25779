"""Bad input over raw sockets: each gets the right status, or a GOAWAY for that connection
alone; the server keeps serving other connections and its memory returns to its baseline."""
import struct
import time

import grpc
import pytest

from conftest import Service, binary, rss_kib
import h2raw
from h2raw import RawConnection, frame, grpc_message, status_of
import interop_protos

messages_pb2, empty_pb2, test_pb2_grpc = interop_protos.load()

EMPTY_CALL = "/grpc.testing.TestService/EmptyCall"
UNARY_CALL = "/grpc.testing.TestService/UnaryCall"
FULL_DUPLEX = "/grpc.testing.TestService/FullDuplexCall"


@pytest.fixture(scope="module")
def server():
    service = Service([binary("tasker-interop-server"), "--port={port}",
                       "--keepalive_interval_ms=300", "--keepalive_timeout_ms=300"])
    yield service
    service.stop()


def still_serves(server):
    """A stock client on a new connection still gets answers."""
    with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        assert stub.EmptyCall(empty_pb2.Empty(), timeout=5) == empty_pb2.Empty()
    assert server.alive()


def goaway_of(connection):
    """The GOAWAY the server sends before it closes this connection."""
    frames = list(connection.frames(timeout=5))
    goaways = [f for f in frames if f.kind == h2raw.GOAWAY]
    assert goaways, "expected a GOAWAY, got %r" % frames
    return goaways[-1]


def test_garbage_instead_of_the_preface(server):
    connection = RawConnection(server.port)
    connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 64)
    assert goaway_of(connection).error_code == h2raw.PROTOCOL_ERROR
    connection.close()
    still_serves(server)


@pytest.mark.parametrize("name,payload,code", [
    ("settings of a length not a multiple of 6", frame(h2raw.SETTINGS, 0, 0, b"\x00" * 5), h2raw.FRAME_SIZE_ERROR),
    ("DATA on stream 0", frame(h2raw.DATA, 0, 0, b"x"), h2raw.PROTOCOL_ERROR),
    ("frame over the maximum frame size", frame(h2raw.DATA, 0, 1, b"x" * 20000), h2raw.FRAME_SIZE_ERROR),
    ("HEADERS with an undecodable header block", frame(h2raw.HEADERS, h2raw.END_HEADERS, 1, b"\xff\xff\xff\xff\xff"),
     h2raw.COMPRESSION_ERROR),
    ("a zero window increment on the connection", frame(h2raw.WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)),
     h2raw.PROTOCOL_ERROR),
    ("a PING of the wrong length", frame(h2raw.PING, 0, 0, b"\x00" * 7), h2raw.FRAME_SIZE_ERROR),
    ("HEADERS on an even (server) stream id", frame(h2raw.HEADERS, h2raw.END_HEADERS, 2, b""), h2raw.PROTOCOL_ERROR),
])
def test_malformed_frames_get_a_goaway_for_that_connection_alone(server, name, payload, code):
    bystander = RawConnection(server.port)
    bystander.handshake()
    connection = RawConnection(server.port)
    connection.handshake()
    connection.send(payload)
    assert goaway_of(connection).error_code == code, name
    connection.close()
    # The other open connection goes on working.
    bystander.send_headers(1, EMPTY_CALL)
    bystander.send_data(1, grpc_message(b""), end_stream=True)
    headers, data, trailers, reset = bystander.response(1)
    assert status_of(headers, trailers) == "0" and reset is None
    bystander.close()
    still_serves(server)


def test_message_truncated_at_end_of_stream_is_internal(server):
    connection = RawConnection(server.port)
    connection.handshake()
    connection.send_headers(1, UNARY_CALL)
    connection.send_data(1, grpc_message(b"\x00" * 10, declared_length=100), end_stream=True)
    headers, data, trailers, reset = connection.response(1)
    assert status_of(headers, trailers) == "13"
    assert "ended inside a message" in (trailers or headers)["grpc-message"]
    connection.close()
    still_serves(server)


def test_compressed_flag_without_grpc_encoding_is_internal(server):
    connection = RawConnection(server.port)
    connection.handshake()
    connection.send_headers(1, UNARY_CALL)
    connection.send_data(1, grpc_message(b"\x00", compressed=True), end_stream=True)
    headers, data, trailers, reset = connection.response(1)
    assert status_of(headers, trailers) == "13"
    assert "grpc-encoding" in (trailers or headers)["grpc-message"]
    connection.close()


def test_unsupported_grpc_encoding_is_unimplemented(server):
    connection = RawConnection(server.port)
    connection.handshake()
    connection.send_headers(1, UNARY_CALL, extra=[("grpc-encoding", "snappy")])
    connection.send_data(1, grpc_message(b""), end_stream=True)
    headers, data, trailers, reset = connection.response(1)
    assert status_of(headers, trailers) == "12"
    assert headers["grpc-accept-encoding"] == "identity"
    connection.close()


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_wrong_content_type_is_http_415(server, content_type):
    connection = RawConnection(server.port)
    connection.handshake()
    connection.send_headers(1, UNARY_CALL, content_type=content_type)
    connection.send_data(1, b"{}", end_stream=True)
    headers, data, trailers, reset = connection.response(1)
    assert headers[":status"] == "415"
    connection.close()
    still_serves(server)


def test_a_five_mib_message_is_resource_exhausted(server):
    connection = RawConnection(server.port)
    connection.handshake()
    connection.send_headers(1, UNARY_CALL)
    body = messages_pb2.SimpleRequest(payload=messages_pb2.Payload(body=b"\0" * (5 << 20))).SerializeToString()
    # Only the start: the prefix alone announces the size.
    connection.send_data(1, grpc_message(body)[:65535])
    headers, data, trailers, reset = connection.response(1)
    assert status_of(headers, trailers) == "8"
    assert "exceeds the receive limit" in (trailers or headers)["grpc-message"]
    connection.close()
    still_serves(server)


def test_a_malformed_grpc_timeout_is_refused(server):
    connection = RawConnection(server.port)
    connection.handshake()
    connection.send_headers(1, EMPTY_CALL, extra=[("grpc-timeout", "forever")])
    connection.send_data(1, grpc_message(b""), end_stream=True)
    headers, data, trailers, reset = connection.response(1)
    assert status_of(headers, trailers) == "13"
    assert "grpc-timeout" in headers["grpc-message"]
    connection.close()


def test_the_server_enforces_grpc_timeout(server):
    connection = RawConnection(server.port)
    connection.handshake()
    connection.send_headers(1, FULL_DUPLEX, extra=[("grpc-timeout", "100m")])
    started = time.time()
    headers, data, trailers, reset = connection.response(1)
    assert status_of(headers, trailers) == "4"
    assert time.time() - started < 5
    connection.close()


def test_a_thousand_concurrent_streams_are_served_or_refused(server):
    """Sent before the server's SETTINGS are acknowledged: streams past the limit are refused."""
    connection = RawConnection(server.port, timeout=30)
    connection.handshake(window=1 << 24)
    streams = list(range(1, 2001, 2))
    for stream in streams:
        connection.send_headers(stream, EMPTY_CALL)
    for stream in streams:
        connection.send_data(stream, grpc_message(b""), end_stream=True)
    outcome = {}
    while len(outcome) < len(streams):
        received = connection.read_frame(timeout=30)
        assert received is not None, "connection closed with %d streams answered" % len(outcome)
        if received.kind == h2raw.RST_STREAM:
            outcome[received.stream] = "refused" if received.error_code == h2raw.REFUSED_STREAM else received.error_code
        elif received.kind == h2raw.HEADERS and received.flags & h2raw.END_STREAM:
            outcome[received.stream] = "ok" if received.headers.get("grpc-status") == "0" else received.headers
    served = [s for s, result in outcome.items() if result == "ok"]
    refused = [s for s, result in outcome.items() if result == "refused"]
    assert len(served) + len(refused) == 1000, [r for r in outcome.values() if r not in ("ok", "refused")][:5]
    print("served %d, refused %d" % (len(served), len(refused)))
    assert len(served) >= 256
    # All 1,000 are open at once (no stream's request ends before every HEADERS is sent), so
    # those past the limit of 256 must have been refused.
    assert len(refused) >= 1000 - 2 * 256, "served %d, refused %d" % (len(served), len(refused))
    connection.close()
    still_serves(server)


def test_streams_beyond_the_acknowledged_limit_get_a_goaway(server):
    """Once the client has acknowledged MAX_CONCURRENT_STREAMS, exceeding it is its bug:
    nghttp2 answers with GOAWAY PROTOCOL_ERROR for that connection."""
    bystander = RawConnection(server.port)
    bystander.handshake()
    connection = RawConnection(server.port)
    connection.handshake(window=1 << 24)
    settings = connection.until(lambda f: f.kind == h2raw.SETTINGS and not f.flags & h2raw.ACK, timeout=5)
    advertised = {struct.unpack(">H", settings.payload[i:i + 2])[0]: struct.unpack(">I", settings.payload[i + 2:i + 6])[0]
                  for i in range(0, len(settings.payload), 6)}
    assert advertised[0x3] == 256, advertised
    connection.until(lambda f: f.kind == h2raw.SETTINGS and f.flags & h2raw.ACK, timeout=5)
    for stream in range(1, 2 * 300, 2):
        connection.send_headers(stream, EMPTY_CALL)
    assert goaway_of(connection).error_code == h2raw.PROTOCOL_ERROR
    connection.close()
    bystander.send_headers(1, EMPTY_CALL)
    bystander.send_data(1, grpc_message(b""), end_stream=True)
    headers, data, trailers, reset = bystander.response(1)
    assert status_of(headers, trailers) == "0"
    bystander.close()
    still_serves(server)


def test_a_client_that_vanishes_mid_stream(server):
    for _ in range(20):
        connection = RawConnection(server.port)
        connection.handshake()
        connection.send_headers(1, FULL_DUPLEX)
        request = messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=1 << 20)] * 4).SerializeToString()
        connection.send_data(1, grpc_message(request))
        connection.abort()
    still_serves(server)


def test_keepalive_pings_and_drops_a_silent_peer(server):
    connection = RawConnection(server.port)
    connection.answer_pings = False
    connection.handshake()
    ping = connection.until(lambda f: f.kind == h2raw.PING and not f.flags & h2raw.ACK, timeout=5)
    assert ping is not None, "no keepalive PING arrived"
    # Not answering: the server gives up on this connection.
    started = time.time()
    frames = list(connection.frames(timeout=5))
    assert time.time() - started < 5, "the connection stayed open after the PING went unanswered"
    assert any(f.kind == h2raw.GOAWAY for f in frames), frames
    connection.close()
    still_serves(server)


def test_keepalive_keeps_a_responsive_peer(server):
    connection = RawConnection(server.port)
    connection.handshake()
    pings = 0
    deadline = time.time() + 2
    while time.time() < deadline:
        received = connection.read_frame(timeout=2)
        assert received is not None, "the server closed a connection that answered its PINGs"
        assert received.kind != h2raw.GOAWAY
        if received.kind == h2raw.PING and not received.flags & h2raw.ACK:
            pings += 1
    assert pings >= 2
    connection.send_headers(1, EMPTY_CALL)
    connection.send_data(1, grpc_message(b""), end_stream=True)
    headers, data, trailers, reset = connection.response(1)
    assert status_of(headers, trailers) == "0"
    connection.close()


def storm(server):
    """One round of every kind of abuse above that holds memory while it lasts."""
    for _ in range(5):
        connection = RawConnection(server.port)
        connection.handshake()
        connection.send_headers(1, UNARY_CALL)
        connection.send_data(1, grpc_message(b"\0" * (4 << 20) + b"\0" * 10, declared_length=(4 << 20) - 1)[:(4 << 20)])
        connection.abort()
    for _ in range(3):
        connection = RawConnection(server.port)
        connection.handshake(window=1 << 24)
        for stream in range(1, 600, 2):
            connection.send_headers(stream, FULL_DUPLEX)
            connection.send_data(stream, grpc_message(b"\0" * 1000))
        connection.abort()
    test_a_client_that_vanishes_mid_stream(server)


def test_memory_returns_to_its_baseline(server):
    storm(server)
    time.sleep(1)
    baseline = rss_kib(server.pid)
    for _ in range(5):
        storm(server)
    time.sleep(1)
    after = rss_kib(server.pid)
    print("RSS baseline %d KiB, after 5 storms %d KiB" % (baseline, after))
    assert after - baseline < 32 * 1024, "RSS grew from %d KiB to %d KiB over repeated abuse" % (baseline, after)
    still_serves(server)
