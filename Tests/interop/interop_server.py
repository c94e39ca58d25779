"""A stock grpcio TestService server for the interop cases: python3 interop_server.py --port=N"""
import argparse
import time
from concurrent import futures

import grpc

import interop_protos

messages_pb2, empty_pb2, test_pb2_grpc = interop_protos.load()

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def echo_metadata(context):
    metadata = dict(context.invocation_metadata())
    if ECHO_INITIAL in metadata:
        context.send_initial_metadata(((ECHO_INITIAL, metadata[ECHO_INITIAL]),))
    if ECHO_TRAILING in metadata:
        context.set_trailing_metadata(((ECHO_TRAILING, metadata[ECHO_TRAILING]),))


def maybe_fail(status, context):
    if status.code != 0:
        context.abort(grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == status.code).value), status.message)


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        echo_metadata(context)
        if request.HasField("response_status"):
            maybe_fail(request.response_status, context)
        return messages_pb2.SimpleResponse(payload=payload(request.response_size))

    def StreamingOutputCall(self, request, context):
        echo_metadata(context)
        for parameters in request.response_parameters:
            if parameters.interval_us:
                time.sleep(parameters.interval_us / 1e6)
            yield messages_pb2.StreamingOutputCallResponse(payload=payload(parameters.size))

    def StreamingInputCall(self, request_iterator, context):
        echo_metadata(context)
        total = sum(len(request.payload.body) for request in request_iterator)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        for request in request_iterator:
            if request.HasField("response_status"):
                maybe_fail(request.response_status, context)
            for parameters in request.response_parameters:
                if parameters.interval_us:
                    time.sleep(parameters.interval_us / 1e6)
                yield messages_pb2.StreamingOutputCallResponse(payload=payload(parameters.size))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    server.add_insecure_port("127.0.0.1:%d" % args.port)
    server.start()
    print("python interop server listening on %d" % args.port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
