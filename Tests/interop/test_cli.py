"""The `tasker` command line against a real server (Postgres, Redis, the Swift e-commerce
example worker), `tasker dev`'s lifecycle, and the README's main job (scripts/demo.sh)."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from datetime import datetime

import pytest

from conftest import ROOT, binary, free_port, terminate, tasker_serve



@pytest.fixture(scope="module")
def server(postgres, redis):
    service = tasker_serve(postgres, redis)
    yield service
    service.stop()


def cli(server, *args, timeout=90):
    env = dict(os.environ, TASKER_SERVER="127.0.0.1:%d" % server.port)
    return subprocess.run([binary("tasker")] + list(args), capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def shop(server):
    process = subprocess.Popen(
        [binary("tasker-example-ecommerce"), "--server", "127.0.0.1:%d" % server.port],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while "order_checkout" not in cli(server, "templates", "list").stdout:
        assert time.time() < deadline, "the e-commerce worker did not register its template"
        time.sleep(0.1)
    yield process
    terminate(process)


def order(failures):
    return json.dumps({"cart_id": 1, "email": "ada@example.com", "payment_failures": failures,
                       "items": [{"sku": "tea", "price": 4.5, "quantity": 2}]})


def submit(server, name, context):
    out = cli(server, "submit", name, "--context", context, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["task"]["task_id"]


def write(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, "w") as handle:
        handle.write(text)
    return path


def test_templates_apply_from_yaml_and_json_and_list(server, tmp_path):
    yaml = write(tmp_path, "t.yaml", """
templates:
  - name: cli-greet
    version: "1"
    steps:
      - {name: hello, handler: hello}
      - name: shout
        handler: shout
        depends_on: [hello]
        max_attempts: 5
  - name: cli-single
    version: 2
    steps: [{name: only, handler: only}]
""")
    first = cli(server, "templates", "apply", yaml)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["registered cli-greet 1 (2 steps)", "registered cli-single 2 (1 step)"]
    again = cli(server, "templates", "apply", yaml)
    assert again.stdout.splitlines()[0] == "unchanged cli-greet 1 (2 steps)"
    # proto3 JSON would leave out a false `created`; the CLI's JSON always has it.
    as_json = [json.loads(line) for line in cli(server, "templates", "apply", yaml, "--json").stdout.splitlines()]
    assert [entry["created"] for entry in as_json] == [False, False], as_json

    as_json = write(tmp_path, "t.json", json.dumps({"name": "cli-json", "version": "1", "steps": [{"name": "a", "handler": "a"}]}))
    assert cli(server, "templates", "apply", as_json).returncode == 0
    listed = cli(server, "templates", "list")
    assert "cli-greet 1  hello  shout←hello" in listed.stdout and "cli-json 1" in listed.stdout
    templates = json.loads(cli(server, "templates", "list", "--json").stdout)["templates"]
    shout = next(t for t in templates if t["name"] == "cli-greet")["steps"][1]
    assert shout["depends_on"] == ["hello"] and shout["retry_limit"] == 5


def test_templates_apply_refuses_bad_files_with_what_is_wrong(server, tmp_path):
    missing = cli(server, "templates", "apply", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 65 and "cannot read the template file" in missing.stderr
    broken = cli(server, "templates", "apply", write(tmp_path, "broken.yaml", "name: x\nsteps:\n  - {name: a, handler: [a}\n"))
    assert broken.returncode == 65
    assert broken.stderr == "tasker: %s:3:26: did not find expected ',' or ']' (while parsing a flow sequence from line 3, column 24)\n" % (
        tmp_path / "broken.yaml"), broken.stderr
    # Every unknown field at once, each with the step it is in and the name it may have meant.
    unknown = cli(server, "templates", "apply", write(tmp_path, "unknown.yaml", """
name: x
version: '1'
colour: red
steps:
  - {name: a, handler: a, retry_limt: 3}
  - {name: b, handler: b, dependson: [a], backoff: {base: 1}}
