"""The dashboard in a real headless Chromium against `tasker serve` on a real Postgres and Redis
with a Python SDK worker: the task list and its filters, a task's DAG and steps changing live
without a reload, Retry, Resolve and Cancel from the page, a phone-width window, and with
--auth a token asked for and only the actions its role allows shown. Screenshots of the task
page go to .build/test-artifacts/dashboard."""
import subprocess
import sys
import threading
import uuid

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from browser import chromium, screenshot
from conftest import Service, binary, free_port, wait_for_port
from http_api import call, get, post
from tasker_sdk import Permanent, Worker

FLOW = {"name": "dash_flow", "version": "1", "steps": [
    {"name": "fetch", "handler": "dash.fast"},
    {"name": "parse", "handler": "dash.slow", "depends_on": ["fetch"]},
    {"name": "enrich", "handler": "dash.slow", "depends_on": ["fetch"]},
    {"name": "store", "handler": "dash.fast", "depends_on": ["parse", "enrich"]},
]}
FLAKY = {"name": "dash_flaky", "version": "1", "steps": [
    {"name": "one", "handler": "dash.fast"}, {"name": "two", "handler": "dash.fail_once", "depends_on": ["one"]}]}
MANUAL = {"name": "dash_manual", "version": "1", "steps": [
    {"name": "prep", "handler": "dash.fast"}, {"name": "approve", "handler": "dash.nobody", "depends_on": ["prep"]}]}
# Steps of handlers no worker runs, on any node of the shared Postgres and Redis: only a
# person moves them on.
OFFLINE = {"name": "dash_offline", "version": "1", "steps": [
    {"name": "prep", "handler": "dash.nobody.prep"}, {"name": "approve", "handler": "dash.nobody", "depends_on": ["prep"]}]}


@pytest.fixture(scope="module")
def node(request, postgres, redis):
    failed_before = request.session.testsfailed
    server = Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url, "--redis-url", redis.url])
    gate = threading.Event()
    failed = set()
    worker = Worker("127.0.0.1:%d" % server.port, name="dashboard-worker", slots=8, log=lambda line: None)

    @worker.handle("dash.fast")
    def fast(step):
        return {"step": step.step_name}

    @worker.handle("dash.slow")
    def slow(step):
        gate.wait(60)
        return {"slow": step.step_name}

    @worker.handle("dash.fail_once")
    def fail_once(step):
        if step.task_id not in failed:
            failed.add(step.task_id)
            raise Permanent("the first attempt fails for good")
        return {"second": True}

    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    for template in (FLOW, FLAKY, MANUAL):
        assert post(server.http_port, "/api/v1/templates", {"template": template})[0] == 200
    server.gate = gate
    yield server
    gate.set()
    worker.stop(drain_timeout=5)
    thread.join(10)
    server.stop()
    if request.session.testsfailed > failed_before:
        # What the node said, for a failure that only a loaded machine shows.
        # Past pytest's capture: the module's last test may have passed.
        sys.__stderr__.write("the dashboard node's log, its last 20,000 characters:\n" + server.output()[-20000:] + "\n")


@pytest.fixture(scope="module")
def browser():
    session = chromium()
    yield session
    session.quit()


def submit(http_port, name, **fields):
    status, body = post(http_port, "/api/v1/tasks", dict({"name": name}, **fields))
    assert status == 200, body
    return body["task"]["task_id"]


def wait(browser, what, condition, within=20):
    # The page redraws what changes: an element read a moment ago may be gone; read it again.
    return WebDriverWait(browser, within, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException, NoSuchElementException]).until(
        lambda d: condition(d), what)


def open_page(browser, node, fragment):
    browser.get("http://127.0.0.1:%d/#/%s" % (node.http_port, fragment))


def node_statuses(browser):
    return browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('svg#dag g.node')].map(g => [g.dataset.step, g.dataset.status]))")


def row_status(browser, step):
    return browser.execute_script("const c = document.querySelector('tr[data-step=\"' + arguments[0] + '\"] td.status'); return c && c.textContent", step)


def confirm(browser):
    wait(browser, "the confirmation", lambda d: d.find_element(By.ID, "confirm-dialog").get_attribute("open") is not None)
    browser.find_element(By.ID, "confirm-ok").click()


