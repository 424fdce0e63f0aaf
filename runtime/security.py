"""Encryption and authentication of runtime sockets: ZeroMQ CURVE keys, ``lazyarr-keys``, loopback rule.

The model (see ``docs/security.md``):

* One **cluster server keypair**. Every listening socket (the scheduler's two ROUTERs, each
  worker's peer ROUTER) is a CURVE server using it; everyone who connects knows its public half,
  so a client also knows it is talking to the real cluster.
* One **keypair per participant** (a worker, a client, or a group of them), whose public half is
  listed in an ``authorized_keys`` directory. A ZAP handler (:class:`zmq.auth.thread.ThreadAuthenticator`,
  owned and stopped by the listening component) lets in only those keys; everyone else fails the
  handshake before a single message reaches the runtime, so nothing from them is ever decoded,
  let alone unpickled.
* Without security, components listen on loopback only. Listening on any other interface without
  a :class:`Security` raises :class:`~runtime.errors.InsecureListenError`, unless the caller says
  ``insecure=True`` (CLI ``--insecure``), which logs a loud warning.

``lazyarr-keys DIR`` writes a directory that :meth:`Security.from_directory` reads::

    DIR/server.key, DIR/server.key_secret        the cluster keypair
    DIR/worker.key, DIR/worker.key_secret        the workers' keypair
    DIR/client.key, DIR/client.key_secret        a clients' keypair
    DIR/authorized_keys/worker.key, client.key   public keys allowed in

Secret files are created with mode 0600, the directory with 0700.

>>> check_listen('127.0.0.1', None, False, 'scheduler')   # loopback: always fine
>>> check_listen('0.0.0.0', None, False, 'scheduler')  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
runtime.errors.InsecureListenError: scheduler refuses to listen on 0.0.0.0 without encryption: ...
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence

import zmq
import zmq.auth

from .errors import InsecureListenError, SecurityError

__all__ = ["Security", "Authenticator", "HANDSHAKE_FAILED", "check_listen", "check_dashboard_listen", "is_loopback",
           "log_handshake_failure", "write_keypair", "generate_keys", "keys_main"]

logger = logging.getLogger("runtime.security")

SERVER_NAME = "server"
AUTHORIZED_DIR = "authorized_keys"


def is_loopback(hostname: str) -> bool:
    """Does ``hostname`` name a loopback interface only (``127.x``, ``::1``, ``localhost``)?

    Names are resolved (locally, through the resolver); every address they resolve to must be a
    loopback one. ``0.0.0.0`` and ``*`` (every interface) are not loopback.

    >>> is_loopback('127.0.0.1'), is_loopback('localhost'), is_loopback('0.0.0.0'), is_loopback('*')
    (True, True, False, False)
    """
    host = hostname.strip("[]")
    if host in ("", "*"):
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # cannot tell: treat as exposed (binding will fail anyway)
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_listen(hostname: str, security: "Security | None", insecure: bool, who: str) -> None:
    """Refuse to listen on a non-loopback ``hostname`` without ``security`` unless ``insecure``.

    Called by the scheduler and workers before they bind anything. With ``insecure=True`` the
    bind goes ahead after a loud warning.
    """
    if security is not None or is_loopback(hostname):
        return
    if insecure:
        logger.warning(
            "INSECURE: %s listens on %s without encryption or authentication (insecure=True / "
            "--insecure). Anyone who can reach this address can run arbitrary code on the cluster and "
            "read its data. Use this only on a network you fully trust; see docs/security.md.", who, hostname)
        return
    raise InsecureListenError(
        f"{who} refuses to listen on {hostname} without encryption: it is not a loopback address, and "
        f"anyone who can reach it could run arbitrary code on this cluster and read its data. Generate "
        f"keys with `lazyarr-keys DIR` and pass security=Security.from_directory(DIR) (CLI: "
        f"--security-dir DIR), or, on a network you fully trust, pass insecure=True (CLI: --insecure). "
        f"See docs/security.md.")


def check_dashboard_listen(hostname: str, insecure: bool) -> None:
    """The web dashboard has no authentication of its own (CURVE secures only the ZeroMQ ports):
    serving it on a non-loopback ``hostname`` needs ``insecure`` (a warning), else it is refused."""
    if is_loopback(hostname):
        return
    if insecure:
        logger.warning("INSECURE: the dashboard is served on %s without authentication: anyone who can reach it "
                       "sees task names, workers and progress (insecure=True / --insecure)", hostname)
        return
    raise InsecureListenError(
        f"the scheduler refuses to serve its dashboard on {hostname}: the dashboard has no authentication, so "
        f"anyone who can reach it would see task names, workers and progress. Keep it on 127.0.0.1 and reach it "
        f"through an ssh tunnel (ssh -L 8787:127.0.0.1:8787 SCHEDULER-HOST), or pass insecure=True (CLI: "
        f"--insecure) on a network you fully trust. See docs/security.md.")


# ----------------------------------------------------------------------------------------------
# keys on disk


_BANNER = ("#   ****  Generated on {now} by lazyarr-keys  ****\n"
           "#   ZeroMQ CURVE {kind} Certificate\n{warning}\n")


def _write_key_file(path: str, public: bytes, secret: bytes | None) -> None:
    text = _BANNER.format(
        now=datetime.datetime.now().isoformat(timespec="seconds"),
        kind="**Secret**" if secret else "Public",
        warning="#   DO NOT GIVE THIS FILE TO ANYONE; keep it mode 0600.\n" if secret else
                "#   Give this file to whoever must trust or authorize this keypair.\n")
    text += 'metadata\ncurve\n    public-key = "%s"\n' % public.decode()
    if secret:
        text += '    secret-key = "%s"\n' % secret.decode()
    mode = 0o600 if secret else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # also when the file already existed with other permissions
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def write_keypair(directory: str, name: str) -> tuple[str, str]:
    """Write a new CURVE keypair as ``directory/name.key`` (public, 0644) and ``name.key_secret`` (0600)."""
    public, secret = zmq.curve_keypair()
    base = os.path.join(directory, name)
    _write_key_file(base + ".key", public, None)
    _write_key_file(base + ".key_secret", public, secret)
    return base + ".key", base + ".key_secret"


def generate_keys(directory: str, names: Sequence[str] = ("worker", "client"), *, overwrite: bool = False) -> list[str]:
    """Create (or complete) a key directory: the server keypair if missing, one keypair per name,
    each public key copied into ``authorized_keys/``. Returns the files written."""
    if not names:
        raise ValueError("give at least one key name")
    for name in names:
        if not name or os.sep in name or name.startswith(".") or name == SERVER_NAME:
            raise ValueError(f"bad key name {name!r}: a plain file name other than {SERVER_NAME!r}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    auth_dir = os.path.join(directory, AUTHORIZED_DIR)
    os.makedirs(auth_dir, mode=0o700, exist_ok=True)
    written = []
    if overwrite or not os.path.exists(os.path.join(directory, SERVER_NAME + ".key_secret")):
        written.extend(write_keypair(directory, SERVER_NAME))
    for name in names:
        if not overwrite and os.path.exists(os.path.join(directory, name + ".key_secret")):
            raise FileExistsError(f"{os.path.join(directory, name)}.key_secret exists already "
                                  f"(choose another name, or --overwrite)")
        public_file, secret_file = write_keypair(directory, name)
        public, _ = zmq.auth.load_certificate(public_file)
        _write_key_file(os.path.join(auth_dir, name + ".key"), public, None)
        written.extend([public_file, secret_file])
    return written


def _load(path: str, what: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise SecurityError(f"cannot read the {what} key file {path!r}: {e}") from None
    if need_secret and not secret:
        raise SecurityError(f"the {what} key file {path!r} holds no secret key (use the .key_secret file)")
    if secret:
        try:
            mode = os.stat(path).st_mode
            if mode & 0o077:
                logger.warning("secret key file %s is readable by other users (mode %o); chmod 600 it",
                               path, mode & 0o777)
        except OSError:
            pass
    return public, secret


class Security:
    """CURVE keys for one participant of a cluster.

    Parameters
    ----------
    server_key_file: the cluster keypair: the ``.key_secret`` file for a scheduler or a worker
        (they serve connections), the public ``.key`` file is enough for a client.
    client_key_file: this participant's own ``.key_secret`` (workers and clients; a scheduler
        needs none).
    authorized_keys: directory of public ``*.key`` files allowed to connect (scheduler and
        workers).

    Files are read at once, so a missing or wrong file is reported here, naming it.
    """

    def __init__(self, server_key_file: str | None = None, client_key_file: str | None = None,
                 authorized_keys: str | None = None):
        if server_key_file is None:
            raise SecurityError("Security needs server_key_file, the cluster keypair's file")
        self.server_key_file = os.fspath(server_key_file)
        self.client_key_file = None if client_key_file is None else os.fspath(client_key_file)
        self.authorized_keys = None if authorized_keys is None else os.fspath(authorized_keys)
        self.server_public, self.server_secret = _load(self.server_key_file, "server", need_secret=False)
        self.client_public = self.client_secret = None
        if self.client_key_file is not None:
            self.client_public, self.client_secret = _load(self.client_key_file, "client", need_secret=True)
        if self.authorized_keys is not None and not os.path.isdir(self.authorized_keys):
            raise SecurityError(f"authorized_keys must be a directory of public *.key files: "
                                f"{self.authorized_keys!r} is not one")

    @classmethod
    def from_directory(cls, directory: str, name: str = "client") -> "Security":
        """The keys that ``lazyarr-keys DIR`` wrote, for the participant ``name``.

        Uses ``server.key_secret`` if present (else ``server.key``), ``NAME.key_secret`` if
        present, and ``authorized_keys/`` if present, so the same call works on every machine
        with the files that machine was given.
        """
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise SecurityError(f"security directory {directory!r} does not exist (create it with "
                                f"`lazyarr-keys {directory}`)")
        server = os.path.join(directory, SERVER_NAME + ".key_secret")
        if not os.path.exists(server):
            server = os.path.join(directory, SERVER_NAME + ".key")
        client = os.path.join(directory, name + ".key_secret")
        auth = os.path.join(directory, AUTHORIZED_DIR)
        return cls(server, client if os.path.exists(client) else None, auth if os.path.isdir(auth) else None)

    def __repr__(self) -> str:
        return (f"Security(server_key_file={self.server_key_file!r}, client_key_file={self.client_key_file!r}, "
                f"authorized_keys={self.authorized_keys!r})")

    def cli_args(self) -> list[str]:
        """The command-line flags that give a child process these keys."""
        args = ["--server-key", self.server_key_file]
        if self.client_key_file:
            args += ["--client-key", self.client_key_file]
        if self.authorized_keys:
            args += ["--authorized-keys", self.authorized_keys]
        return args

    # -- sockets -----------------------------------------------------------------------------

    def configure_server(self, sock: zmq.Socket, who: str) -> None:
        """Make ``sock`` (before bind) a CURVE server with the cluster keypair."""
        if not self.server_secret:
            raise SecurityError(f"{who} listens for connections, so it needs the cluster's secret key "
                                f"(server.key_secret); {self.server_key_file!r} has only the public key")
        if self.authorized_keys is None:
            raise SecurityError(f"{who} needs authorized_keys (a directory of the public keys allowed in)")
        sock.curve_secretkey = self.server_secret
        sock.curve_publickey = self.server_public
        sock.curve_server = True

    def check_client(self, who: str) -> None:
        """Raise :class:`SecurityError` unless these keys include a keypair to connect with."""
        if not self.client_secret:
            raise SecurityError(f"{who} connects to the cluster, so it needs its own keypair "
                                f"(client_key_file=..., e.g. client.key_secret from lazyarr-keys)")

    def configure_client(self, sock: zmq.Socket, who: str) -> None:
        """Make ``sock`` (before connect) a CURVE client that trusts the cluster's public key."""
        self.check_client(who)
        sock.curve_serverkey = self.server_public
        sock.curve_publickey = self.client_public
        sock.curve_secretkey = self.client_secret

    def start_authenticator(self, ctx: zmq.Context, who: str) -> "Authenticator":
        """Start the ZAP handler of ``ctx`` allowing only the authorized keys; the caller stops it."""
        return Authenticator(ctx, self.authorized_keys, who)


