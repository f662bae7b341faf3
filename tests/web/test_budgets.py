"""Attacks on the budgets, through a real server: who the client is behind a proxy, one
visitor against everyone, replays of one unsubscribe, confirmations per requester."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from newsletter.web import Limits
from newsletter.web.proxy import client_key, parse_networks, resolve_client
from tests.support.webserver import (
    FORM,
    ONE_CLICK,
    Serve,
    confirmations_to,
    csv_row,
    post_signup,
    status_of,
    subscribe_form,
    unsubscribe_path,
    wait_for_confirmation,
    web_settings,
)

TRUSTED = parse_networks("127.0.0.1, 10.0.0.0/8")


def h(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


# Who the client is ---------------------------------------------------------------------
def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    spoof = h(x_forwarded_for="198.51.100.9")
    assert resolve_client("203.0.113.5", spoof, TRUSTED) == ("203.0.113.5", None)
    assert resolve_client("127.0.0.1", spoof, ()) == ("127.0.0.1", None)
    # the client's own claim (left) is ignored: the right-most untrusted hop is the client
    chain = h(x_forwarded_for="198.51.100.9, 203.0.113.5, 10.1.2.3", x_forwarded_proto="https")
    assert resolve_client("127.0.0.1", chain, TRUSTED) == ("203.0.113.5", "https")
    forwarded = h(forwarded='for="[2001:db8::1]:4711";proto=https, for=10.0.0.2')
    assert resolve_client("127.0.0.1", forwarded, TRUSTED) == ("2001:db8::1", "https")
    assert resolve_client("127.0.0.1", h(forwarded="for=unknown"), TRUSTED)[0] == "127.0.0.1"
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") == "2001:db8::/64"
    assert client_key("::ffff:203.0.113.5") == "203.0.113.5"
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks("127.0.0.1, 10.0.0.300")


def test_a_bad_trusted_proxies_setting_names_the_variable(home: Path) -> None:
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="NEWSLETTER_TRUSTED_PROXIES: not an IP address"):
        web_settings(None, trusted_proxies="caddy.internal")


def test_behind_a_proxy_one_visitor_does_not_lock_out_everyone(serve: Serve, home: Path) -> None:
    """Before: behind a proxy at another address than 127.0.0.1 (here 127.0.0.2), every
    visitor shared the proxy's bucket: the 11th visitor's signup was refused."""
    direct = serve(web_settings(None, trusted_proxies="127.0.0.2"))
    client = httpx.Client(
        base_url=str(direct.base_url),
        transport=httpx.HTTPTransport(local_address="127.0.0.2"),
        timeout=30,
    )
    csrf = subscribe_form(client)
    loud = {"X-Forwarded-For": "203.0.113.5"}
    codes = [
        client.post(
            "/subscribe", data={"csrf": csrf, "email": f"x{i}@example.net"}, headers=loud
        ).status_code
        for i in range(11)
    ]
    assert codes == [200] * 10 + [429]
    quiet = client.post(
        "/subscribe",
        data={"csrf": csrf, "email": "quiet@example.net"},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert quiet.status_code == 200
    client.close()


def test_without_trust_a_forged_forwarded_for_buys_nothing(serve: Serve, home: Path) -> None:
    """Before: uvicorn trusted X-Forwarded-For from 127.0.0.1 whatever the setting."""
    client = serve(web_settings(None))  # no NEWSLETTER_TRUSTED_PROXIES
    csrf = subscribe_form(client)
    codes = [
        client.post(
            "/subscribe",
            data={"csrf": csrf, "email": f"x{i}@example.net"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        ).status_code
        for i in range(11)
    ]
    assert codes[-1] == 429


# Page loads per client ---------------------------------------------------------------------
def test_page_floods_get_429_for_that_client_only(serve: Serve, wsettings: Settings) -> None:
    settings = web_settings(None, trusted_proxies="127.0.0.1")
    client = serve(settings, limits=Limits(pages_per_client=(20, 60.0)))
    path = unsubscribe_path(settings, "alice@example.org")
    flood = [client.get(path, headers={"X-Forwarded-For": "203.0.113.5"}) for _ in range(25)]
    assert [r.status_code for r in flood].count(429) == 5
    refused = flood[-1]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in refused.headers["content-security-policy"]
    other = client.get(path, headers={"X-Forwarded-For": "198.51.100.7"})
    assert other.status_code == 200
    # the reader's unsubscribe itself is never refused, however often that client asked
    done = client.post(path, content=ONE_CLICK, headers={**FORM, "X-Forwarded-For": "203.0.113.5"})
    assert done.status_code == 200 and done.text == "You have been unsubscribed.\n"


# Replays of one unsubscribe ----------------------------------------------------------------
def _count_writes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the writes each address's unsubscribes make to the list (the real writes)."""
    import newsletter.web.recorder as recorder

    real = recorder.record_unsubscribes
    writes: dict[str, int] = {}
    lock = threading.Lock()

    def counting(store: Any, changes: Any) -> set[str]:
        with lock:
            for email in changes:
                writes[email] = writes.get(email, 0) + 1
        return real(store, changes)

    monkeypatch.setattr(recorder, "record_unsubscribes", counting)
    return writes