def test_the_task_list_shows_submitted_tasks_and_filters_them(node, browser):
    tag = "list-" + uuid.uuid4().hex[:6]
    flows = [submit(node.http_port, "dash_flow", tags=[tag, "blue"]) for _ in range(2)]
    manual = submit(node.http_port, "dash_manual", tags=[tag, "red"])
    open_page(browser, node, "tasks?tag=" + tag)
    shown = lambda d: set(d.execute_script("return [...document.querySelectorAll('#task-rows tr')].map(r => r.dataset.taskId)"))
    wait(browser, "every task listed", lambda d: shown(d) == set(flows + [manual]))
    assert browser.find_element(By.ID, "filter-tag").get_attribute("value") == tag

    Select(browser.find_element(By.ID, "filter-name")).select_by_value("dash_manual")
    browser.find_element(By.ID, "filter-apply").click()
    wait(browser, "only the manual task", lambda d: shown(d) == {manual})
    Select(browser.find_element(By.ID, "filter-name")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("COMPLETE")
    browser.find_element(By.ID, "filter-apply").click()
    wait(browser, "no COMPLETE task yet", lambda d: d.find_elements(By.ID, "no-tasks"))
    # Rows change live: the flows finish while the list is open.
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("")
    browser.find_element(By.ID, "filter-apply").click()
    wait(browser, "the list again", lambda d: shown(d) == set(flows + [manual]))
    wait(browser, "the list live", lambda d: d.find_element(By.ID, "live-state").text == "live")
    node.gate.set()
    try:
        wait(browser, "the flows COMPLETE on the list", lambda d: all(
            d.find_element(By.CSS_SELECTOR, 'tr[data-task-id="%s"] td.status' % t).text == "COMPLETE" for t in flows))
    finally:
        node.gate.clear()
    # A task submitted now joins the top of the list.
    newest = submit(node.http_port, "dash_manual", tags=[tag])
    wait(browser, "the new task listed", lambda d: d.execute_script("return document.querySelector('#task-rows tr').dataset.taskId") == newest)
    # Finding by id opens the task.
    box = browser.find_element(By.ID, "task-search")
    box.send_keys(manual + "\n")
    wait(browser, "the task page", lambda d: d.find_elements(By.CSS_SELECTOR, "svg#dag"))


def test_a_task_page_draws_every_step_and_edge_and_follows_the_task_live(node, browser):
    task_id = submit(node.http_port, "dash_flow")
    open_page(browser, node, "task/" + task_id)
    try:
        wait(browser, "parse running", lambda d: node_statuses(d).get("parse") == "IN_PROGRESS" and node_statuses(d).get("enrich") == "IN_PROGRESS")
    except Exception:
        screenshot(browser, "debug")
        print(node_statuses(browser), get(node.http_port, "/api/v1/tasks/" + task_id)[1], browser.get_log("browser"))
        raise
    assert set(node_statuses(browser)) == {"fetch", "parse", "enrich", "store"}
    assert node_statuses(browser)["fetch"] == "COMPLETE" and node_statuses(browser)["store"] == "PENDING"
    edges = {(e.get_attribute("data-from"), e.get_attribute("data-to")) for e in browser.find_elements(By.CSS_SELECTOR, "svg#dag path.edge")}
    assert edges == {("fetch", "parse"), ("fetch", "enrich"), ("parse", "store"), ("enrich", "store")}
    assert {r.get_attribute("data-step") for r in browser.find_elements(By.CSS_SELECTOR, "#steps tbody tr")} == {"fetch", "parse", "enrich", "store"}
    assert "PENDING" in browser.find_element(By.CSS_SELECTOR, ".legend").text
    screenshot(browser, "task-running")
    where = lambda: [(e.rect["x"], e.rect["y"], e.rect["width"]) for e in browser.find_elements(By.CSS_SELECTOR, "svg#dag g.node rect")]
    before = where()
    browser.execute_script("window.__sameDocument = true")
    node.gate.set()
    try:
        wait(browser, "every step COMPLETE", lambda d: set(node_statuses(d).values()) == {"COMPLETE"})
        wait(browser, "the task COMPLETE", lambda d: d.find_element(By.ID, "task-status").text == "COMPLETE")
    finally:
        node.gate.clear()
    assert browser.execute_script("return window.__sameDocument") is True, "the page reloaded"
    assert where() == before, "the graph moved while it updated"
    assert all(row_status(browser, s) == "COMPLETE" for s in ("fetch", "parse", "enrich", "store"))
    wait(browser, "the history", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-rows tr")) >= 13)
    screenshot(browser, "task-complete")


def test_retry_on_an_error_step_runs_it_again(node, browser):
    task_id = submit(node.http_port, "dash_flaky")
    open_page(browser, node, "task/" + task_id)
    wait(browser, "two in ERROR", lambda d: row_status(d, "two") == "ERROR")
    wait(browser, "the task ERROR", lambda d: d.find_element(By.ID, "task-status").text == "ERROR")
    screenshot(browser, "task-error")
    button = browser.find_element(By.CSS_SELECTOR, 'tr[data-step="two"] button[data-action="retry"]')
    assert button.get_attribute("aria-label") == "Retry step two"
    assert not browser.find_elements(By.CSS_SELECTOR, 'tr[data-step="one"] button[data-action="retry"]')
    button.click()
    confirm(browser)
    wait(browser, "two COMPLETE", lambda d: row_status(d, "two") == "COMPLETE" and node_statuses(d)["two"] == "COMPLETE")
    wait(browser, "the task COMPLETE", lambda d: d.find_element(By.ID, "task-status").text == "COMPLETE")
    assert get(node.http_port, "/api/v1/tasks/" + task_id)[1]["status"] == "TASK_STATUS_COMPLETE"


def test_resolve_with_results_completes_the_task_and_cancel_ends_one(node, browser):
    task_id = submit(node.http_port, "dash_manual")
    open_page(browser, node, "task/" + task_id)
    wait(browser, "approve enqueued", lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-step="approve"] button[data-action="resolve"]')
         and node_statuses(d).get("prep") == "COMPLETE")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-step="approve"] button[data-action="resolve"]').click()
    area = browser.find_element(By.ID, "resolve-results")
    area.clear()
    area.send_keys('{"approved_by": "ada",')
    wait(browser, "the JSON refused", lambda d: "Not JSON" in d.find_element(By.ID, "resolve-error").text)
    assert browser.find_element(By.ID, "resolve-send").get_attribute("disabled") is not None
    area.clear()
    area.send_keys('["a list"]')
    wait(browser, "a list refused", lambda d: "JSON object" in d.find_element(By.ID, "resolve-error").text)
    area.clear()
    area.send_keys('{"approved_by": "ada", "amount": 12}')
    wait(browser, "the JSON taken", lambda d: d.find_element(By.ID, "resolve-error").text == "")
    browser.find_element(By.ID, "resolve-reason").send_keys("checked by hand")
    browser.find_element(By.ID, "resolve-send").click()
    wait(browser, "the task COMPLETE", lambda d: d.find_element(By.ID, "task-status").text == "COMPLETE")
    wait(browser, "approve resolved", lambda d: row_status(d, "approve") == "RESOLVED_MANUALLY")
    step = [s for s in get(node.http_port, "/api/v1/tasks/" + task_id)[1]["steps"] if s["name"] == "approve"][0]
    assert step["results"] == {"approved_by": "ada", "amount": 12}
    screenshot(browser, "task-resolved")

    # The server's refusal is shown: retrying the step that is no longer in ERROR.
    other = submit(node.http_port, "dash_manual")
    open_page(browser, node, "task/" + other)
    wait(browser, "the cancel button", lambda d: d.find_elements(By.ID, "cancel-task") and d.find_element(By.ID, "cancel-task").is_displayed())
    browser.find_element(By.ID, "cancel-task").click()
    confirm(browser)
    wait(browser, "the task CANCELLED", lambda d: d.find_element(By.ID, "task-status").text == "CANCELLED")
    assert not browser.find_element(By.ID, "cancel-task").is_displayed()
    post(node.http_port, "/api/v1/tasks/%s/steps/approve:resolve" % task_id, {"results": {}})
    refusal = browser.execute_script(
        "return Api.post('tasks/%s/steps/approve:resolve', {results: {}}).then(() => 'accepted', (e) => e.code + ': ' + e.message)" % task_id)
    assert refusal.startswith("FAILED_PRECONDITION: ") and "already finished" in refusal, refusal


