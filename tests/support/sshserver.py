"""A real SSH Git server on loopback for tests (asyncssh): public-key authentication, and
``git-upload-pack`` run for the repository the client asks for."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncssh


def keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """An ed25519 key pair written as OpenSSH files (private 0600)."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    private, public = directory / name, directory / f"{name}.pub"
    key.write_private_key(str(private))
    key.write_public_key(str(public))
    private.chmod(0o600)
    return private, public


@contextmanager
def serve(root: Path, authorized_key: Path, host_key: Path) -> Iterator[int]:
    """Serve the repositories under ``root`` on 127.0.0.1; yields the port."""
    loop = asyncio.new_event_loop()
    authorized = asyncssh.read_authorized_keys(str(authorized_key))

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key: Any) -> bool:
            return authorized.validate(key, username, "127.0.0.1") is not None

    async def handle(process: Any) -> None:
        words = shlex.split(process.command or "")
        if len(words) != 2 or words[0] not in ("git-upload-pack", "git-receive-pack"):
            process.stderr.write("only git-upload-pack is served\n")
            process.exit(1)
            return
        target = (root / words[1].lstrip("/")).resolve()
        proc = await asyncio.create_subprocess_exec(
            words[0], str(target), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        await process.redirect(stdin=proc.stdin, stdout=proc.stdout, stderr=proc.stderr)
        process.exit(await proc.wait())

    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        server = await asyncssh.create_server(
            Server, "127.0.0.1", 0, server_host_keys=[str(host_key)], process_factory=handle, encoding=None
        )
        holder["server"] = server
        holder["port"] = server.sockets[0].getsockname()[1]
        ready.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True
    )
    thread.start()
    ready.wait(10)
    try:
        yield int(holder["port"])
    finally:

        async def close() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