def test_replaying_one_unsubscribe_link_does_not_queue_on_the_list(
    serve: Serve,
    wsettings: Settings,
    store: SubscriberStore,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: 300 replays made 300 locked rewrites of the list, and others waited."""
    writes = _count_writes(monkeypatch)
    client = serve()
    replay = unsubscribe_path(wsettings, "alice@example.org")
    others = ["bob.brown@example.org", "hanako.yamada@example.com"]
    results: dict[str, list[int]] = {"alice": [], "others": []}

    def hammer() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as own:
            for _ in range(30):
                results["alice"].append(
                    own.post(replay, content=ONE_CLICK, headers=FORM).status_code
                )

    threads = [threading.Thread(target=hammer) for _ in range(10)]
    for thread in threads:
        thread.start()
    for email in others:
        response = client.post(unsubscribe_path(wsettings, email), content=ONE_CLICK, headers=FORM)
        results["others"].append(response.status_code)
    for thread in threads:
        thread.join()
    assert results["alice"] == [200] * 300
    assert results["others"] == [200, 200]
    assert writes["alice@example.org"] == 1
    assert all(status_of(store, e) == "unsubscribed" for e in [*others, "alice@example.org"])


def test_a_replay_after_a_confirmed_resubscribe_unsubscribes_again(
    serve: Serve, wsettings: Settings, store: SubscriberStore, home: Path
) -> None:
    client = serve()
    path = unsubscribe_path(wsettings, "alice@example.org")
    assert client.post(path, content=ONE_CLICK, headers=FORM).status_code == 200
    time.sleep(1.1)  # a confirm link minted in the unsubscribe's own second counts as older
    again = client.post(path, data={"action": "resubscribe"})
    assert again.status_code == 200
    assert client.post(wait_for_confirmation(home, "alice@example.org")).status_code == 200
    assert status_of(store, "alice@example.org") == "active"
    assert client.post(path, content=ONE_CLICK, headers=FORM).status_code == 200
    assert status_of(store, "alice@example.org") == "unsubscribed"
    assert ",unsubscribed," in csv_row(home, "alice@example.org")


def test_a_replay_after_a_confirm_in_another_process_unsubscribes_again(
    serve: Serve, wsettings: Settings, store: SubscriberStore, home: Path
) -> None:
    """The mailbox job (`signups process`) confirms a reply outside `serve`: the remembered
    "done" of the first unsubscribe must not answer the reader's next click."""
    from urllib.parse import unquote

    from newsletter.audience.confirm import confirm_token
    from newsletter.audience.subscribers import SubscriberStore as Store

    client = serve()
    path = unsubscribe_path(wsettings, "alice@example.org")
    assert client.post(path, content=ONE_CLICK, headers=FORM).status_code == 200
    time.sleep(1.1)  # a confirm link minted in the unsubscribe's own second counts as older
    assert client.post(path, data={"action": "resubscribe"}).status_code == 200
    token = unquote(wait_for_confirmation(home, "alice@example.org").rsplit("/", 1)[1])
    confirm_token(token, wsettings, store=Store.from_settings(wsettings))  # another process
    assert status_of(store, "alice@example.org") == "active"
    assert client.post(path, content=ONE_CLICK, headers=FORM).status_code == 200
    assert status_of(store, "alice@example.org") == "unsubscribed"


# Confirmation mails per requester ----------------------------------------------------------
def test_one_requester_cannot_mail_a_crowd(serve: Serve, home: Path) -> None:
    """Before: ten colleagues named from one connection got ten confirmations."""
    client = serve(limits=Limits(confirmations_per_client=(3, 3600.0)))
    csrf = subscribe_form(client)
    crowd = [f"colleague{i}@example.net" for i in range(6)]
    answers = {post_signup(client, csrf, email).text for email in crowd}
    assert len(answers) == 1  # the same answer whether or not a mail went out
    for email in crowd[:3]:
        wait_for_confirmation(home, email)
    # refused ones never had a background task: nothing more can arrive
    assert [confirmations_to(home, email) for email in crowd] == [1, 1, 1, 0, 0, 0]


# OncePerKey ---------------------------------------------------------------------------------
def test_once_per_key_joins_remembers_and_forgets() -> None:
    import asyncio

    from newsletter.web.limits import OncePerKey

    now = [0.0]
    once: OncePerKey[bool] = OncePerKey(60.0, remember=bool, clock=lambda: now[0])
    calls: list[str] = []

    async def work(key: str, result: bool, fail: bool = False) -> bool:
        calls.append(key)
        await asyncio.sleep(0.01)
        if fail:
            raise RuntimeError("list busy")
        return result

    async def scenario() -> None:
        # ten at once: one run, ten answers
        answers = await asyncio.gather(*(once.run("a", lambda: work("a", True)) for _ in range(10)))
        assert answers == [True] * 10 and calls == ["a"]
        assert await once.run("a", lambda: work("a", True)) is True and calls == ["a"]
        now[0] = 61.0  # remembered for the ttl only
        assert await once.run("a", lambda: work("a", True)) is True and calls == ["a", "a"]
        once.forget("a")
        await once.run("a", lambda: work("a", True))
        assert calls == ["a", "a", "a"]
        # a failure reaches every waiter and is not remembered
        with pytest.raises(RuntimeError):
            await once.run("b", lambda: work("b", True, fail=True))
        assert await once.run("b", lambda: work("b", True)) is True and calls.count("b") == 2
        # a result remember() declines ("not on the list") is asked again next time
        await once.run("c", lambda: work("c", False))
        await once.run("c", lambda: work("c", False))
        assert calls.count("c") == 2

    # a thread of its own: the session's browser (Playwright) runs a loop in this one
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(scenario())).result()


def test_guessing_the_report_token_is_budgeted(serve: Serve, home: Path) -> None:
    client = serve(
        web_settings(None, report_token="report-token-0123456789-abcdefXYZ"),
        limits=Limits(pages_per_client=(5, 60.0)),
    )
    guesses = [
        client.get("/reports", headers={"authorization": f"Bearer guess-{i}"}).status_code
        for i in range(6)
    ]
    assert guesses[:5] == [401] * 5
    assert guesses[5] == 429
