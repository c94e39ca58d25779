"""The gRPC interop cases, run by a stock grpcio client against any TestService server.

python3 interop_client.py --server_host=H --server_port=N --test_case=NAME
"""
import argparse
import sys

import grpc

import interop_protos

messages_pb2, empty_pb2, test_pb2_grpc = interop_protos.load()

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


def output_request(size, payload_size):
    return messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=size)], payload=payload(payload_size))


def large_request():
    return messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828))


def expect_code(code, call, message=None):
    try:
        call()
    except grpc.RpcError as error:
        assert error.code() == code, "expected %s, got %s: %s" % (code, error.code(), error.details())
        if message is not None:
            assert error.details() == message, "expected message %r, got %r" % (message, error.details())
        return
    raise AssertionError("expected %s, but the call succeeded" % code)


def empty_unary(stub):
    assert stub.EmptyCall(empty_pb2.Empty()) == empty_pb2.Empty()


def large_unary(stub):
    response = stub.UnaryCall(large_request())
    assert len(response.payload.body) == 314159
    assert response.payload.body == b"\0" * 314159


def client_streaming(stub):
    requests = (messages_pb2.StreamingInputCallRequest(payload=payload(size)) for size in (27182, 8, 1828, 45904))
    assert stub.StreamingInputCall(requests).aggregated_payload_size == 74922


def server_streaming(stub):
    sizes = [31415, 9, 2653, 58979]
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=size) for size in sizes])
    call = stub.StreamingOutputCall(request)
    assert [len(response.payload.body) for response in call] == sizes
    assert call.code() == grpc.StatusCode.OK


class Pipe:
    """A request iterator the test feeds one message at a time."""

    def __init__(self):
        import queue

        self.queue = queue.Queue()

    def send(self, message):
        self.queue.put(message)

    def close(self):
        self.queue.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        message = self.queue.get()
        if message is None:
            raise StopIteration
        return message


def ping_pong(stub):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe)
    for size, payload_size in ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904)):
        pipe.send(output_request(size, payload_size))
        assert len(next(call).payload.body) == size
    pipe.close()
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def empty_stream(stub):
    call = stub.FullDuplexCall(iter(()))
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def custom_metadata(stub):
    metadata = ((ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab"))
    response, call = stub.UnaryCall.with_call(large_request(), metadata=metadata)
    assert len(response.payload.body) == 314159
    assert (ECHO_INITIAL, "test_initial_metadata_value") in call.initial_metadata(), call.initial_metadata()
    assert (ECHO_TRAILING, b"\xab\xab\xab") in call.trailing_metadata(), call.trailing_metadata()

    call = stub.FullDuplexCall(iter([output_request(314159, 271828)]), metadata=metadata)
    assert [len(r.payload.body) for r in call] == [314159]
    assert (ECHO_INITIAL, "test_initial_metadata_value") in call.initial_metadata(), call.initial_metadata()
    assert (ECHO_TRAILING, b"\xab\xab\xab") in call.trailing_metadata(), call.trailing_metadata()


def status_code_and_message(stub):
    message = "test status message"
    status = messages_pb2.EchoStatus(code=2, message=message)
    expect_code(grpc.StatusCode.UNKNOWN, lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status)), message)
    call = stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(response_status=status)]))
    expect_code(grpc.StatusCode.UNKNOWN, lambda: list(call), message)


def special_status_message(stub):
    message = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
    status = messages_pb2.EchoStatus(code=2, message=message)
    expect_code(grpc.StatusCode.UNKNOWN, lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status)), message)


def unimplemented_method(stub):
    expect_code(grpc.StatusCode.UNIMPLEMENTED, lambda: stub.UnimplementedCall(empty_pb2.Empty()))


def unimplemented_service(stub, channel):
    unimplemented = test_pb2_grpc.UnimplementedServiceStub(channel)
    expect_code(grpc.StatusCode.UNIMPLEMENTED, lambda: unimplemented.UnimplementedCall(empty_pb2.Empty()))


def cancel_after_begin(stub):
    future = stub.StreamingInputCall.future(Pipe())
    future.cancel()
    assert future.cancelled()
    assert future.code() == grpc.StatusCode.CANCELLED, future.code()


def cancel_after_first_response(stub):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe)
    pipe.send(output_request(31415, 27182))
    assert len(next(call).payload.body) == 31415
    call.cancel()
    expect_code(grpc.StatusCode.CANCELLED, lambda: next(call))


def timeout_on_sleeping_server(stub):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe, timeout=0.001)
    pipe.send(messages_pb2.StreamingOutputCallRequest(payload=payload(27182)))
    expect_code(grpc.StatusCode.DEADLINE_EXCEEDED, lambda: next(call))


CASES = {
    "empty_unary": empty_unary,
    "large_unary": large_unary,
    "client_streaming": client_streaming,
    "server_streaming": server_streaming,
    "ping_pong": ping_pong,
    "empty_stream": empty_stream,
    "custom_metadata": custom_metadata,
    "status_code_and_message": status_code_and_message,
    "special_status_message": special_status_message,
    "unimplemented_method": unimplemented_method,
    "unimplemented_service": unimplemented_service,
    "cancel_after_begin": cancel_after_begin,
    "cancel_after_first_response": cancel_after_first_response,
    "timeout_on_sleeping_server": timeout_on_sleeping_server,
}


def run(host, port, name):
    with grpc.insecure_channel("%s:%d" % (host, port)) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        case = CASES[name]
        if name == "unimplemented_service":
            case(stub, channel)
        else:
            case(stub)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server_host", default="127.0.0.1")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--test_case", default="all")
    args = parser.parse_args()
    names = list(CASES) if args.test_case == "all" else [args.test_case]
    failed = 0
    for name in names:
        try:
            run(args.server_host, args.server_port, name)
            print("PASS", name)
        except Exception as error:  # report every case, then fail
            failed += 1
            print("FAIL %s: %r" % (name, error))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
