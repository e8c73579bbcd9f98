"""``templates sync``: the account's approved templates, read from Meta and compared with the mappings.

Reads ``GET {base}/{version}/{waba_id}/message_templates`` (WhatsApp Business Management
API; bearer WHATSAPP_ACCESS_TOKEN, every page of ``paging.next``), stores each template in
``meta_templates``, and says in plain words where a local mapping would fail at send time:
the template or its language is missing, it is not APPROVED, or the mapping fills a
different number of parameters than the template has (body, header, URL buttons).

Also run on a timer by the sender (TEMPLATE_SYNC_SECONDS), so a change made in WhatsApp
Manager shows up in ``wanotify status`` and the metrics without anyone running it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import func, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from wanotify.shared.config import Settings, WhatsAppSettings
from wanotify.shared.db.engine import transaction
from wanotify.shared.db.models import MetaTemplate
from wanotify.shared.errors import ConfigError, WanotifyError
from wanotify.shared.meta_state import APPROVED, Mapping, mappings
from wanotify.shared.template_shapes import compare_counts

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com"
PAGE_SIZE = 100
MAX_PAGES = 100  # 10,000 templates: more than any account has; a loop in paging.next stops here
MISSING = "MISSING"  # stored for a template the account no longer lists


class SyncError(WanotifyError):
    """The account's templates could not be read (unreachable API, refused request, odd answer)."""


@dataclass(frozen=True)
class Mismatch:
    template: str  # the local template's key
    meta_name: str
    language: str
    kind: str  # missing, missing_language, status, body_params, header_params, button_params
    detail: str  # one line, in plain words


@dataclass
class SyncReport:
    fetched: int
    mismatches: list[Mismatch] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"fetched": self.fetched, "ok": not self.mismatches, "mismatches": [asdict(m) for m in self.mismatches]}


def sync_templates(settings: Settings, sessions: sessionmaker[Session],
                   http: requests.Session | None = None) -> SyncReport:
    """Read the account's templates, store them, and compare the mappings with them."""
    templates = fetch_templates(settings.whatsapp, http)
    with transaction(sessions) as session:
        store_templates(session, templates)
        local = mappings(session)
    return SyncReport(len(templates), compare(local, templates))


def fetch_templates(whatsapp: WhatsAppSettings, http: requests.Session | None = None) -> list[dict[str, Any]]:
    """Every template of the account, following ``paging.next``; SyncError or ConfigError if it cannot."""
    url, token = _endpoint(whatsapp)
    client = http or requests.Session()
    templates: list[dict[str, Any]] = []
    next_url: str | None = url
    params: dict[str, Any] | None = {"limit": PAGE_SIZE}
    try:
        for _ in range(MAX_PAGES):
            if next_url is None:
                break
            page = _page(client, next_url, params, token, whatsapp.timeout_seconds)
            templates += [t for t in page.get("data", []) if _usable(t)]
            next_url, params = _next(page, url), None  # paging.next carries its own query
    finally:
        if http is None:
            client.close()
    return templates


def _endpoint(whatsapp: WhatsAppSettings) -> tuple[str, str]:
    if not whatsapp.waba_id:
        raise ConfigError("WHATSAPP_WABA_ID is not set: templates sync reads the approved templates of that "
                          "WhatsApp Business Account — set it to the account's id (WhatsApp Manager, account settings)")
    if not whatsapp.access_token:
        raise ConfigError("WHATSAPP_ACCESS_TOKEN is not set: templates sync needs a token with the "
                          "whatsapp_business_management permission")
    base = (whatsapp.base_url or DEFAULT_BASE_URL).rstrip("/")
    if urlsplit(base).scheme not in ("http", "https"):
        raise ConfigError(f"WHATSAPP_API_BASE_URL must be an http(s) URL, got {base!r}")
    return f"{base}/{whatsapp.api_version.strip('/')}/{whatsapp.waba_id}/message_templates", whatsapp.access_token