def test_the_schedules_page_lists_pauses_resumes_and_deletes_them(node, browser):
    name = "dash-nightly-" + uuid.uuid4().hex[:6]
    status, made = post(node.http_port, "/api/v1/schedules", {"schedule": {
        "name": name, "template": "dash_manual", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "overlap": "SCHEDULE_OVERLAP_SKIP"}})
    assert status == 200 and made["created"] is True and made["schedule"]["next_run_at"], made
    status, refused = post(node.http_port, "/api/v1/schedules", {"schedule": {"name": "dash-bad", "template": "dash_manual", "cron": "0 0 * *"}})
    assert status == 400 and refused["code"] == "INVALID_ARGUMENT" and "has 4 fields" in refused["message"], refused
    open_page(browser, node, "schedules")
    row = 'tr[data-schedule="%s"]' % name
    wait(browser, "the schedule's row", lambda d: d.find_element(By.CSS_SELECTOR, row))
    cells = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, row + " td")]
    assert cells[1:5] == ["dash_manual", "30 2 * * *", "Europe/Berlin", "skip"], cells
    assert cells[5] != "\u2014", "the next firing is shown: %s" % cells
    browser.find_element(By.CSS_SELECTOR, row + ' button[data-action="pause"]').click()
    confirm(browser)
    wait(browser, "the row says PAUSED", lambda d: "PAUSED" in d.find_element(By.CSS_SELECTOR, row + " td").text)
    assert [s["paused"] for s in get(node.http_port, "/api/v1/schedules")[1]["schedules"] if s["name"] == name] == [True]
    browser.find_element(By.CSS_SELECTOR, row + ' button[data-action="resume"]').click()
    confirm(browser)
    wait(browser, "the row is running again", lambda d: d.find_element(By.CSS_SELECTOR, row + ' button[data-action="pause"]'))
    screenshot(browser, "schedules")
    browser.find_element(By.CSS_SELECTOR, row + ' button[data-action="delete"]').click()
    confirm(browser)
    wait(browser, "the row is gone", lambda d: not d.find_elements(By.CSS_SELECTOR, row))
    status, gone = call(node.http_port, "DELETE", "/api/v1/schedules/" + name)
    assert status == 404 and gone["code"] == "NOT_FOUND", gone


