"""The JSON API as a client sees it: calls that return (status, body) and Server-Sent Event
streams read until their `status` event, over a plain socket (http.client)."""
import http.client
import json
import time


def call(port, method, path, body=None, token=None, headers=None, raw=None):
    """(status, parsed JSON body) of one call; `raw` bytes go as they are."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = "Bearer " + token
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        text = response.read().decode()
        try:
            return response.status, json.loads(text) if text else None
        except ValueError:
            return response.status, text
    finally:
        connection.close()


def get(port, path, **options):
    return call(port, "GET", path, **options)


def post(port, path, body=None, **options):
    return call(port, "POST", path, body={} if body is None and "raw" not in options else body, **options)


class EventStream:
    """An open Server-Sent Events response: `events()` yields (id, event, data) as they come."""

    def __init__(self, port, path, token=None, headers=None, timeout=30):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = "Bearer " + token
        self.connection.request("GET", path, headers=sent)
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.getheaders())

    def events(self):
        event = {}
        while True:
            line = self.response.fp.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line == "":
                if "data" in event:
                    yield event.get("id"), event.get("event", "message"), json.loads(event["data"])
                event = {}
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(": ")
                event[field] = event.get(field, "") + value if field == "data" else value

    def until_status(self, within=30):
        """Every update up to the stream's `status` event, and that event's body."""
        updates, deadline = [], time.time() + within
        for id_, name, data in self.events():
            if name == "status":
                return updates, data
            updates.append((id_, data))
            assert time.time() < deadline, "the stream did not end"
        return updates, None

    def close(self):
        self.connection.close()