#: Socket-monitor events of a failed handshake (a peer without keys, or with another cluster's key).
HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                    | zmq.EVENT_HANDSHAKE_FAILED_AUTH)

_handshake_log_lock = threading.Lock()
_handshake_log: dict = {}   # where -> [time of the last log line, refusals counted]


def log_handshake_failure(event: int, where: str) -> None:
    """Log a failed handshake seen by a socket monitor (at most once a second, with a count).

    Unauthorized keys are logged by the ZAP handler with the key; this covers peers that never
    get that far: no CURVE at all, or another cluster's public key.
    """
    if not event & HANDSHAKE_FAILED or event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return  # AUTH: already logged, with the key, by _KeyCheck
    with _handshake_log_lock:
        seen = _handshake_log.setdefault(where, [0.0, 0])
        seen[1] += 1
        now = time.monotonic()
        if now - seen[0] < 1.0:
            return
        seen[0] = now
        count = seen[1]
    why = ("it does not use CURVE (no keys)" if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
           else "the CURVE handshake failed (another cluster's public key?)")
    logger.warning("refused a connection on %s: %s (%d refused handshakes so far)", where, why, count)


class _KeyCheck:
    """ZAP credentials callback: is the key authorized? Refusals are logged (at most once a second)."""

    def __init__(self, directory: str, who: str):
        self.keys = set(zmq.auth.load_certificates(directory))
        if not self.keys:
            logger.warning("%s: no public keys in %s: nobody can connect", who, directory)
        self.who = who
        self.refused = 0
        self._last_log = 0.0
        self._lock = threading.Lock()

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        with self._lock:
            self.refused += 1
            now = time.monotonic()
            if now - self._last_log >= 1.0:
                self._last_log = now
                logger.warning("%s refused a connection: its CURVE public key %s is not authorized "
                               "(%d refusals so far)", self.who, key.decode(errors="replace"), self.refused)
        return False