def test_an_unknown_task_says_so_on_the_page(node, browser):
    missing = str(uuid.uuid4())
    open_page(browser, node, "task/" + missing)
    wait(browser, "the refusal shown", lambda d: d.find_element(By.ID, "message").is_displayed())
    assert "NOT_FOUND" in browser.find_element(By.ID, "message-text").text and missing in browser.find_element(By.ID, "message-text").text


def test_pages_fit_a_phone_width_window(node, browser):
    task_id = submit(node.http_port, "dash_flow", tags=["phone"])
    browser.set_window_size(390, 844)
    try:
        for fragment in ("tasks", "task/" + task_id, "templates", "workers", "queues"):
            open_page(browser, node, fragment)
            wait(browser, "the page " + fragment, lambda d: d.find_elements(By.CSS_SELECTOR, "main h1") and "Loading" not in d.find_element(By.ID, "main").text)
            overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (fragment, overflow)
            if fragment.startswith("task/"):
                screenshot(browser, "task-phone")
    finally:
        browser.set_window_size(1280, 900)
        node.gate.set()
        node.gate.clear()


def tokens(postgres, *args):
    done = subprocess.run([binary("tasker"), "tokens", *args, "--database-url", postgres.url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done
    return done.stdout.strip()


def test_with_auth_the_page_asks_for_a_token_and_shows_only_what_its_role_may_do(postgres, redis, browser):
    server = Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url, "--redis-url", redis.url, "--auth"])
    try:
        viewer = tokens(postgres, "create", "--name", "dash-viewer-%s" % uuid.uuid4().hex[:6], "--role", "viewer")
        submitter = tokens(postgres, "create", "--name", "dash-submitter-%s" % uuid.uuid4().hex[:6], "--role", "submitter")
        assert post(server.http_port, "/api/v1/templates", {"template": MANUAL}, token=submitter)[0] == 200
        status, body = post(server.http_port, "/api/v1/tasks", {"name": "dash_manual"}, token=submitter)
        task_id = body["task"]["task_id"]

        def sign_in(token):
            browser.get("http://127.0.0.1:%d/#/task/%s" % (server.http_port, task_id))
            browser.execute_script("sessionStorage.clear()")
            browser.refresh()
            wait(browser, "the token asked for", lambda d: d.find_element(By.ID, "token-dialog").get_attribute("open") is not None)
            field = browser.find_element(By.ID, "token-input")
            field.clear()
            field.send_keys(token + "\n")
            wait(browser, "the task page", lambda d: d.find_elements(By.CSS_SELECTOR, 'svg#dag g.node[data-step="approve"]'))

        browser.get("http://127.0.0.1:%d/" % server.http_port)
        browser.execute_script("sessionStorage.clear()")
        browser.refresh()
        wait(browser, "the token asked for", lambda d: d.find_element(By.ID, "token-dialog").get_attribute("open") is not None)
        browser.find_element(By.ID, "token-input").send_keys("tkr_" + "Z" * 32 + "\n")
        wait(browser, "a wrong token refused", lambda d: "not known" in d.find_element(By.ID, "token-error").text)

        sign_in(viewer)
        assert "(viewer)" in browser.find_element(By.ID, "who").text
        wait(browser, "the step rows", lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-step="approve"] td.status'))
        assert browser.find_elements(By.CSS_SELECTOR, "button[data-action]") == []
        assert browser.find_elements(By.ID, "cancel-task") == []
        # The token is the tab's, not the page's: it is in sessionStorage and nowhere lasting.
        assert browser.execute_script("return sessionStorage.getItem('tasker.token')") == viewer
        assert browser.execute_script("return localStorage.length") == 0 and browser.get_cookies() == []
        screenshot(browser, "task-viewer")

        sign_in(submitter)
        wait(browser, "the actions", lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-step="approve"] button[data-action="resolve"]'))
        assert browser.find_element(By.ID, "cancel-task").is_displayed()
    finally:
        browser.execute_script("sessionStorage.clear()")
        server.stop()


