"""Who is calling the status API, from what API Gateway's authorizer put in the request; and
what they may see.

Defence in depth behind the authorizer: the request must carry the identity the stage's mode
produces (a route deployed without its authorizer answers 403, not data), a jwt caller must
hold the stage's scope (API Gateway checks it too), and with an owner claim a jwt caller sees
only the keys under ``users/<claim value>/``. An unknown mode refuses everything."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from .codec import Received


class AuthSettings(Protocol):
    """What a function behind the API knows of its stage's auth (Status-, UploadSettings)."""

    @property
    def api_auth(self) -> str: ...
    @property
    def jwt_scope(self) -> str: ...
    @property
    def jwt_owner_claim(self) -> str: ...


OWNER_PREFIX = "users/{}/"
# An owner is a key segment: no "/", no controls, nothing that could widen a prefix.
_OWNER = re.compile(r"[A-Za-z0-9._@:+=-]{1,128}")


@dataclass(frozen=True, slots=True)
class Caller:
    within: str = ""  # the caller sees keys under this prefix only ("" : every key)


def _authorizer(event: Received) -> Received | None:
    context = event.get("requestContext")
    found = context.get("authorizer") if isinstance(context, dict) else None
    return found if isinstance(found, dict) else None


def scopes_of(jwt: Received) -> set[str]:
    """The token's scopes: what API Gateway passes on (``scopes``) and the ``scope`` claim
    (space-separated, as OAuth 2.0 and Cognito access tokens carry it) or ``scp`` (a list)."""
    found: set[str] = set()
    listed = jwt.get("scopes")
    if isinstance(listed, list):
        found |= {s for s in listed if isinstance(s, str)}
    claims = jwt.get("claims")
    if isinstance(claims, dict):
        if isinstance(claims.get("scope"), str):
            found |= set(claims["scope"].split())
        if isinstance(claims.get("scp"), list):
            found |= {s for s in claims["scp"] if isinstance(s, str)}
    return found


def caller(event: Received, cfg: AuthSettings) -> Caller | None:
    """The caller, or None when the request is refused (403)."""
    if cfg.api_auth == "none":
        return Caller()
    authorizer = _authorizer(event)
    if authorizer is None:
        return None
    if cfg.api_auth == "iam":
        iam = authorizer.get("iam")
        ok = isinstance(iam, dict) and bool(iam.get("accessKey") or iam.get("userArn"))
        return Caller() if ok else None
    if cfg.api_auth == "jwt":
        return _jwt_caller(authorizer.get("jwt"), cfg)
    return None


def _jwt_caller(jwt: object, cfg: AuthSettings) -> Caller | None:
    if not isinstance(jwt, dict) or not isinstance(jwt.get("claims"), dict):
        return None
    if cfg.jwt_scope and cfg.jwt_scope not in scopes_of(jwt):
        return None
    if not cfg.jwt_owner_claim:
        return Caller()
    owner = jwt["claims"].get(cfg.jwt_owner_claim)
    if not isinstance(owner, str) or not _OWNER.fullmatch(owner):
        return None
    return Caller(OWNER_PREFIX.format(owner))
