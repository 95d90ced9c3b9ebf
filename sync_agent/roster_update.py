"""Roster updates over TUF: ``tuf.ngclient`` fetches and verifies, ``terminal.roster`` installs atomically.

The device trusts exactly one thing at the start: ``STATE/roster-tuf/root.json``, the kindergarten's root
metadata installed at enrolment (``kgate register tuf root``). From it the updater verifies, in order,
newer roots, the timestamp, the snapshot, the targets and finally the roster bytes by their hash; any
rollback, freeze past expiry, mix-and-match, wrong or revoked key, or bad hash raises
:class:`RosterRefused` and the installed roster is not touched. Every request is signed with the device
key (the register serves each kindergarten's roster only to its own gates) and has a timeout.
See docs/rosters.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from kgate.errors import UsageError
from kgate.urls import check_url
from ledger.httpsig import sign_request
from ledger.keys import load_key
from ledger.note import Ed25519Signer
from sync_agent.client import USER_AGENT
from sync_agent.config import SyncConfig
from sync_agent.errors import FatalError, SyncError, TransportError
from terminal.roster import RosterError, open_roster, parse_roster

log = logging.getLogger(__name__)
TARGET = "roster.json"
MAX_ROOT = 512 * 1024  # bytes; a root is a few keys
TUF_DIR = "roster-tuf"
ROOT_FILE = "root.json"


class RosterUpdateError(SyncError):
    """Base of roster update failures; the installed roster is unchanged."""


class RosterRefused(RosterUpdateError, FatalError):
    """The register's answer does not verify (rollback, freeze, mix-and-match, wrong key, bad hash)."""


class NotEnrolled(RosterUpdateError, FileNotFoundError):
    """No trusted root.json in the state directory: the gate was not enrolled for rosters."""


class RosterUnavailable(RosterUpdateError, TransportError):
    """The register could not be reached or did not answer in time: retry later."""