"""))
    assert unknown.returncode == 65
    assert unknown.stderr.splitlines() == [
        "tasker: %s has 4 problems:" % (tmp_path / "unknown.yaml"),
        "  unknown field 'colour' (the fields are name, version, description, context_schema_json, steps, timeout_seconds, concurrency)",
        "  step 'a' (steps[0]): unknown field 'retry_limt' (did you mean 'retry_limit'?)",
        "  step 'b' (steps[1]), backoff: unknown field 'base' (the fields are base_seconds, max_seconds, jitter)",
        "  step 'b' (steps[1]): unknown field 'dependson' (did you mean 'depends_on'?)"], unknown.stderr
    # A value of the wrong kind is named by its field, with a short prefix of what was there.
    kinds = cli(server, "templates", "apply", write(tmp_path, "kinds.yaml", """
name: 5
version: 2024-01-01
steps:
  - {name: a, handler: a, retry_limit: three, depends_on: b, timeout_seconds: 99999999999}
  - {name: c, handler: c, skippable: %s}
""" % ("x" * 500)))
    assert kinds.returncode == 65
    assert kinds.stderr.splitlines() == [
        "tasker: %s has 6 problems:" % (tmp_path / "kinds.yaml"),
        "  name: '5' is not a string (quote it)",
        "  step 'a' (steps[0]), depends_on: 'b' is not a list",
        "  step 'a' (steps[0]), retry_limit: 'three' is not a whole number",
        "  step 'a' (steps[0]), timeout_seconds: '99999999999' is not a whole number from -2147483648 to 2147483647",
        "  step 'c' (steps[1]), skippable: '%s…' (500 bytes) is not true or false" % ("x" * 40),
        "  version: '2024-01-01' is not a string (YAML reads it as a date: quote it)"], kinds.stderr
    both = cli(server, "templates", "apply", write(tmp_path, "both.yaml", "name: x\nversion: '1'\nsteps: [{name: a, handler: a, max_attempts: 2, retry_limit: 3}]\n"))
    assert both.returncode == 65
    assert both.stderr.endswith("both.yaml: step 'a' (steps[0]): max_attempts and retry_limit are one setting; give one\n"), both.stderr
    cycle = write(tmp_path, "cycle.yaml", """
name: cli-cycle
version: "1"
steps:
  - {name: a, handler: a, depends_on: [b]}
  - {name: b, handler: b, depends_on: [a]}
