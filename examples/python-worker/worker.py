#!/usr/bin/env python3
"""An example Tasker worker in Python: it registers the `python-example` template (a quote is
fetched, priced in two currencies in parallel, then summed) and runs its steps.

    pip install ./sdks/python           # the tasker-sdk package
    python3 examples/python-worker/worker.py --server 127.0.0.1:7420
    tasker submit python-example --context '{"amount": 12.5}'

Options for trying failure: --slow-seconds makes `price_usd` take that long (kill the worker
meanwhile and another picks the step up); --fail-until N makes `price_eur` fail retryably
until attempt N, asking for a 1 s backoff like a 429's Retry-After.
"""
import argparse
import os
import sys
import time

import grpc

from tasker_sdk import Permanent, Retryable, StepOutput, Worker, drain_on_signals, tls_credentials
from tasker_sdk.protos import tasker_pb2


def template():
    step = tasker_pb2.StepTemplate
    backoff = tasker_pb2.BackoffPolicy(base_seconds=0.2, max_seconds=5)
    return tasker_pb2.TaskTemplate(
        name="python-example", version="1", description="A quote priced in two currencies, by a Python worker.",
        context_schema_json='{"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number", "minimum": 0}}}',
        steps=[
            step(name="quote", handler="fetch_quote", backoff=backoff),
            step(name="usd", handler="price_usd", depends_on=["quote"], backoff=backoff),
            step(name="eur", handler="price_eur", depends_on=["quote"], retry_limit=5, backoff=backoff),
            step(name="total", handler="sum_prices", depends_on=["usd", "eur"], backoff=backoff),
        ])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=os.environ.get("TASKER_SERVER", "127.0.0.1:7420"))
    parser.add_argument("--name", default="python-example")
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--slow-seconds", type=float, default=0)
    parser.add_argument("--fail-until", type=int, default=0)
    parser.add_argument("--started-dir", help="a file per step attempt started is written here (for tests)")
    parser.add_argument("--tls", action="store_true", default=os.environ.get("TASKER_TLS") == "on",
                        help="connect with TLS, trusting the system's CAs (env TASKER_TLS=on)")
    parser.add_argument("--tls-ca", default=os.environ.get("TASKER_TLS_CA"), help="connect with TLS, trusting this CA (PEM)")
    parser.add_argument("--tls-cert", default=os.environ.get("TASKER_TLS_CLIENT_CERT"), help="client certificate (PEM), for mutual TLS")
    parser.add_argument("--tls-key", default=os.environ.get("TASKER_TLS_CLIENT_KEY"), help="client certificate's key (PEM)")
    parser.add_argument("--token", default=os.environ.get("TASKER_TOKEN"), help="an API token of the worker role (env TASKER_TOKEN)")
    args = parser.parse_args()

    credentials = None
    if args.tls or args.tls_ca or args.tls_cert:
        credentials = tls_credentials(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)
    worker = Worker(args.server, name=args.name, slots=args.slots, templates=[template()], credentials=credentials,
                    token=args.token)

    def started(step):
        if args.started_dir:
            with open(os.path.join(args.started_dir, "%s-%s-%d" % (args.name, step.step_name, step.attempt)), "w") as marker:
                marker.write(str(os.getpid()))

    @worker.handle("fetch_quote")
    def fetch_quote(step):
        started(step)
        amount = step.context.get("amount")
        if not isinstance(amount, (int, float)) or amount < 0:
            raise Permanent("amount must be a number of at least 0, not %r" % (amount,))
        return {"amount": amount}

    @worker.handle("price_usd")
    def price_usd(step):
        started(step)
        deadline = time.time() + args.slow_seconds
        while time.time() < deadline and not step.cancelled.is_set():
            time.sleep(0.02)
        return {"usd": round(step.dependency_results["quote"]["amount"] * 1.0, 2)}

    @worker.handle("price_eur")
    def price_eur(step):
        started(step)
        if step.attempt < args.fail_until:
            raise Retryable("rate service busy (attempt %d)" % step.attempt, backoff_seconds=1)
        return {"eur": round(step.dependency_results["quote"]["amount"] * 0.92, 2)}

    @worker.handle("sum_prices")
    def sum_prices(step):
        started(step)
        prices = step.dependency_results
        # A note on the task for people reading it, beside the results.
        return StepOutput({"usd": prices["usd"]["usd"], "eur": prices["eur"]["eur"], "by": args.name},
                          annotations={"priced": {"currencies": 2, "worker": args.name}})

    drain_on_signals(worker)
    try:
        worker.run()
    except grpc.RpcError as error:  # refused for good: a bad registration or token
        sys.exit("%s: the server refused this worker: %s: %s" % (args.name, error.code().name, error.details()))


if __name__ == "__main__":
    main()