def test_a_lost_connection_resumes_from_the_last_update_it_had(postgres, redis, browser):
    port, http_port = free_port(), free_port()
    args = [binary("tasker"), "serve", "--port", "{port}", "--http-port", str(http_port), "--database-url", postgres.url, "--redis-url", redis.url]
    server = Service(args, port=port)
    try:
        wait_for_port(http_port, server.process)
        assert post(http_port, "/api/v1/templates", {"template": OFFLINE})[0] == 200
        task_id = submit(http_port, "dash_offline")
        browser.get("http://127.0.0.1:%d/#/task/%s" % (http_port, task_id))
        wait(browser, "the page live", lambda d: d.find_element(By.ID, "live-state").text == "live")
        assert post(http_port, "/api/v1/tasks/%s/steps/prep:resolve" % task_id, {"results": {"by": "hand"}})[0] == 200
        wait(browser, "prep resolved", lambda d: row_status(d, "prep") == "RESOLVED_MANUALLY")
        server.stop()
        wait(browser, "the page reconnecting", lambda d: d.find_element(By.ID, "live-state").text == "reconnecting")
        server = Service(args, port=port)
        wait_for_port(http_port, server.process)
        # What happens while the page is away and after it is back both reach it, once each.
        assert post(http_port, "/api/v1/tasks/%s/steps/approve:resolve" % task_id, {"results": {"ok": True}})[0] == 200
        wait(browser, "the task finished on the page", lambda d: d.find_element(By.ID, "task-status").text == "COMPLETE")
        wait(browser, "the page's stream ended", lambda d: d.find_element(By.ID, "live-state").text == "finished")
        shown = [int(n) for n in browser.execute_script("return [...document.querySelectorAll('#history-rows tr td:first-child')].map(c => c.textContent)")]
        last = int(get(http_port, "/api/v1/tasks/" + task_id)[1]["last_sequence"])
        assert shown == list(range(1, last + 1)), shown
    finally:
        server.stop()