""")
    refused = cli(server, "templates", "apply", cycle)
    assert refused.returncode == 4 and "INVALID_ARGUMENT" in refused.stderr and "cycle" in refused.stderr
    for limit, message in (('{key: "customer:{$.}", max_running: 2}', "step 'a' concurrency key: '{$.}' has an empty name"),
                           ('{key: "customer:{$.id", max_running: 2}', "step 'a' concurrency key: a '{' with no '}' after it"),
                           ('{key: "customer", max_running: 0}', "step 'a' concurrency max_running is 0; it must be 1 to 100000")):
        limits = write(tmp_path, "limits.yaml", "name: cli-limits\nversion: '1'\nsteps:\n  - {name: a, handler: a, concurrency: %s}\n" % limit)
        out = cli(server, "templates", "apply", limits)
        assert out.returncode == 4 and message in out.stderr, (limit, out.stderr)
    for rates, code, message in (
            ('[{key: stripe, limit: 0, period_seconds: 1}]', 4, "step 'a' rate_limits[0] has limit 0; it must be 1 to 1000000"),
            ('[{key: stripe, limit: 5, period_seconds: 1, units: 6}]', 4, "step 'a' rate_limits[0] has units 6"),
            ('[{key: stripe, limit: 5, per_second: 1}]', 65,
             "step 'a' (steps[0]), rate_limits[0]: unknown field 'per_second' (the fields are key, limit, period_seconds, units)")):
        limits = write(tmp_path, "rates.yaml", "name: cli-rates\nversion: '1'\nsteps:\n  - {name: a, handler: a, rate_limits: %s}\n" % rates)
        out = cli(server, "templates", "apply", limits)
        assert out.returncode == code and message in out.stderr, (rates, out.stderr)


def test_submit_get_and_list(server, shop, tmp_path):
    context = write(tmp_path, "order.json", order(0))
    out = cli(server, "submit", "order_checkout", "--context", "@" + context, "--tag", "cli", "--reason", "restock")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("submitted order_checkout ")
    task_id = out.stdout.split()[-1]
    assert cli(server, "watch", task_id).returncode == 0
    shown = cli(server, "get", task_id)
    assert shown.returncode == 0 and "COMPLETE" in shown.stdout.splitlines()[0]
    assert any(line.strip().startswith("create_order") and "COMPLETE" in line for line in shown.stdout.splitlines())
    lines = shown.stdout.splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(r"  created %s, finished %s \(after \d+\.\d+ s\)" % (stamp, stamp), lines[1]), lines
    assert lines[2] == "  tags: cli  reason: restock", lines
    assert re.search(r"^  process_payment +COMPLETE +attempt 1 of 4$", shown.stdout, re.M), shown.stdout
    assert lines[-2] == "  annotations:", lines
    assert re.fullmatch(r'    %s  payment \(process_payment\): \{"attempts":1,"gateway":"example-pay"\}' % stamp, lines[-1]), lines
    task = json.loads(cli(server, "get", task_id, "--json").stdout)
    assert task["status"] == "TASK_STATUS_COMPLETE" and task["context"]["email"] == "ada@example.com"
    listed = cli(server, "list", "--tag", "cli", "--status", "complete")
    assert listed.returncode == 0 and task_id in listed.stdout
    assert task_id not in cli(server, "list", "--tag", "cli", "--status", "error").stdout


def test_schedules_create_list_pause_resume_and_delete(server, shop):
    out = cli(server, "schedules", "create", "cli-nightly", "--template", "order_checkout", "--cron", "30 2 * * *",
              "--timezone", "Europe/Berlin", "--context", order(0), "--skip-overlap")
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"created schedule cli-nightly: next at \d{4}-\d\d-\d\dT0[01]:30:00Z\n", out.stdout), out.stdout
    again = cli(server, "schedules", "create", "cli-nightly", "--template", "order_checkout", "--cron", "30 2 * * *",
                "--timezone", "Europe/Berlin", "--context", order(0), "--skip-overlap")
    assert again.returncode == 0 and again.stdout.startswith("unchanged schedule cli-nightly"), again.stdout
    listed = cli(server, "schedules", "list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "TEMPLATE", "CRON", "ZONE", "OVERLAP", "NEXT", "LAST", "LAST", "TASK"], listed
    row = [line for line in listed if line.startswith("cli-nightly ")][0]
    assert "order_checkout" in row and "30 2 * * *" in row and "Europe/Berlin" in row and " skip " in row, row
    assert cli(server, "schedules", "pause", "cli-nightly").stdout == "paused schedule cli-nightly: paused\n"
    shown = json.loads(cli(server, "schedules", "list", "--json").stdout)
    mine = [s for s in shown["schedules"] if s["name"] == "cli-nightly"][0]
    assert mine["paused"] is True and "nextRunAt" not in mine and mine["overlap"] == "SCHEDULE_OVERLAP_SKIP", mine
    assert cli(server, "schedules", "resume", "cli-nightly").stdout.startswith("resumed schedule cli-nightly: next at ")
    bad = cli(server, "schedules", "create", "cli-bad", "--template", "order_checkout", "--cron", "0 25 * * *", "--context", order(0))
    assert bad.returncode == 4 and "cron hour field '25': '25' is not a value from 0 to 23" in bad.stderr, bad.stderr
    assert cli(server, "schedules", "delete", "cli-nightly").stdout == "deleted schedule cli-nightly\n"
    gone = cli(server, "schedules", "delete", "cli-nightly")
    assert gone.returncode == 3 and gone.stderr == "tasker: no schedule 'cli-nightly'\n", gone.stderr


def test_list_pages_with_a_header_and_says_where_to_go_on(server, shop):
    tag = "paging-%s" % uuid.uuid4().hex[:8]
    made = [json.loads(cli(server, "submit", "order_checkout", "--context", order(0), "--tag", tag, "--json").stdout)["task"]["task_id"]
            for _ in range(7)]
    newest_first = made[::-1]
    first = cli(server, "list", "--tag", tag, "--limit", "3")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert re.fullmatch(r"TASK ID {31}TEMPLATE {8}VERSION  STATUS {7,}CREATED", lines[0]), lines[0]
    assert [line.split()[0] for line in lines[1:]] == newest_first[:3]
    assert all(re.fullmatch(r"\S{36}  order_checkout  1        [A-Z_]+ +\d{4}-\S+Z", line) for line in lines[1:]), lines
    token = re.fullmatch(r"more tasks follow: --page-token (\S+)\n", first.stderr).group(1)
    rest = cli(server, "list", "--tag", tag, "--limit", "10", "--page-token", token)
    assert [line.split()[0] for line in rest.stdout.splitlines()[1:]] == newest_first[3:] and rest.stderr == "", rest
    everything = cli(server, "list", "--tag", tag, "--all")
    assert [line.split()[0] for line in everything.stdout.splitlines()[1:]] == newest_first and everything.stderr == ""
    as_json = json.loads(cli(server, "list", "--tag", tag, "--limit", "2", "--json").stdout)
    assert [task["task_id"] for task in as_json["tasks"]] == newest_first[:2] and as_json["next_page_token"] == newest_first[1]
    # Beyond the server's largest page (500), the CLI asks for more pages instead of a short answer.
    assert cli(server, "list", "--limit", "501").returncode == 0
    for args, message in ((["--limit", "0"], "--limit is 0; it counts tasks, so it is 1 or more"),
                          (["--limit=-3"], "--limit is -3"), (["--all", "--limit", "5"], "--all lists every task")):
        refused = cli(server, "list", *args)
        assert refused.returncode == 64 and message in refused.stderr, (args, refused.stderr)
    assert cli(server, "list", "--page-token", "nonsense").returncode == 4


def test_submit_later_with_a_priority_then_it_runs_at_its_start(server, shop):
    out = cli(server, "submit", "order_checkout", "--context", order(0), "--start-at", "+3s", "--priority", "2", "--json")
    assert out.returncode == 0, out.stderr
    task = json.loads(out.stdout)["task"]
    assert task["priority"] == 2 and task["status"] == "TASK_STATUS_PENDING"
    shown = cli(server, "get", task["task_id"]).stdout.splitlines()
    assert re.search(r", starts \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", shown[1]), shown
    assert shown[2] == "  priority: 2", shown
    assert any(line.startswith("      waiting: the task starts at ") for line in shown), shown
    assert cli(server, "watch", task["task_id"]).returncode == 0
    done = json.loads(cli(server, "get", task["task_id"], "--json").stdout)
    first = next(s for s in done["steps"] if s["name"] == "validate_cart")
    started, start = (datetime.fromisoformat(stamp) for stamp in (first["last_attempted_at"], done["start_at"]))
    assert started >= start, (started, start)
    for bad, message in ((["--priority", "7"], "--priority is 1 (first) to 5 (last)"),
                         (["--start-at", "tomorrow"], "--start-at")):
        refused = cli(server, "submit", "order_checkout", "--context", order(0), *bad)
        assert refused.returncode == 64 and message in refused.stderr, refused.stderr
    far = cli(server, "submit", "order_checkout", "--context", order(0), "--start-at", "+400d")
    assert far.returncode == 4 and "start_at is 400 days ahead" in far.stderr, far.stderr


def test_a_repeat_submit_says_created_false_and_another_context_under_its_key_is_refused(server, shop):
    key = "order-%s" % uuid.uuid4().hex[:8]
    first = json.loads(cli(server, "submit", "order_checkout", "--context", order(0), "--idempotency-key", key, "--json").stdout)
    again = json.loads(cli(server, "submit", "order_checkout", "--context", order(0), "--idempotency-key", key, "--json").stdout)
    assert first["created"] is True and again["created"] is False and again["task"]["task_id"] == first["task"]["task_id"]
    other = cli(server, "submit", "order_checkout", "--context", order(1), "--idempotency-key", key)
    assert other.returncode == 4, other
    assert other.stderr == ("tasker: ALREADY_EXISTS: idempotency key '%s' already names task %s of order_checkout, submitted with "
                            "another context: use a new key for a new task, or the same context to get that one\n") % (
        key, first["task"]["task_id"]), other.stderr


def test_the_example_worker_explains_itself_says_when_it_serves_and_drains_on_sigterm(server):
    helped = subprocess.run([binary("tasker-example-ecommerce"), "--help"], capture_output=True, text=True, timeout=10)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: tasker-example-ecommerce [--server host:port]"), helped
    for args, message in ((["--bogus"], "unknown argument '--bogus'"), (["--slots", "many"], "--slots must be a whole number"),
                          (["--server", "nowhere"], "--server must be host:port")):
        refused = subprocess.run([binary("tasker-example-ecommerce")] + args, capture_output=True, text=True, timeout=10)
        assert refused.returncode == 64 and message in refused.stderr, (args, refused)
    # Into a pipe, the serving line is there at once; SIGTERM drains and ends it with 0.
    worker = subprocess.Popen([binary("tasker-example-ecommerce"), "--server", "127.0.0.1:%d" % server.port],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline() == "ecommerce worker: serving order_checkout on 127.0.0.1:%d\n" % server.port
        time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        rest, err = worker.communicate(timeout=30)
        assert worker.returncode == 0 and rest == "ecommerce worker: stopped\n", (worker.returncode, rest, err[-2000:])
    finally:
        terminate(worker)
    # With its server away it tries again with backoff, and a SIGTERM still stops it at once.
    away = subprocess.Popen([binary("tasker-example-ecommerce"), "--server", "127.0.0.1:%d" % free_port()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)  # past a few tries: the wait between them is seconds by now
        stopped_at = time.time()
        away.send_signal(signal.SIGTERM)
        away.wait(timeout=30)
        assert away.returncode == 0 and time.time() - stopped_at < 1.0, (away.returncode, time.time() - stopped_at)
        assert "cannot connect to 127.0.0.1" in away.stderr.read()
    finally:
        terminate(away)


def test_version_prints_the_version():
    out = subprocess.run([binary("tasker"), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+\n", out.stdout), out


def test_bad_input_gets_a_message_and_an_exit_code(server, shop):
    malformed = cli(server, "submit", "order_checkout", "--context", '{"cart_id": 1,')
    assert malformed.returncode == 65 and "--context is not valid JSON" in malformed.stderr
    not_object = cli(server, "submit", "order_checkout", "--context", "[1, 2]")
    assert not_object.returncode == 65 and "must be a JSON object" in not_object.stderr and "an array" in not_object.stderr
    schema = cli(server, "submit", "order_checkout", "--context", '{"cart_id": 1}')
    assert schema.returncode == 4 and "INVALID_ARGUMENT" in schema.stderr
    no_template = cli(server, "submit", "no_such_template")
    assert no_template.returncode == 3 and "no_such_template" in no_template.stderr
    unknown = str(uuid.uuid4())
    for command in (["get", unknown], ["watch", unknown], ["cancel", unknown]):
        out = cli(server, *command)
        assert out.returncode == 3 and "no task" in out.stderr, (command, out.stderr)
    # A task id that is no UUID is a usage error, before any server is asked; a long one is
    # shown by a short prefix.
    for command in ("get", "watch", "cancel"):
        malformed_id = cli(server, command, "order-17")
        assert malformed_id.returncode == 64, (command, malformed_id)
        assert malformed_id.stderr.startswith("Error: 'order-17' is not a task id: a task id is a UUID, as submit prints it\n"), malformed_id.stderr
    long_id = cli(server, "get", "x" * 5000)
    assert long_id.returncode == 64 and "(5000 bytes) is not a task id" in long_id.stderr and "x" * 41 not in long_id.stderr
    usage = cli(server, "list", "--status", "sideways")
    assert usage.returncode == 64
    away = subprocess.run([binary("tasker"), "get", unknown, "--server", "127.0.0.1:%d" % free_port()],
                          capture_output=True, text=True, timeout=30)
    assert away.returncode == 2 and "cannot reach the server" in away.stderr


def test_watch_follows_retries_and_says_how_the_task_ended(server, shop):
    task_id = submit(server, "order_checkout", order(2))
    watched = cli(server, "watch", task_id)
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    updates = [line for line in lines if line[:4].strip().isdigit()]
    assert [int(line[:4]) for line in updates] == list(range(1, len(updates) + 1))
    assert any("process_payment" in line and "WAITING_FOR_RETRY" in line and "payment gateway timed out" in line for line in updates)
    assert updates[-1].split()[-1] == "COMPLETE"
    assert any("process_payment" in line and "COMPLETE" in line and "attempt 3 of 4" in line for line in lines)

    as_json = [json.loads(line) for line in cli(server, "watch", task_id, "--json").stdout.splitlines()]
    assert as_json[-1]["status"] == "TASK_STATUS_COMPLETE" and as_json[0]["sequence"] == "1"

    doomed = submit(server, "order_checkout", order(9))
    failed = cli(server, "watch", doomed)
    assert failed.returncode == 1 and "ERROR" in failed.stderr
    # retry_limit counts attempts, the first one too: the fourth of four failed for good.
    shown = cli(server, "get", doomed).stdout
    assert re.search(r"^  process_payment +ERROR +attempt 4 of 4, failed for good  last error: payment gateway timed out \(attempt 4\)$", shown, re.M), shown
    assert re.search(r"^  create_order +PENDING +not attempted \(up to 3\)$", shown, re.M), shown
    assert cli(server, "retry", doomed, "create_order").returncode == 4, "only a step in ERROR is retried"
    resolved = cli(server, "resolve", doomed, "process_payment", "--results", '{"payment_id": "by-hand"}', "--reason", "paid by phone")
    assert resolved.returncode == 0, resolved.stderr
    assert cli(server, "watch", doomed).returncode == 0
    task = json.loads(cli(server, "get", doomed, "--json").stdout)
    create = next(s for s in task["steps"] if s["name"] == "create_order")
    assert create["results"]["payment_id"] == "by-hand"


def test_cancel_and_retry(server, shop):
    task_id = submit(server, "order_checkout", order(0))
    cancelled = cli(server, "cancel", task_id, "--reason", "customer changed their mind")
    assert cancelled.returncode == 0 and "CANCELLED" in cancelled.stdout.splitlines()[0]
    assert cli(server, "watch", task_id).returncode == 1
    again = cli(server, "cancel", task_id)
    assert again.returncode == 4 and "FAILED_PRECONDITION" in again.stderr

    doomed = submit(server, "order_checkout", order(4))
    assert cli(server, "watch", doomed).returncode == 1
    # The failures are counted by attempt: after a retry resets them, attempts 1–4 fail again.
    retried = cli(server, "retry", doomed, "process_payment")
    assert retried.returncode == 0 and "IN_PROGRESS" in retried.stdout.splitlines()[0]
    assert cli(server, "watch", doomed).returncode == 1


def processes_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                if text.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def dev_folder():
    folder = tempfile.mkdtemp(prefix="tasker-dev-test-")
    # Postgres runs as the postgres user when the tests run as root: it must reach the folder.
    os.chmod(folder, 0o755)
    return folder


def start_dev(folder):
    port = free_port()
    env = dict(os.environ, TASKER_SERVER="127.0.0.1:%d" % port)
    process = subprocess.Popen([binary("tasker"), "dev", "--port", str(port), "--http-port", str(free_port()), "--data", folder],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 60
    while subprocess.run([binary("tasker"), "health", "--timeout", "1"], env=env, capture_output=True).returncode != 0:
        assert process.poll() is None, process.stdout.read()
        assert time.time() < deadline, "tasker dev did not serve within 60 s"
        time.sleep(0.2)
    return process, env


def children_of(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_dev_serves_then_leaves_nothing_running(stop_signal):
    folder = dev_folder()
    process, env = start_dev(folder)
    try:
        template = write(folder, "t.yaml", "name: dev-check\nversion: '1'\nsteps: [{name: a, handler: a}]\n")
        assert subprocess.run([binary("tasker"), "templates", "apply", template], env=env, capture_output=True).returncode == 0
        out = subprocess.run([binary("tasker"), "submit", "dev-check"], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        task_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", out.stdout).group(0)
        started = children_of(process.pid)
        assert len(started) == 3, "Postgres (runuser or postgres), Redis and the server: %s" % started
        assert processes_mentioning(folder), "the private Postgres keeps its data in the folder"
        process.send_signal(stop_signal)
        assert process.wait(timeout=60) == 0
        time.sleep(0.5)
        assert processes_mentioning(folder) == []
        assert [pid for pid in started if os.path.exists("/proc/%d" % pid) and open("/proc/%d/stat" % pid).read().split()[2] != "Z"] == []
        # The data stays: a second start finds the task of the first.
        process, env = start_dev(folder)
        listed = subprocess.run([binary("tasker"), "list", "--name", "dev-check"], env=env, capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr
        assert len(listed.stdout.splitlines()) == 2 and task_id in listed.stdout.splitlines()[1], listed.stdout
    finally:
        terminate(process, grace=60)
        assert processes_mentioning(folder) == []
        shutil.rmtree(folder, ignore_errors=True)


def test_dev_stops_postgres_and_redis_when_its_server_crashes():
    folder = dev_folder()
    process, _ = start_dev(folder)
    try:
        server = [pid for pid in children_of(process.pid) if open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")[1:2] == [b"serve"]]
        assert len(server) == 1
        os.kill(server[0], signal.SIGKILL)
        assert process.wait(timeout=60) == 1
        time.sleep(0.5)
        assert processes_mentioning(folder) == []
        assert "the server exited" in process.stdout.read()
    finally:
        terminate(process, grace=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_readme_main_job_runs_from_a_clone_in_a_private_folder():
    """The demo from a clone under a folder only its owner may enter (mode 0700, as /root in a
    container), its data in the default <clone>/.tasker. As root, Postgres runs as the postgres
    user, who cannot reach it: tasker dev keeps the data where that user can, and says where."""
    private = tempfile.mkdtemp(prefix="tasker-private-")
    assert os.stat(private).st_mode & 0o777 == 0o700
    clone = os.path.join(private, "tasker")
    shutil.copytree(os.path.join(ROOT, "scripts"), os.path.join(clone, "scripts"))
    http_port = free_port()
    env = dict(os.environ, TASKER_PORT=str(free_port()), TASKER_HTTP_PORT=str(http_port), TASKER_BIN_DIR=os.path.dirname(binary("tasker")))
    env.pop("TASKER_DATA", None)
    place = None
    try:
        out = subprocess.run([os.path.join(clone, "scripts", "demo.sh")], capture_output=True, text=True, timeout=900, env=env)
        found = re.search(r"^Postgres data in (\S+)$", out.stdout, re.M)
        place = found and found.group(1)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "process_payment        WAITING_FOR_RETRY  attempt 2  payment gateway timed out (attempt 2)" in out.stdout
        assert "  task COMPLETE" in out.stdout and out.stdout.rstrip().endswith("== done")
        assert "== the dashboard: http://127.0.0.1:%d/" % http_port in out.stdout, out.stdout[:3000]
        if os.getuid() == 0:
            assert place and not place.startswith(private), out.stdout[:2000]
            assert os.path.exists(os.path.join(place, "data", "PG_VERSION"))
        else:
            assert place == os.path.join(clone, ".tasker", "postgres"), out.stdout[:2000]
        assert processes_mentioning(place) == [] and processes_mentioning(private) == []
    finally:
        shutil.rmtree(private, ignore_errors=True)
        if place and not place.startswith(private):
            shutil.rmtree(place, ignore_errors=True)


def test_a_second_dev_on_the_same_data_folder_says_which_pid_has_it():
    folder = dev_folder()
    process, _ = start_dev(folder)
    try:
        second = subprocess.run([binary("tasker"), "dev", "--port", str(free_port()), "--http-port", str(free_port()), "--data", folder],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr == "tasker: tasker dev is already running (pid %d) on the data folder %s: stop it, or choose another --data\n" % (
            process.pid, os.path.realpath(folder)), second.stderr
        assert process.poll() is None, "the first one goes on"
    finally:
        terminate(process, grace=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_readme_tour_template_runs_on_the_example_worker(server, shop):
    applied = cli(server, "templates", "apply", os.path.join(ROOT, "examples", "templates", "quick_order.yaml"))
    assert applied.returncode == 0, applied.stderr
    task_id = submit(server, "quick_order", order(1))
    watched = cli(server, "watch", task_id)
    assert watched.returncode == 0, watched.stderr
    assert "send_confirmation      COMPLETE" in watched.stdout


def test_watch_on_a_terminal_draws_a_progress_bar_and_a_line_per_step(server, shop):
    task_id = submit(server, "order_checkout", order(1))
    env = dict(os.environ, TASKER_SERVER="127.0.0.1:%d" % server.port)
    # `script` gives the command a pseudo-terminal, as a person's shell would.
    out = subprocess.run(["script", "-qec", "%s watch %s" % (binary("tasker"), task_id), "/dev/null"],
                         capture_output=True, text=True, timeout=90, env=env)
    assert out.returncode == 0, out.stdout
    assert "\x1b[2K" in out.stdout and "\x1b[6F" in out.stdout, "lines cleared and redrawn in place"
    assert "█" * 24 + "] 5/5  COMPLETE" in out.stdout
    assert "░" in out.stdout, "the bar was drawn before it filled"
    assert "process_payment        WAITING_FOR_RETRY  attempt 1 of 4 failed  payment gateway timed out (attempt 1)" in out.stdout


def test_watch_on_a_terminal_draws_the_task_as_it_stands_and_never_steps_back(server, shop):
    task_id = submit(server, "order_checkout", order(1))
    assert cli(server, "watch", task_id).returncode == 0
    env = dict(os.environ, TASKER_SERVER="127.0.0.1:%d" % server.port)
    out = subprocess.run(["script", "-qec", "%s watch %s" % (binary("tasker"), task_id), "/dev/null"],
                         capture_output=True, text=True, timeout=90, env=env)
    assert out.returncode == 0, out.stdout
    # A finished task: one drawing, of it finished; no replay of its history over it.
    assert out.stdout.count("\x1b[2K") == 6 and "\x1b[6F" not in out.stdout, out.stdout
    assert "█" * 24 + "] 5/5  COMPLETE" in out.stdout
    for status in ("PENDING", "IN_PROGRESS", "WAITING_FOR_RETRY", "░"):
        assert status not in out.stdout, status


@pytest.mark.parametrize("json_lines,stop_signal", [(False, signal.SIGTERM), (True, signal.SIGINT)])
def test_a_piped_watch_writes_each_update_as_it_comes_and_keeps_them_when_stopped(server, shop, json_lines, stop_signal):
    task_id = submit(server, "order_checkout", order(3))
    env = dict(os.environ, TASKER_SERVER="127.0.0.1:%d" % server.port)
    watch = subprocess.Popen([binary("tasker"), "watch", task_id] + (["--json"] if json_lines else []),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = watch.stdout.readline()
        status = json.loads(cli(server, "get", task_id, "--json").stdout)["status"]
        assert first and status != "TASK_STATUS_COMPLETE", (first, status)
        if json_lines:
            assert json.loads(first)["sequence"] == "1"
        else:
            assert first[:4].strip() == "1", first
        watch.send_signal(stop_signal)
        rest, _ = watch.communicate(timeout=30)
        assert watch.returncode == -stop_signal, watch.returncode
        assert all(line.strip() for line in (first + rest).splitlines()), "every line was written whole"
    finally:
        if watch.poll() is None:
            terminate(watch)


@pytest.mark.parametrize("command,variable,value", [
    (["list"], "TASKER_SERVER", "bogus"), (["get", str(uuid.uuid4())], "TASKER_TLS", "maybe"),
    (["serve"], "TASKER_PORT", "99999"), (["serve"], "TASKER_HTTP_PORT", "http"), (["serve"], "TASKER_AUTH", "sure"),
    (["serve"], "TASKER_RETENTION", "forever"), (["dev"], "TASKER_PORT", "-1"), (["serve"], "TASKER_LOG_FORMAT", "xml"),
    (["dev"], "TASKER_LOG_LEVEL", "loud"),
])
def test_a_tasker_variable_that_does_not_parse_is_a_usage_error_naming_it(command, variable, value):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env[variable] = value
    done = subprocess.run([binary("tasker")] + command, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 64, done
    assert "%s is '%s'" % (variable, value) in done.stderr, done.stderr


def test_help_shows_defaults_as_a_person_writes_them():
    shown = subprocess.run([binary("tasker"), "list", "--help"], capture_output=True, text=True, timeout=30,
                           env={k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}).stdout
    shown = " ".join(shown.split())
    assert "(default: 127.0.0.1:7420)" in shown and "ServerAddress" not in shown, shown


def test_whole_numbers_print_whole_and_keys_in_a_stable_order(server, shop):
    context = '{"email": "ada@example.com", "cart_id": 7, "payment_failures": 0, "items": [{"sku": "tea", "quantity": 2, "price": 4.5}]}'
    task_id = submit(server, "order_checkout", context)
    text = cli(server, "get", task_id).stdout
    line = [l for l in text.splitlines() if l.strip().startswith("context:")][0]
    assert line.strip() == 'context: {"cart_id":7,"email":"ada@example.com","items":[{"price":4.5,"quantity":2,"sku":"tea"}],"payment_failures":0}', line
    raw = cli(server, "get", task_id, "--json").stdout
    assert '"cart_id":7,' in raw and ".0" not in raw.split('"context"')[1].split("}")[0], raw
    again = cli(server, "get", task_id, "--json").stdout
    context_of = lambda out: out.split('"context":')[1].split(',"created_at"')[0]
    assert context_of(raw) == context_of(again) == '{"cart_id":7,"email":"ada@example.com","items":[{"price":4.5,"quantity":2,"sku":"tea"}],"payment_failures":0}', raw
