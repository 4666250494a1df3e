"""Access to the app (issue #21): roles, hashed passwords, a rate-limited login, a Host allow-list, no API
description before sign-in, a private upload folder cleaned after use, an upload size limit."""

from __future__ import annotations

import os
import socket
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from copilot.config import AppConfig
from copilot.errors import ConfigError
from copilot.ui import access
from copilot.ui.access import Login, allowed_hosts, hash_password, host_allowed, parse_users, views_for
from copilot.ui.app import build_app, launch, require
from tests.ui_fakes import Engines, context


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {name: hash_password(f"{name}-pw") for name in ("ana", "rui", "tao", "boss")}


def users_config(hashes: dict[str, str]) -> tuple[str, ...]:
    return (
        f"ana:agent:{hashes['ana']}",
        f"rui:reviewer:{hashes['rui']}",
        f"tao:trainer:{hashes['tao']}",
        f"boss:admin:{hashes['boss']}",
    )


def test_each_role_opens_its_own_view_and_an_admin_all(hashes: dict[str, str]) -> None:
    users = parse_users(AppConfig(users=users_config(hashes)))
    assert views_for(users, "ana") == {"live"}
    assert views_for(users, "rui") == {"review"}
    assert views_for(users, "tao") == {"train"}
    assert views_for(users, "boss") == {"live", "review", "train"}
    assert views_for(users, "nobody") == set()
    assert views_for({}, None) == {"live", "review", "train"}  # no sign-in configured: loopback use


def test_an_action_of_a_view_the_role_does_not_open_is_refused(
    tmp_path: Path, hashes: dict[str, str]
) -> None:
    ctx = context(tmp_path, Engines().services(), users=users_config(hashes))

    class Signed:
        def __init__(self, username: str) -> None:
            self.username = username

    require(ctx, Signed("rui"), "review")  # type: ignore[arg-type]
    for view in ("live", "train"):
        with pytest.raises(gr.Error, match="没有权限"):
            require(ctx, Signed("rui"), view)  # type: ignore[arg-type]


def test_passwords_are_stored_as_argon2_hashes_and_bad_entries_are_refused(hashes: dict[str, str]) -> None:
    assert hashes["ana"].startswith("$argon2id$") and "ana-pw" not in hashes["ana"]
    for bad in ("ana:agent:plaintext", "ana:root:" + hashes["ana"], "ana:" + hashes["ana"], ":agent:x"):
        with pytest.raises(ConfigError, match="name:role:argon2-hash") as caught:
            parse_users(AppConfig(users=(bad,)))
        assert "plaintext" not in str(caught.value)  # the message never repeats a secret
    with pytest.raises(ConfigError, match="twice"):
        parse_users(AppConfig(users=(f"ana:agent:{hashes['ana']}", f"ana:admin:{hashes['ana']}")))
    legacy = parse_users(AppConfig(auth_user="qa", auth_password="s3cret"))["qa"]
    assert legacy.role == "admin" and legacy.password_hash.startswith("$argon2id$")


def test_login_is_rate_limited_per_name_and_for_the_whole_app(hashes: dict[str, str]) -> None:
    now = [1000.0]
    login = Login(parse_users(AppConfig(users=users_config(hashes))), clock=lambda: now[0])
    assert login("ana", "ana-pw") and not login("ana", "wrong") and not login("ghost", "ana-pw")
    for _ in range(access.FAILS_PER_USER - 1):
        assert not login("ana", "guess")
    assert not login("ana", "ana-pw")  # locked: even the right password waits for the window
    assert login("rui", "rui-pw")  # another name is not locked by ana's guesser
    now[0] += access.LOGIN_WINDOW + 1
    assert login("ana", "ana-pw")
    for i in range(access.FAILS_PER_APP):
        login(f"guess{i}", "x")  # a guesser trying many names
    assert not login("tao", "tao-pw")  # the whole app refuses until the window passes
    now[0] += access.LOGIN_WINDOW + 1
    assert login("tao", "tao-pw")


def test_only_the_apps_own_host_names_are_answered() -> None:
    hosts = allowed_hosts(AppConfig(allowed_hosts=("copilot.example.com",)))
    for ok in ("127.0.0.1:7860", "localhost", "LOCALHOST:80", "[::1]:7860", "copilot.example.com"):
        assert host_allowed(ok, hosts), ok
    for bad in ("evil.example:7860", "", "127.0.0.1.evil.example", "copilot.example.com.evil"):
        assert not host_allowed(bad, hosts), bad
    assert "10.0.0.5" in allowed_hosts(AppConfig(host="10.0.0.5"))
    assert "0.0.0.0" not in allowed_hosts(AppConfig(host="0.0.0.0"))


def test_uploads_go_to_a_private_folder_and_are_removed_after_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(access.TEMP_ENV, raising=False)
    folder = access.private_upload_dir()
    try:
        assert os.environ[access.TEMP_ENV] == str(folder)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # other users and apps cannot read it
        upload = folder / "abc123" / "call.wav"
        upload.parent.mkdir()
        upload.write_bytes(b"RIFF")
        outside = tmp_path / "keep.wav"
        outside.write_bytes(b"RIFF")
        access.remove_uploads([upload, outside], folder)
        assert not upload.exists() and not upload.parent.exists() and outside.exists()
    finally:
        access.shutil.rmtree(folder, ignore_errors=True)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(tmp_path: Path, **app: Any) -> Iterator[str]:
    ctx = context(tmp_path, Engines().services(), **app)
    demo = build_app(ctx.config, ctx.services, store=ctx.store, calls_dir=None)
    port = _port()
    launch(demo, ctx.config, port=port, block=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


def fetch(
    url: str, *, host: str | None = None, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=data, headers={**(headers or {}), **({"Host": host} if host else {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_served_app_refuses_other_hosts_hides_its_api_and_limits_uploads(
    tmp_path: Path, hashes: dict[str, str]
) -> None:
    with served(tmp_path, users=users_config(hashes), max_upload_mb=1) as base:
        assert fetch(f"{base}/", host="evil.example:7860")[0] == 400  # DNS rebinding
        status, page = fetch(f"{base}/")
        assert status == 200  # the login page
        for endpoint in ("start_replay", "run_review", "replay_call", "save_rating", "block_it"):
            assert endpoint.encode() not in page  # no API description before sign-in
        assert fetch(f"{base}/gradio_api/info")[0] == 401
        form = urllib.parse.urlencode({"username": "rui", "password": "rui-pw"}).encode()
        request = urllib.request.Request(f"{base}/login", data=form)
        with urllib.request.urlopen(request, timeout=30) as response:
            cookie = response.headers["set-cookie"].split(";")[0]
        status, info = fetch(f"{base}/gradio_api/info", headers={"Cookie": cookie})
        assert status == 200 and b"run_review" not in info  # nor after: the app is no API
        boundary = "cpboundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.wav"\r\n'
                "Content-Type: audio/wav\r\n\r\n"
            ).encode()
            + b"\0" * (2 * 1024 * 1024)
            + f"\r\n--{boundary}--\r\n".encode()
        )
        status, _ = fetch(
            f"{base}/gradio_api/upload",
            data=body,
            headers={"Cookie": cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert status == 413  # over [app] max_upload_mb