class SignedFetcher(FetcherInterface):
    """ngclient's network seam: GETs signed with the device key (RFC 9421), with timeouts and a pinned CA."""

    def __init__(
        self,
        signer: Ed25519Signer,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        ca: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer = signer
        self._timeout = timeout
        self._verify: bool | str = str(ca) if ca is not None else True
        self._clock = clock
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        headers = {"User-Agent": USER_AGENT}
        headers.update(sign_request("GET", url, headers, b"", self._signer, now=int(self._clock())))
        try:
            resp = self._session.get(
                url,
                headers=headers,
                stream=True,
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,
            )
        except requests.exceptions.Timeout as exc:
            raise tuf_errors.SlowRetrievalError(f"GET {url}: timed out") from exc
        except requests.exceptions.RequestException as exc:
            raise tuf_errors.DownloadError(f"GET {url}: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            resp.close()
            raise tuf_errors.DownloadHTTPError(f"GET {url}: HTTP {resp.status_code}", resp.status_code)
        return self._chunks(resp)

    @staticmethod
    def _chunks(resp: requests.Response) -> Iterator[bytes]:
        try:
            yield from resp.iter_content(64 * 1024)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise tuf_errors.SlowRetrievalError("roster download interrupted") from exc
        finally:
            resp.close()


@dataclass(frozen=True)
class RosterUpdate:
    """What one update did: the roster version now installed, whether it changed, until when it holds."""

    version: int
    installed: bool
    expires: dt.datetime


class NoRosterYet(RosterUnavailable):
    """The register has published no roster for this kindergarten yet: try again later."""


def check_root(raw: bytes) -> None:
    """Raise ValueError unless ``raw`` is TUF root metadata signed by its own threshold of root keys."""
    try:
        md = Metadata.from_bytes(raw)
        if not isinstance(md.signed, Root):
            raise ValueError(f"{md.signed.type} metadata, not root")
        md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
    except ValueError:
        raise
    except Exception as exc:  # tuf raises several types for bad metadata
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


def install_root(state: Path, root_json: bytes, *, tuf_dir: Path | None = None) -> Path:
    """Install the trusted root a gate is enrolled with; refuses to replace one (rotation is TUF's job).

    ``tuf_dir``: where the trusted metadata lives (default ``STATE/roster-tuf``).
    """
    Metadata.from_bytes(root_json)  # a parse check; trust comes from how the file got here
    tuf_dir = tuf_dir or state / TUF_DIR
    tuf_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = tuf_dir / ROOT_FILE
    if path.exists():
        raise RosterUpdateError(f"{path} exists: a gate's trusted root changes only through TUF rotation")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(root_json)
    tmp.replace(path)
    return path


def _bootstrap_root(fetcher: SignedFetcher, base: str, state: Path, tuf_dir: Path, kindergarten: str) -> None:
    """Trust on first use of the newest root, fetched with a device-signed GET (docs/rosters.md).

    Used only when enrolment could not hand the root over because nothing was published yet; the same
    channel (TLS with the pinned CA, the enrolled device key) that the enrolment answer came through.
    """
    try:
        raw = fetcher.download_bytes(f"{base}/metadata/{ROOT_FILE}", MAX_ROOT)
    except tuf_errors.DownloadHTTPError as exc:
        if exc.status_code == 404:
            raise NoRosterYet(f"no roster published yet for {kindergarten!r}") from None
        raise RosterUnavailable(f"roster root: {exc}") from None
    except tuf_errors.DownloadError as exc:
        raise RosterUnavailable(f"roster root: register unreachable: {exc}") from None
    try:
        check_root(raw)
    except ValueError as exc:
        raise RosterRefused(f"the register's roster root for {kindergarten!r} is invalid: {exc}") from None
    install_root(state, raw, tuf_dir=tuf_dir)
    log.info("roster: trusted root for %r installed (first use)", kindergarten)


def _verified_expiry(metadata_dir: Path) -> dt.datetime:
    """The earliest expiry among the metadata the updater just verified and stored."""
    expiries = []
    for role in ("timestamp", "snapshot", "targets"):
        md = Metadata.from_bytes((metadata_dir / f"{role}.json").read_bytes())
        expiries.append(md.signed.expires)
    return min(expiries)


def update_from_config(cfg: SyncConfig) -> RosterUpdate:
    """One roster update as ``kgate sync run`` makes it, every ``roster_interval``, from its configuration."""
    if cfg.roster_db is None or cfg.kindergarten is None:
        raise UsageError("roster_db and kindergarten: both needed for roster updates")
    return update_roster(
        cfg.state,
        cfg.register,
        cfg.kindergarten,
        load_key(cfg.key),
        cfg.roster_db,
        timeout=(cfg.connect_timeout, cfg.read_timeout),
        ca=cfg.ca,
        face_key=Path(cfg.key).with_name("face.key"),  # beside the device key, as the terminal keeps it
        tuf_dir=cfg.roster_tuf,
    )


def update_roster(
    state: Path,
    register_url: str,
    kindergarten: str,
    signer: Ed25519Signer,
    roster_db: Path,
    *,
    timeout: tuple[float, float] = (5.0, 30.0),
    ca: Path | None = None,
    clock: Callable[[], float] = time.time,
    face_key: Path | None = None,
    tuf_dir: Path | None = None,
) -> RosterUpdate:
    """Fetch and verify ``kindergarten``'s newest roster, then install it into ``roster_db``.

    The install runs face template retention (:meth:`terminal.roster.Roster.install`; ``face_key``:
    the template key, default ``face.key`` beside the roster database).

    Raises :class:`RosterRefused` when anything fails verification (nothing installed),
    :class:`RosterUnavailable` when the register cannot be reached (:class:`NoRosterYet`: nothing
    published yet). Without a trusted root (the gate was enrolled before the first roster was
    published), the first update fetches it over the device-signed channel: see :func:`_bootstrap_root`.
    ``tuf_dir``: the trusted metadata directory (default ``STATE/roster-tuf``).
    """
    base = f"{check_url(register_url, 'register URL')}/v1/rosters/{kindergarten}"
    metadata_dir = tuf_dir or state / TUF_DIR
    fetcher = SignedFetcher(signer, timeout=timeout, ca=ca, clock=clock)
    try:
        if not (metadata_dir / ROOT_FILE).is_file():
            _bootstrap_root(fetcher, base, state, metadata_dir, kindergarten)
        cache = metadata_dir / "targets"
        cache.mkdir(exist_ok=True)
        updater = Updater(
            str(metadata_dir),
            f"{base}/metadata/",
            str(cache),
            f"{base}/targets/",
            fetcher=fetcher,
            config=UpdaterConfig(app_user_agent=USER_AGENT),
            bootstrap=None,
        )
        updater.refresh()
        info = updater.get_targetinfo(TARGET)
        if info is None:
            raise RosterRefused(f"the register's roster metadata for {kindergarten!r} lists no {TARGET}")
        path = updater.find_cached_target(info) or updater.download_target(info)
        raw = Path(path).read_bytes()
    except tuf_errors.DownloadHTTPError as exc:
        raise RosterUnavailable(f"roster update: {exc}") from None
    except tuf_errors.DownloadError as exc:
        raise RosterUnavailable(f"roster update: register unreachable: {exc}") from None
    except tuf_errors.RepositoryError as exc:
        raise RosterRefused(f"roster update refused: {type(exc).__name__}: {exc}") from None
    finally:
        fetcher.close()
    try:
        data = parse_roster(raw)
        signed_version = info.unrecognized_fields.get("roster_version")
        if type(signed_version) is not int or signed_version != data.version:  # bool is not a version
            raise RosterError(
                f"the signed targets name roster version {signed_version!r:.40}, the document {data.version}"
            )
        expires = _verified_expiry(metadata_dir)
        with open_roster(roster_db) as roster:
            installed = roster.install(data, expires, face_key=face_key)
            if roster.faces_removed:
                log.info("roster: face templates of %d child(ren) deleted", roster.faces_removed)
    except RosterError as exc:
        shutil.rmtree(cache, ignore_errors=True)  # do not keep a verified-but-refused target around
        raise RosterRefused(f"roster update refused: {exc}") from None
    if installed:
        log.info("roster: installed version %d (valid until %s)", data.version, expires.isoformat())
    return RosterUpdate(data.version, installed, expires)
