"""Git credentials: an HTTPS token or an SSH key, handed to git through its environment only.

Nothing here is ever printed, logged or stored: ``repr`` redacts, and ``scrub`` removes secrets
from any text (such as git's stderr) before it is shown.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


@dataclass(frozen=True)
class GitAuth:
    token: str | None = field(default=None, repr=False)
    username: str = "git"
    ssh_key: Path | None = None
    known_hosts: Path | None = None

    @classmethod
    def from_env(cls) -> GitAuth:
        """``ACM_LITE_GIT_TOKEN`` (+ ``ACM_LITE_GIT_USERNAME``), ``ACM_LITE_GIT_SSH_KEY`` and
        ``ACM_LITE_GIT_KNOWN_HOSTS``: the way a Secret reaches an in-cluster daemon."""
        key = os.environ.get("ACM_LITE_GIT_SSH_KEY")
        hosts = os.environ.get("ACM_LITE_GIT_KNOWN_HOSTS")
        return cls(token=os.environ.get("ACM_LITE_GIT_TOKEN") or None,
                   username=os.environ.get("ACM_LITE_GIT_USERNAME", "git"),
                   ssh_key=Path(key) if key else None, known_hosts=Path(hosts) if hosts else None)

    def env(self) -> dict[str, str]:
        """Environment variables that give git these credentials (and forbid prompting)."""
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "echo", "SSH_ASKPASS": "echo"}
        if self.token:
            basic = base64.b64encode(f"{self.username}:{self.token}".encode()).decode()
            env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
        if self.ssh_key:
            ssh += ["-i", str(self.ssh_key), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            ssh += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        else:
            ssh += ["-o", "StrictHostKeyChecking=accept-new"]
        env["GIT_SSH_COMMAND"] = shlex.join(ssh)
        return env

    def scrub(self, text: str) -> str:
        """``text`` with the token (raw or encoded) and URL credentials removed."""
        if self.token:
            text = text.replace(self.token, "***")
            basic = base64.b64encode(f"{self.username}:{self.token}".encode()).decode()
            text = text.replace(basic, "***")
        return strip_userinfo(text)


def strip_userinfo(url: str) -> str:
    """``https://user:secret@host/x`` → ``https://host/x`` (also inside longer text)."""
    return _USERINFO.sub(r"\g<scheme>", url)
