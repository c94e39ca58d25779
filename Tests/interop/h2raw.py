"""A raw HTTP/2 peer over a plain socket, for sending what no well-behaved client sends."""
import socket
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = (
    0x0, 0x1, 0x3, 0x6, 0x7, 0x8, 0x9)


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def grpc_message(body, compressed=False, declared_length=None):
    length = len(body) if declared_length is None else declared_length
    return bytes([1 if compressed else 0]) + struct.pack(">I", length) + body


class Frame:
    def __init__(self, kind, flags, stream, payload):
        self.kind, self.flags, self.stream, self.payload = kind, flags, stream, payload
        self.headers = None

    @property
    def error_code(self):
        if self.kind == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        if self.kind == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        return None

    def __repr__(self):
        return "Frame(kind=%d, flags=%#x, stream=%d, len=%d, headers=%r)" % (
            self.kind, self.flags, self.stream, len(self.payload), self.headers)


class RawConnection:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buffer = b""
        self.answer_pings = True

    def close(self):
        self.sock.close()

    def abort(self):
        """Closes with a TCP reset, like a process that died."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def handshake(self, window=None):
        self.send(PREFACE + frame(SETTINGS, 0, 0))
        if window:
            self.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", window)))

    def request_headers(self, path, content_type="application/grpc", extra=()):
        fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
                  ("te", "trailers")]
        if content_type is not None:
            fields.append(("content-type", content_type))
        return self.encoder.encode(fields + list(extra))

    def send_headers(self, stream, path, end_stream=False, **kwargs):
        block = self.request_headers(path, **kwargs)
        self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, block))

    def send_data(self, stream, data, end_stream=False):
        for offset in range(0, max(len(data), 1), 16384):
            chunk = data[offset:offset + 16384]
            last = offset + 16384 >= len(data)
            self.send(frame(DATA, END_STREAM if (end_stream and last) else 0, stream, chunk))

    def read_frame(self, timeout=10.0):
        """The next frame, or None when the server closed the connection."""
        deadline = time.time() + timeout
        while len(self.buffer) < 9 or len(self.buffer) < 9 + int.from_bytes(self.buffer[:3], "big"):
            remaining = deadline - time.time()
            if remaining <= 0:
                raise TimeoutError("no frame within %.1fs" % timeout)
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buffer += chunk
        length = int.from_bytes(self.buffer[:3], "big")
        kind, flags = self.buffer[3], self.buffer[4]
        stream = struct.unpack(">I", self.buffer[5:9])[0] & 0x7FFFFFFF
        payload = self.buffer[9:9 + length]
        self.buffer = self.buffer[9 + length:]
        result = Frame(kind, flags, stream, payload)
        if kind == HEADERS:
            result.headers = dict(self.decoder.decode(payload))
        elif kind == SETTINGS and not flags & ACK:
            self.send(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK and self.answer_pings:
            self.send(frame(PING, ACK, 0, payload))
        return result

    def frames(self, timeout=10.0):
        """Every frame until the connection closes (or `timeout` passes with none)."""
        while True:
            try:
                received = self.read_frame(timeout)
            except TimeoutError:
                return
            if received is None:
                return
            yield received

    def until(self, predicate, timeout=10.0):
        """Reads until a frame matches; returns it (None if the connection closed first)."""
        deadline = time.time() + timeout
        while True:
            received = self.read_frame(max(deadline - time.time(), 0.01))
            if received is None or predicate(received):
                return received

    def response(self, stream, timeout=10.0):
        """Collects one stream's answer: (headers, data, trailers, reset_code)."""
        headers, data, trailers, reset = None, b"", None, None
        deadline = time.time() + timeout
        while True:
            received = self.read_frame(max(deadline - time.time(), 0.01))
            if received is None:
                raise ConnectionError("connection closed before stream %d ended" % stream)
            if received.stream != stream:
                continue
            if received.kind == HEADERS:
                if headers is None:
                    headers = received.headers
                else:
                    trailers = received.headers
            elif received.kind == DATA:
                data += received.payload
                if received.payload:
                    self.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(received.payload))))
            elif received.kind == RST_STREAM:
                return headers, data, trailers, received.error_code
            if received.flags & END_STREAM and received.kind in (HEADERS, DATA):
                return headers, data, trailers, reset


def status_of(headers, trailers):
    """grpc-status of a response, from its trailers or a Trailers-Only headers block."""
    block = trailers if trailers is not None else headers
    return None if block is None else block.get("grpc-status")
