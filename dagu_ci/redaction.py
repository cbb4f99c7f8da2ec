"""The secrets of this invocation, and the one function that hides them from people.

`SECRETS` knows every token and password dagu-ci was given (options, environment, a
password inside --url), each in every form it could be printed in: as given, trimmed,
escaped as Python's repr or JSON shows it, percent-encoded as in a URL, and inside the
base64 of a Basic auth header. Every path out to people goes through `redact`: the
error line, reporter output (notices, warnings, remote log lines), debug tracebacks;
GitHub is told to mask each form (`mask_values`).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import quote, quote_plus, unquote

MASK = "***"

_AUTHORITY_END = re.compile(r"[/?#]")


def url_userinfo(url: str) -> Tuple[Optional[str], Optional[str]]:
    """(user, password) as written in a URL, even a malformed one: `ftp://u:p@h`, `u:p@h:8x80`."""
    text = url.strip()
    rest = text.partition("://")[2] if "://" in text else text
    authority = _AUTHORITY_END.split(rest, 1)[0]
    userinfo, at, _ = authority.rpartition("@")
    if not at:
        return None, None
    user, colon, password = userinfo.partition(":")
    return user, (password if colon else None)


def without_userinfo(url: str) -> str:
    """The URL to show in a message: any user:password before the host becomes ***."""
    text = url.strip()
    scheme, sep, rest = text.partition("://") if "://" in text else ("", "", text)
    end = _AUTHORITY_END.search(rest)
    authority_end = end.start() if end else len(rest)
    at = rest.rfind("@", 0, authority_end)
    return text if at < 0 else f"{scheme}{sep}{MASK}@{rest[at + 1 :]}"


class Secrets:
    def __init__(self) -> None:
        self._masked: List[str] = []  # longest first: a form inside a longer one goes after it

    def add(self, secret: Optional[str]) -> None:
        """A secret as given, and as dagu-ci cleans it (see client.header_token, client.basic_password)."""
        if not secret:
            return
        forms = set(self._masked)
        for value in (secret, secret.strip(), secret.rstrip("\r\n")):
            forms.update(_printed_forms(value))
        self._masked = sorted((form for form in forms if form.strip()), key=len, reverse=True)

    def add_basic(self, username: Optional[str], password: Optional[str]) -> None:
        """The base64 of `user:password` a Basic auth header carries."""
        if username and password:
            pair = f"{username}:{password}".encode("utf-8", "surrogateescape")
            self._add_form(base64.b64encode(pair).decode("ascii"))

    def add_connection(
        self,
        tokens: Iterable[Optional[str]],
        usernames: Iterable[Optional[str]],
        passwords: Iterable[Optional[str]],
        urls: Iterable[Optional[str]],
    ) -> None:
        """Everything secret in these connection settings (any may come several times)."""
        users, secrets = list(usernames), list(passwords)
        for url in urls:
            url_user, url_password = url_userinfo(url or "")
            users += [url_user, unquote(url_user or "")]
            secrets += [url_password, unquote(url_password or "")]
        for secret in [*tokens, *secrets]:
            self.add(secret)
        for user in users:
            for password in secrets:
                self.add_basic(user, password)
                self.add_basic(user, (password or "").rstrip("\r\n"))

    def redact(self, text: str) -> str:
        for form in self._masked:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def mask_values(self) -> List[str]:
        return list(self._masked)

    def _add_form(self, form: str) -> None:
        if form.strip() and form not in self._masked:
            self._masked = sorted([*self._masked, form], key=len, reverse=True)


def _printed_forms(value: str) -> List[str]:
    if not value:
        return []
    return [
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe="", errors="surrogateescape"),
        quote(value, errors="surrogateescape"),
        quote_plus(value, errors="surrogateescape"),
    ]


SECRETS = Secrets()  # this invocation's


def learn(
    tokens: Iterable[Optional[str]],
    usernames: Iterable[Optional[str]],
    passwords: Iterable[Optional[str]],
    urls: Iterable[Optional[str]],
) -> None:
    """Tell this invocation's SECRETS about connection settings (Secrets.add_connection)."""
    SECRETS.add_connection(tokens, usernames, passwords, urls)


def mask_values() -> List[str]:
    """Every form of every secret of this invocation, for a host to mask (GitHub)."""
    return SECRETS.mask_values()


def line_masks(secrets: Iterable[Optional[str]]) -> List[str]:
    """What a host that masks line by line (GitHub's add-mask, Azure's setsecret) must be told:
    each secret whole and each of its lines, blank ones left out."""
    masks: List[str] = []
    for secret in secrets:
        for value in (secret, *(secret or "").splitlines()):
            if value and value.strip() and value not in masks:
                masks.append(value)
    return masks


def redact(text: str) -> str:
    """`text` with every form of every secret of this invocation replaced by ***."""
    return SECRETS.redact(text)


def redact_value(value: Any) -> Any:
    """A JSON-able value with its strings (keys too) redacted, for documents that must stay valid."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(key): redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    return value


def debug_traceback(env: Mapping[str, str]) -> None:
    """With DAGU_CI_DEBUG set, the current exception's traceback on stderr, redacted."""
    if env.get("DAGU_CI_DEBUG"):
        import sys
        import traceback  # only here: it costs start-up time on every call

        sys.stderr.write(redact(traceback.format_exc()))
