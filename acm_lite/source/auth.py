"""Git credentials: an HTTPS token or an SSH key, handed to git through its environment only.

A token goes to git's own credential mechanism, never into a header sent with every request: a
helper that answers only for the repository's own protocol and host, and only over https
(plain http needs ``allow_http``, e.g. for a loopback test server). A redirect to another host
therefore never receives it. Nothing here is ever printed, logged or stored: ``repr`` redacts,
and ``scrub`` removes secrets from any text (such as git's stderr) before it is shown.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

# the userinfo runs to the authority's last "@" (a password may hold a raw "@", as urlsplit allows)
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/?#\s]+@", re.IGNORECASE)
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$")
ALLOW_HTTP_ENV = "ACM_LITE_GIT_ALLOW_HTTP"
USERNAME_VAR, PASSWORD_VAR = "ACM_LITE_GIT_HELPER_USERNAME", "ACM_LITE_GIT_HELPER_PASSWORD"
# git appends the operation ("get", "store", "erase"); the helper reads git's request on stdin and
# answers a "get" only when its protocol and host are the repository's own.
_HELPER = (
    '!f() { test "$1" = get || exit 0; p=; h=; '
    'while IFS= read -r l && test -n "$l"; do case "$l" in '
    'protocol=*) p="${l#protocol=}";; host=*) h="${l#host=}";; esac; done; '
    'test "$p" = %(protocol)s && test "$h" = %(host)s || exit 0; '
    'printf "username=%%s\\npassword=%%s\\n" "$%(user)s" "$%(password)s"; }; f'
)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class GitAuth:
    token: str | None = field(default=None, repr=False)
    username: str = "git"
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    allow_http: bool = False  # send the token over plain http too (trusted networks, tests)

    @classmethod
    def from_env(cls) -> GitAuth:
        """``ACM_LITE_GIT_TOKEN`` (+ ``ACM_LITE_GIT_USERNAME``), ``ACM_LITE_GIT_SSH_KEY``,
        ``ACM_LITE_GIT_KNOWN_HOSTS`` and ``ACM_LITE_GIT_ALLOW_HTTP``: the way a Secret reaches
        an in-cluster daemon."""
        key = os.environ.get("ACM_LITE_GIT_SSH_KEY")
        hosts = os.environ.get("ACM_LITE_GIT_KNOWN_HOSTS")
        return cls(
            token=os.environ.get("ACM_LITE_GIT_TOKEN") or None,
            username=os.environ.get("ACM_LITE_GIT_USERNAME", "git"),
            ssh_key=Path(key) if key else None,
            known_hosts=Path(hosts) if hosts else None,
            allow_http=_truthy(os.environ.get(ALLOW_HTTP_ENV)),
        )

    def with_url_credentials(self, url: str) -> GitAuth:
        """These credentials, with the user and password written in ``url`` (which win)."""
        parts = urlsplit(url)
        if not parts.password:
            return self
        return GitAuth(
            token=unquote(parts.password),
            username=unquote(parts.username or "git"),
            ssh_key=self.ssh_key,
            known_hosts=self.known_hosts,
            allow_http=self.allow_http,
        )

    def withheld(self, url: str) -> bool:
        """A token that is not sent to ``url``: it is plain http and http was not allowed."""
        return bool(self.token) and urlsplit(url).scheme.lower() == "http" and not self.allow_http

    def env(self, url: str) -> dict[str, str]:
        """Environment variables that give git these credentials for ``url`` only (and forbid
        prompting, and any credential helper of the user's own configuration)."""
        helper = self._helper(url)
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            **_config([("credential.helper", ""), *helper]),
        }
        if helper and self.token:
            env.update({USERNAME_VAR: self.username, PASSWORD_VAR: self.token})
        env["GIT_SSH_COMMAND"] = shlex.join(self._ssh())
        return env

    def _helper(self, url: str) -> list[tuple[str, str]]:
        """The credential helper for the repository's protocol and host, when the token may
        go there."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.netloc.rpartition("@")[2]
        if not self.token or scheme not in ("https", "http") or self.withheld(url):
            return []
        if not _HOST.fullmatch(host):
            return []
        helper = _HELPER % {
            "protocol": shlex.quote(scheme),
            "host": shlex.quote(host),
            "user": USERNAME_VAR,
            "password": PASSWORD_VAR,
        }
        return [(f"credential.{scheme}://{host}.helper", helper), ("http.followRedirects", "initial")]

    def _ssh(self) -> list[str]:
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
        if self.ssh_key:
            ssh += ["-i", str(self.ssh_key), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            ssh += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        else:
            ssh += ["-o", "StrictHostKeyChecking=accept-new"]
        return ssh

    def scrub(self, text: str) -> str:
        """``text`` with the token (raw or encoded) and URL credentials removed."""
        if self.token:
            text = text.replace(self.token, "***")
            basic = base64.b64encode(f"{self.username}:{self.token}".encode()).decode()
            text = text.replace(basic, "***")
        return strip_userinfo(text)


def _config(entries: list[tuple[str, str]]) -> dict[str, str]:
    """git configuration passed through the environment (``GIT_CONFIG_COUNT``), which comes last
    and so overrides the user's own."""
    env = {"GIT_CONFIG_COUNT": str(len(entries))}
    for i, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


def strip_userinfo(url: str) -> str:
    """``https://user:secret@host/x`` → ``https://host/x`` (also inside longer text)."""
    return _USERINFO.sub(r"\g<scheme>", url)