def _page(client: requests.Session, url: str, params: dict[str, Any] | None, token: str,
          timeout: float) -> dict[str, Any]:
    where = _origin(url)
    try:
        reply = client.get(url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except requests.RequestException as exc:
        raise SyncError(f"cannot reach the WhatsApp Business Management API at {where} ({_reason(exc)}) — "
                        "check WHATSAPP_API_BASE_URL and the network") from None
    try:
        body = reply.json()
    except ValueError:
        body = None
    if not 200 <= reply.status_code < 300:
        raise SyncError(f"the WhatsApp Business Management API at {where} refused to list the templates "
                        f"(HTTP {reply.status_code}{_graph_error(body)}) — check WHATSAPP_ACCESS_TOKEN "
                        "(not expired, with whatsapp_business_management) and WHATSAPP_WABA_ID")
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise SyncError(f"the WhatsApp Business Management API at {where} answered without a template list — "
                        "check WHATSAPP_API_BASE_URL and WHATSAPP_API_VERSION")
    return body


def _next(page: dict[str, Any], first: str) -> str | None:
    """The next page's URL, only on the API's own host (the bearer token goes with it)."""
    paging = page.get("paging")
    following = paging.get("next") if isinstance(paging, dict) else None
    if not isinstance(following, str) or _origin(following) != _origin(first):
        return None
    return following


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(exc: BaseException) -> str:
    text = str(exc.__context__ or exc) if isinstance(exc, requests.ConnectionError) else str(exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _graph_error(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    return f", code {error.get('code')}: {str(error.get('message') or '')[:200]}"


def _usable(template: Any) -> bool:
    return (isinstance(template, dict) and isinstance(template.get("name"), str)
            and isinstance(template.get("language"), str) and 0 < len(template["language"]) <= 15)


def store_templates(session: Session, templates: list[dict[str, Any]]) -> None:
    """Upsert what the account said of each template; a template no longer listed is marked MISSING."""
    for template in templates:
        row = _row(template)
        stmt = insert(MetaTemplate).values(row)
        changed = {k: stmt.excluded[k] for k in row if k not in ("name", "language")} | {"updated_at": func.now()}
        session.execute(stmt.on_conflict_do_update(index_elements=["name", "language"], set_=changed))
    gone = update(MetaTemplate)
    listed = [(t["name"], t["language"]) for t in templates]
    if listed:
        gone = gone.where(tuple_(MetaTemplate.name, MetaTemplate.language).not_in(listed))
    session.execute(gone.values(status=MISSING, reason="not in the account at the last templates sync",
                                status_at=func.now(), updated_at=func.now()))


def _row(template: dict[str, Any]) -> dict[str, Any]:
    quality = template.get("quality_score")
    score = quality.get("score") if isinstance(quality, dict) else None
    reason = template.get("rejected_reason")
    return {
        "name": template["name"][:512], "language": template["language"],
        "meta_id": str(template.get("id") or "")[:64] or None,
        "status": str(template.get("status") or "")[:20].upper() or None,
        "category": str(template.get("category") or "")[:20].upper() or None,
        "reason": reason if isinstance(reason, str) and reason.upper() != "NONE" else None,
        "components": template.get("components") if isinstance(template.get("components"), list) else None,
        "status_at": func.now(),
        **({"quality": str(score)[:20].upper(), "quality_at": func.now()} if score else {}),
    }


def compare(local: list[Mapping], templates: list[dict[str, Any]]) -> list[Mismatch]:
    """Every way a mapping disagrees with the account's templates, in plain words."""
    by_key = {(t["name"], t["language"]): t for t in templates}
    languages: dict[str, list[str]] = {}
    for name, language in by_key:
        languages.setdefault(name, []).append(language)
    mismatches: list[Mismatch] = []
    for mapping in local:
        found = by_key.get((mapping.name, mapping.language))
        if found is None:
            mismatches.append(_missing(mapping, sorted(languages.get(mapping.name, []))))
            continue
        status = str(found.get("status") or "").upper()
        if status != APPROVED:
            mismatches.append(_mismatch(mapping, "status", f"{_what(mapping)} is {status or 'of unknown status'}, "
                                                           "not APPROVED: Meta will not deliver it"))
        mismatches += [_mismatch(mapping, kind, f"{_what(mapping)} {detail}")
                       for kind, detail in compare_counts(found.get("components"), mapping.params)]
    return mismatches


def _missing(mapping: Mapping, languages: list[str]) -> Mismatch:
    if languages:
        return _mismatch(mapping, "missing_language", f"the account has {mapping.name} in {', '.join(languages)}, "
                                                      f"not in {mapping.language}")
    return _mismatch(mapping, "missing", f"the account has no template named {mapping.name}")


def _mismatch(mapping: Mapping, kind: str, detail: str) -> Mismatch:
    return Mismatch(mapping.key, mapping.name, mapping.language, kind, f"{mapping.key}: {detail}")


def _what(mapping: Mapping) -> str:
    return f"{mapping.name} ({mapping.language})"


def sync_wanted(settings: Settings) -> bool:
    """Whether the sender syncs on a timer: the Cloud API, an account id and a non-zero period."""
    return settings.whatsapp.provider == "meta" and bool(settings.whatsapp.waba_id) and settings.template_sync_seconds > 0


async def sync_forever(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Sync every TEMPLATE_SYNC_SECONDS; a failure is logged and tried again next time, never fatal."""
    while True:
        try:
            report = await asyncio.to_thread(sync_templates, settings, sessions)
            for mismatch in report.mismatches:
                log.warning("template sync: %s", mismatch.detail)
            log.info("template sync: %d template(s) in the account, %d mismatch(es)", report.fetched,
                     len(report.mismatches))
        except Exception as exc:  # noqa: BLE001 - the API or the database may be away: next time
            log.warning("template sync failed, trying again in %g s: %s", settings.template_sync_seconds, exc)
        await asyncio.sleep(settings.template_sync_seconds)