class Authenticator:
    """A running ZAP handler for one ZeroMQ context; :meth:`stop` joins its thread."""

    def __init__(self, ctx: zmq.Context, directory: str, who: str):
        from zmq.auth.thread import ThreadAuthenticator

        self.check = _KeyCheck(directory, who)
        self._auth = ThreadAuthenticator(ctx, log=logging.getLogger("runtime.security.zap"))
        self._auth.start()
        self._auth.configure_curve_callback(domain="*", credentials_provider=self.check)

    @property
    def refused(self) -> int:
        """How many connection attempts were refused."""
        return self.check.refused

    def stop(self) -> None:
        """Stop the ZAP thread (before the context is terminated)."""
        if self._auth is not None:
            auth, self._auth = self._auth, None
            auth.stop()


# ----------------------------------------------------------------------------------------------
# lazyarr-keys


def keys_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lazyarr-keys``."""
    parser = argparse.ArgumentParser(
        prog="lazyarr-keys",
        description="Create CURVE keys for a secure lazyarr runtime cluster: the cluster (server) "
                    "keypair if DIR has none, one keypair per NAME, each authorized in DIR/authorized_keys.")
    parser.add_argument("directory", help="the key directory (created with mode 0700)")
    parser.add_argument("names", nargs="*", default=["worker", "client"],
                        help="keypairs to create (default: worker client)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing keypairs (the server's too)")
    return parser


def keys_main(argv: Sequence[str] | None = None) -> int:
    """``lazyarr-keys DIR [NAME ...]``: write keys and print which file goes where."""
    args = keys_parser().parse_args(argv)
    try:
        written = generate_keys(args.directory, args.names, overwrite=args.overwrite)
    except (OSError, ValueError) as e:
        print(f"lazyarr-keys: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(f"lazyarr-keys wrote: {path}")
    d = args.directory
    print(f"scheduler machine: {d}/server.key_secret and {d}/{AUTHORIZED_DIR}/  (--security-dir {d})\n"
          f"worker machines:   {d}/server.key_secret, {d}/worker.key_secret and {d}/{AUTHORIZED_DIR}/\n"
          f"client machines:   {d}/server.key and {d}/client.key_secret  "
          f"(Security.from_directory({d!r}, name='client'))")
    return 0


if __name__ == "__main__":
    sys.exit(keys_main())
