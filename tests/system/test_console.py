"""The web console in a real browser (Playwright driving Debian's Chromium): signing in, the
functions, a function's charts with their data points, an invocation's REPORT and trace
waterfall, replaying a dead letter; and what is refused without a session or a CSRF token.
The screenshots in docs/console.md are taken here."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.system.conftest import Server
from tests.system.test_async import _function

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
HELLO = """
    import time

    def handler(event, context):
        time.sleep(event.get("ms", 5) / 1000)
        return {"hello": event.get("name", "world")}
"""
BROKEN = """
    def handler(event, context):
        raise ValueError("the model file is missing")
"""

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"the console's browser tests need Chromium at {CHROMIUM}")
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("console")
    server = Server(root / "data").start()
    hello = _function(root, "hello", HELLO)
    with (hello / "mlambda.toml").open("a") as toml:
        toml.write('[[triggers]]\ntype = "rule"\npattern = {source = ["shop.orders"]}\n')
    server.deploy(hello)
    assert server.http("POST", "/v1/functions/hello/versions").status_code == 201
    live = server.http("PUT", "/v1/functions/hello/aliases/live", json={"version": "1"})
    assert live.status_code in (200, 201), live.text
    table = "maximum_retry_attempts = 0\n"
    server.deploy(_function(root, "resize", BROKEN, async_table=table))
    for n in range(12):
        server.client.invoke("hello", f'{{"ms": {5 + 3 * n}}}'.encode())
    accepted = server.http("POST", "/v1/functions/resize/invoke", params={"mode": "async"}, json={})
    assert accepted.status_code == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        letters = server.http("GET", "/v1/functions/resize/dead-letters").json()["deadLetters"]
        if letters:
            break
        time.sleep(0.1)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _sign_in(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server.url}/console")
    assert "/console/login" in page.url  # nobody signed in: the sign-in page first
    page.fill("#key", server.key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/console")


def test_sign_in_see_the_functions_open_one_and_its_charts_have_data(platform, page):
    _sign_in(page, platform)
    rows = page.locator("#functions tbody tr")
    assert {rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())} == {
        "hello", "resize"
    }  # fmt: skip
    hello = page.locator("#functions tr", has_text="hello")
    cells = [hello.locator("td").nth(i).inner_text() for i in (3, 4, 6)]
    assert cells == ["1", "1", "12"]  # a published version, an alias, calls in the last hour
    page.screenshot(path=str(IMAGES / "console-functions.png"))
    page.click("text=hello")
    page.wait_for_url(re.compile(r".*/console/functions/hello$"))
    page.wait_for_function(
        "window.mlambdaCharts && window.mlambdaCharts['Invocations']"
        ".data[1].some(v => v !== null && v > 0)"
    )
    drawn = page.evaluate(
        "Object.fromEntries(Object.entries(window.mlambdaCharts).map(([t, c]) =>"
        " [t, c.data[1].filter(v => v !== null).length]))"
    )
    assert drawn["Invocations"] >= 1 and drawn["Duration p99 (ms)"] >= 1
    assert page.locator("figure.chart canvas").count() == 5
    assert page.locator("#instances tbody tr").count() >= 1
    page.screenshot(path=str(IMAGES / "console-function.png"), full_page=True)


def test_the_triggers_with_their_state_and_lag(platform, page):
    _sign_in(page, platform)
    page.click("text=Triggers")
    page.wait_for_url(re.compile(r".*/console/triggers$"))
    row = page.locator("#triggers tbody tr", has_text="hello").first
    assert "rule" in row.inner_text() and "running" in row.inner_text()
    versions = page.goto(f"{platform.url}/console")
    assert versions is not None and versions.ok


def test_an_invocations_report_and_trace_waterfall(platform, page):
    _sign_in(page, platform)
    page.goto(f"{platform.url}/console/functions/hello")
    cold = page.locator("#invocations tbody tr", has_text="cold").locator("a")  # the first call
    request_id = cold.inner_text()
    cold.click()
    page.wait_for_url(re.compile(rf".*/invocations/{request_id}$"))
    report = page.locator("pre.report").inner_text()
    assert f"REPORT RequestId: {request_id}" in report and "Init Duration" in report
    names = page.locator("#waterfall .span").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names[0] == "invoke hello" and "instance start" in names and names[-1] == "handler"
    width = page.locator("#waterfall .span[data-name=handler] .bar").evaluate(
        "bar => bar.getBoundingClientRect().width"
    )
    assert width > 0
    page.screenshot(path=str(IMAGES / "console-invocation.png"), full_page=True)


def test_a_dead_letter_is_replayed_from_the_console(platform, page):
    _sign_in(page, platform)
    page.goto(f"{platform.url}/console/async")
    row = page.locator("#dead-letters tr", has_text="resize")
    assert "the model file is missing" in row.first.inner_text()
    page.screenshot(path=str(IMAGES / "console-async.png"), full_page=True)
    row.first.locator("button", has_text="Replay").click()
    page.wait_for_url(re.compile(r".*/console/async\?replayed=.+"))
    replayed = page.url.split("replayed=")[1]
    assert replayed in page.locator(".notice").inner_text()
    record = platform.http("GET", f"/v1/invocations/{replayed}").json()
    assert record["function"] == "resize"


def test_pages_are_refused_without_a_session_and_forms_without_their_token(platform, page):
    with httpx.Client(base_url=platform.url, follow_redirects=False) as plain:
        for path in ("/console", "/console/functions/hello", "/console/async", "/console/cost"):
            answer = plain.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/console/login"), path
        forged = plain.post("/console/dead-letters/x/replay", data={"csrf": "x"})
        assert forged.status_code == 303  # no session: to the sign-in page, nothing replayed
        wrong = plain.post("/console/login", data={"key": "not-a-key"})
        assert wrong.status_code == 401 and "Invalid API key" in wrong.text
    _sign_in(page, platform)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=platform.url, cookies=cookies, follow_redirects=False) as session:
        assert session.get("/console/cost").status_code == 200
        no_token = session.post("/console/dead-letters/x/replay", data={})
        assert no_token.status_code == 403 and "CSRF" in no_token.text
        other = session.post("/console/logout", data={"csrf": "x"},
                             headers={"Origin": "https://evil.example"})  # fmt: skip
        assert other.status_code == 403 and "another origin" in other.text
    cookie = next(c for c in page.context.cookies() if c["name"] == "mlambda_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/console/login$"))
    page.goto(f"{platform.url}/console/alarms")
    assert "/console/login" in page.url


def test_browsing_the_console_counts_no_failed_authentication(platform, page):
    _sign_in(page, platform)
    for path in ("/console", "/console/functions/hello", "/console/async", "/console/alarms"):
        page.goto(f"{platform.url}{path}")
    audit = platform.http("GET", "/v1/audit", params={"action": "auth.refused"}).json()
    refused = [e for e in audit["entries"] if e["target"] != "/console/login"]
    assert refused == []  # no favicon or other request of the pages' went unauthenticated


def test_a_key_that_cannot_read_is_turned_away(platform, page):
    key = platform.client.create_key({"name": "bot", "scopes": ["invoke:hello"]})
    page.goto(f"{platform.url}/console/login")
    page.fill("#key", key["token"])
    page.click("button[type=submit]")
    assert "needs scope read" in page.locator(".error").inner_text()


def test_with_auth_off_the_console_needs_no_sign_in(tmp_path):
    server = Server(tmp_path / "data", "--no-auth").start()
    try:
        with httpx.Client(base_url=server.url, follow_redirects=False) as client:
            assert client.get("/console/login").headers["location"] == "/console"
            home = client.get("/console")
            assert home.status_code == 200 and "No function yet" in home.text
            assert "default-src 'self'" in home.headers["content-security-policy"]
            assert client.get("/console/static/uplot-1.6.32.min.js").status_code == 200
            assert client.get("/console/static/..%2Fpages.py").status_code == 404
    finally:
        server.stop()
