"""Who may open what in the app: users with roles, hashed passwords, a rate-limited login, a Host allow-list,
and a private folder for uploads.

- Roles: ``agent`` sees Live, ``reviewer`` Review, ``trainer`` Train, ``admin`` all three. Users are listed in
  ``[app] users`` as ``"name:role:argon2-hash"`` (``python app.py --hash-password`` prints a hash); the
  older ``auth_user`` / ``auth_password`` pair is an admin.
- Passwords are verified with argon2id (argon2-cffi); a failed login costs the same with or without the user.
- Login attempts are rate-limited per user name and for the whole app (a guesser is slowed to a few tries a
  minute instead of 300 in 4.5 s).
- Requests whose ``Host`` header is not the app's own are refused (DNS rebinding: a web page on another name
  resolving to 127.0.0.1 would otherwise read the app from the agent's browser).
- Uploads go to a folder of this app only (mode 0700), not the host-wide Gradio cache, and are removed after
  use and at exit.

No Gradio import here: these are plain functions and values, tested without a browser.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from copilot.config import AppConfig
from copilot.errors import ConfigError

Role = Literal["agent", "reviewer", "trainer", "admin"]
View = Literal["live", "review", "train"]
ROLE_VIEWS: dict[str, frozenset[View]] = {
    "agent": frozenset({"live"}),
    "reviewer": frozenset({"review"}),
    "trainer": frozenset({"train"}),
    "admin": frozenset({"live", "review", "train"}),
}
ALL_VIEWS: frozenset[View] = frozenset({"live", "review", "train"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
FAILS_PER_USER = 5  # failed logins for one name within LOGIN_WINDOW before it is locked for the window
FAILS_PER_APP = 20  # failed logins for all names within LOGIN_WINDOW before every login is refused
LOGIN_WINDOW = 300.0  # s
UPLOAD_PREFIX = "copilot-uploads-"
TEMP_ENV = "GRADIO_TEMP_DIR"  # Gradio's upload and cache folder (read when gradio is imported)


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` for ``[app] users`` (argon2-cffi's recommended parameters)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def parse_users(config: AppConfig) -> dict[str, User]:
    """The configured users by name; a malformed entry is a ConfigError naming it (never its password)."""
    users: dict[str, User] = {}
    for number, entry in enumerate(config.users, start=1):
        parts = entry.split(":", 2)
        if (
            len(parts) != 3
            or not parts[0]
            or parts[1] not in ROLE_VIEWS
            or not parts[2].startswith("$argon2")
        ):
            raise ConfigError(
                f"app.users entry {number} must be 'name:role:argon2-hash' with role one of "
                f"{', '.join(ROLE_VIEWS)} (python app.py --hash-password prints a hash)"
            )
        name, role, digest = parts
        if name in users:
            raise ConfigError(f"app.users lists {name!r} twice")
        users[name] = User(name, role, digest)  # type: ignore[arg-type]
    if config.auth_user:
        password = config.auth_password
        digest = password if password.startswith("$argon2") else hash_password(password)
        users.setdefault(config.auth_user, User(config.auth_user, "admin", digest))
    return users


def views_for(users: dict[str, User], name: str | None) -> frozenset[View]:
    """The views a signed-in user may open; every view when the app has no login."""
    if not users:
        return ALL_VIEWS
    user = users.get(name or "")
    return ROLE_VIEWS[user.role] if user is not None else frozenset()


class Login:
    """Gradio's ``auth`` callable: argon2 verification behind a per-name and an app-wide rate limit."""

    def __init__(self, users: dict[str, User], *, clock: Callable[[], float] = time.monotonic) -> None:
        from argon2 import PasswordHasher

        self._users = users
        self._hasher = PasswordHasher()
        self._dummy = self._hasher.hash("not a password")  # same cost for a name that does not exist
        self._clock = clock
        self._lock = threading.Lock()
        self._fails: dict[str, deque[float]] = {}
        self._all_fails: deque[float] = deque()

    def _recent(self, times: deque[float], now: float) -> int:
        while times and now - times[0] > LOGIN_WINDOW:
            times.popleft()
        return len(times)

    def locked(self, name: str) -> bool:
        """True while ``name`` (or the whole app) has failed too often within the window."""
        now = self._clock()
        with self._lock:
            mine = self._recent(self._fails.setdefault(name, deque()), now)
            return mine >= FAILS_PER_USER or self._recent(self._all_fails, now) >= FAILS_PER_APP

    def __call__(self, name: str, password: str) -> bool:
        from argon2.exceptions import Argon2Error, InvalidHashError

        if self.locked(name):
            return False  # not even verified: a locked name costs the app nothing
        user = self._users.get(name)
        try:
            ok = (
                self._hasher.verify(user.password_hash if user else self._dummy, password)
                and user is not None
            )
        except (Argon2Error, InvalidHashError):
            ok = False
        if not ok:
            now = self._clock()
            with self._lock:
                self._fails.setdefault(name, deque()).append(now)
                self._all_fails.append(now)
        return ok


def allowed_hosts(config: AppConfig, host: str | None = None) -> list[str]:
    """Host header values the app answers: loopback names, the address it listens on, and
    ``[app] allowed_hosts`` (the names users type when it is served beyond this machine)."""
    names = [*LOOPBACK_NAMES, *config.allowed_hosts]
    listen = host or config.host
    if listen not in ("0.0.0.0", "::", ""):
        names.append(listen)
    return list(dict.fromkeys(names))


def host_allowed(header: str, allowed: Sequence[str]) -> bool:
    """``header`` (``name`` or ``name:port``) names one of ``allowed`` (case-insensitive)."""
    name = header.strip().lower()
    if name.startswith("["):  # [::1]:7860
        name = name.split("]", 1)[0] + "]"
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name in {a.lower() for a in allowed}


def private_upload_dir() -> Path:
    """A folder for this app's uploads only (mode 0700), removed at exit; Gradio is told to use it.

    Call before gradio is imported (it reads the folder once). An existing ``GRADIO_TEMP_DIR`` is kept."""
    existing = os.environ.get(TEMP_ENV)
    if existing:
        return Path(existing)
    folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))  # mkdtemp creates it 0700
    os.environ[TEMP_ENV] = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def remove_uploads(paths: Iterable[str | os.PathLike[str]], folder: Path | None = None) -> None:
    """Delete uploaded files once used (only files inside ``folder``, Gradio's upload folder)."""
    root = (folder or Path(os.environ.get(TEMP_ENV) or Path(tempfile.gettempdir()) / "gradio")).resolve()
    for path in paths:
        target = Path(path).resolve()
        if target.is_relative_to(root) and target.is_file():
            target.unlink(missing_ok=True)
            if target.parent != root and not any(target.parent.iterdir()):
                target.parent.rmdir()  # Gradio keeps each upload in a folder of its own


class HostAllowList:
    """ASGI middleware: a request (or WebSocket) whose Host header is not allowed gets a 400, nothing else."""

    def __init__(self, app: Any, allowed: Sequence[str]) -> None:
        self.app = app
        self.allowed = list(allowed)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
            if not host_allowed(host, self.allowed):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = b"unknown host: this app answers only by its own name"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [
                            (b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
