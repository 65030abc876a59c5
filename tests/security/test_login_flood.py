"""Password guessing: a flood of concurrent logins must not exhaust memory (argon2 checks are
bounded, at Pi-sized parameters), must not get more guesses checked than the throttle allows,
and must never keep the real user out (findings 1-3)."""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from pathlib import Path

import argon2
import pytest

from gateway.web.app import create_app

from .conftest import ADMIN, AGENT, Concurrency, HttpClient, Web, csrf_token

FLOOD = 40
ATTACKERS = ["127.0.0.2", "127.0.0.4", "127.0.0.5", "127.0.0.6"]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


class RssPeak:
    """The highest resident size seen while the block runs (sampled every 2 ms)."""

    def __init__(self) -> None:
        self.start = self.peak = rss_kib()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.002):
            self.peak = max(self.peak, rss_kib())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)
        self.after = rss_kib()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 1024


def flood(server, sources: list[str], username: str, n: int = FLOOD) -> list[tuple[int, dict]]:
    """``n`` wrong logins for ``username`` at once, spread over the ``sources`` addresses, over
    the real server, each address in one session (one CSRF token); each status and headers."""
    sessions = {}
    for source in sources:
        first = HttpClient(server, source, timeout=30)
        token = first.token()  # sets the session cookie the token belongs to
        sessions[source] = (first.cookie, token)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def guess(source: str) -> None:
        cookie, token = sessions[source]
        form = urllib.parse.urlencode(
            {"username": username, "password": "wrong-guess", "csrf_token": token}
        ).encode()
        client = HttpClient(server, source, timeout=30)
        client.cookie = cookie
        barrier.wait(10)
        try:
            status, headers, _ = client.request(
                "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
            )
        except OSError as exc:  # refused, reset or timed out: the server did not answer
            status, headers = 0, {"error": repr(exc)}
        with lock:
            results.append((status, headers))

    threads = [threading.Thread(target=guess, args=(sources[i % len(sources)],)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == n
    return results


def test_login_flood_with_real_argon2_is_bounded_in_memory_and_checks(
    tmp_path, monkeypatch: pytest.MonkeyPatch, server_for
) -> None:
    # The real hasher, whatever parameters the store asks it for (not the suite's cheap one).
    monkeypatch.setattr("gateway.store.users.PasswordHasher", argon2.PasswordHasher)
    web = Web(tmp_path)  # users hashed at the real cost
    try:
        stored = web.store.users.by_name("admin")["password_hash"]
        # One of OWASP's equivalent settings, the one in the least memory (fit for a Pi).
        assert stored.startswith("$argon2id$v=19$m=7168,t=5,p=1$")
        checks = Concurrency()
        monkeypatch.setattr(
            argon2.PasswordHasher, "verify", checks.wrap(argon2.PasswordHasher.verify)
        )
        server = server_for(web)
        with RssPeak() as rss:
            # From four addresses, ten each: every address within the server's per-address
            # cap, so each login reaches the app and only its own guards hold it back.
            results = flood(server, ATTACKERS, "admin")
        statuses = sorted(s for s, _ in results)
        print(
            f"\nlogin flood: {FLOOD} concurrent wrong logins, {checks.calls} password checks, "
            f"at most {checks.peak} at once, RSS {rss.start // 1024} MiB -> peak "
            f"{rss.peak // 1024} MiB (+{rss.growth_mib:.0f} MiB), after {rss.after // 1024} MiB; "
            f"statuses {statuses}"
        )
        assert checks.peak <= 1, f"{checks.peak} argon2 checks ran at once"
        # The throttle lets 4 guesses per (name, address) be checked.
        assert checks.calls <= 4 * len(ATTACKERS), f"{checks.calls} guesses were checked"
        # One check's 7 MiB and the server's work; two checks of 19 MiB at once grew it 40.
        assert rss.growth_mib < 20, f"resident memory grew {rss.growth_mib:.0f} MiB"
        assert set(statuses) <= {401, 429}
        assert all("retry-after" in h for s, h in results if s == 429)
        # The real admin, at another address, logs in at once.
        assert HttpClient(server, "127.0.0.3").login(*ADMIN) == 302
    finally:
        web.store.close()


def post_login(client, username: str, password: str, address: str):
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_concurrent_guesses_are_counted_before_they_are_checked(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = Concurrency()
    monkeypatch.setattr(argon2.PasswordHasher, "verify", checks.wrap(argon2.PasswordHasher.verify))
    client = web.app.test_client()
    token = csrf_token(client, "/login")
    barrier = threading.Barrier(FLOOD)
    codes: list[int] = []

    def guess() -> None:
        # Each thread its own client with the same session cookie (a browser's copy).
        mine = web.app.test_client()
        mine.set_cookie("gateway_session", client.get_cookie("gateway_session").value)
        barrier.wait(10)
        resp = mine.post(
            "/login",
            data={"username": "agent", "password": "guess", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "10.0.0.66"},
        )
        codes.append(resp.status_code)

    threads = [threading.Thread(target=guess) for _ in range(FLOOD)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(codes) == FLOOD and set(codes) <= {401, 429}
    assert checks.calls <= 4, f"{checks.calls} of {FLOOD} concurrent guesses were checked"


def test_guesses_from_one_address_do_not_lock_the_user_out_elsewhere(web: Web) -> None:
    attacker = web.app.test_client()
    codes = [post_login(attacker, "agent", "nope", "10.0.0.66").status_code for _ in range(8)]
    assert codes[:4] == [401] * 4 and set(codes[4:]) == {429}
    resp = post_login(attacker, "agent", AGENT[1], "10.0.0.66")
    assert resp.status_code == 429 and resp.headers["Retry-After"].isdigit()
    # The real agent, at their own desk, is not kept out, and the attacker still is.
    real = web.app.test_client()
    assert post_login(real, "agent", AGENT[1], "10.0.0.7").status_code == 302
    assert real.get("/home", environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 200
    assert post_login(attacker, "agent", "nope", "10.0.0.66").status_code == 429


def test_a_success_clears_the_count_of_that_name_at_that_address(web: Web) -> None:
    client = web.app.test_client()
    for _ in range(3):
        assert post_login(client, "agent", "nope", "10.0.0.7").status_code == 401
    assert post_login(client, "agent", AGENT[1], "10.0.0.7").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    # A typo after that starts counting from zero: four more tries before any wait.
    codes = [post_login(client, "agent", "nope", "10.0.0.7").status_code for _ in range(4)]
    assert codes == [401] * 4


def test_an_old_hash_is_upgraded_at_login_and_the_session_lives_on(web: Web) -> None:
    # A hash made with other parameters than today's (as argon2-cffi's 64 MiB default was).
    old = argon2.PasswordHasher(time_cost=1, memory_cost=16, parallelism=1).hash(AGENT[1])
    web.store.db.execute("UPDATE users SET password_hash = ? WHERE username = 'agent'", (old,))
    client = web.client(AGENT)
    assert client.get("/home").status_code == 200  # the login that rehashed still holds
    new = web.store.users.by_name("agent")["password_hash"]
    assert new != old and re.match(r"\$argon2id\$v=19\$m=8,t=1,p=1\$", new)  # today's (tests)
    assert web.client(AGENT).get("/home").status_code == 200  # and it still verifies


def test_a_login_that_finds_every_check_busy_is_told_to_retry_at_once(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(web.services, TESTING=True, GATEWAY_LOGIN_CHECKS=1, GATEWAY_LOGIN_WAIT=0.2)
    entered, release = threading.Event(), threading.Event()
    verify = argon2.PasswordHasher.verify

    def slow_for_one(self, stored, password):
        if password == "slow-one":  # this check holds the only slot until released
            entered.set()
            release.wait(10)
        return verify(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", slow_for_one)
    first = threading.Thread(
        target=post_login, args=(app.test_client(), "agent", "slow-one", "10.0.0.1")
    )
    first.start()
    try:
        assert entered.wait(5)
        started = time.monotonic()
        resp = post_login(app.test_client(), "admin", ADMIN[1], "10.0.0.2")
        assert time.monotonic() - started < 1.5  # answered, not queued
        assert resp.status_code == 429 and resp.headers["Retry-After"].isdigit()
        assert "busy" in resp.get_data(True)
    finally:
        release.set()
        first.join(10)
    # The refused attempt did not count against anyone: the admin gets in now.
    assert post_login(app.test_client(), "admin", ADMIN[1], "10.0.0.2").status_code == 302
