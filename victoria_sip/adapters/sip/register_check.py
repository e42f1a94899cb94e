"""Would the registrar take these credentials? One REGISTER with digest auth over the account's transport (UDP,
TCP or TLS), then unregister.

For ``victoria-sip doctor``: stdlib only, no pjsua2 endpoint. It registers a
Contact of its own (its own socket), so a running Victoria's binding is left
alone, and removes it again at once (Expires: 0 for that Contact only). Over
TLS it checks the registrar's certificate as Victoria would; a refusal's reason
says which fault it is (unknown CA, another name, expired...).
"""

from __future__ import annotations

import hashlib
import re
import socket
import uuid
from dataclasses import dataclass

from victoria_sip.adapters.sip.sip_connection import RegistrarTarget, SipConnection
from victoria_sip.adapters.sip.tls_client import TlsRefused
from victoria_sip.settings import SipAccountSettings, registrar_host

REGISTRATION_HINTS = {
    401: "the registrar rejected the credentials: check user, auth_user and password",
    407: "the registrar rejected the credentials: check user, auth_user and password",
    403: "the registrar refuses this user: is the extension configured on the PBX?",
    404: "the registrar does not know this user or domain: check user and domain",
    408: "no answer from the registrar: is it running and reachable?",
    503: "the registrar is unreachable or unavailable: is it running?",
}


@dataclass(frozen=True)
class RegisterResult:
    code: int  # the final SIP status; 0: no answer
    reason: str


def check_registration(account: SipAccountSettings, timeout: float = 3.0) -> RegisterResult:
    target = RegistrarTarget.of(account)
    try:
        with SipConnection(target, timeout) as sip:
            dialog = _Dialog(account, sip.local, sip.via)
            code, reason = _register(sip, dialog, expires=60)
            if 200 <= code < 300:
                _register(sip, dialog, expires=0)  # take our binding away again
            return RegisterResult(code, reason)
    except socket.gaierror as exc:
        return RegisterResult(0, f"cannot resolve {target.host}: {exc.strerror}")
    except TimeoutError:
        return RegisterResult(0, f"no answer from {target} within {timeout:.0f} s")
    except TlsRefused as exc:
        return RegisterResult(0, f"{target}: {exc}")
    except OSError as exc:
        return RegisterResult(0, f"{target}: {exc.strerror or exc}")


def _register(sip: SipConnection, dialog: _Dialog, expires: int) -> tuple[int, str]:
    """REGISTER, answering one digest challenge (a nonce is good for one request on some registrars)."""
    code, reason, headers = _transact(sip, dialog.register(expires))
    if code in (401, 407):
        challenge = headers.get("www-authenticate" if code == 401 else "proxy-authenticate", "")
        code, reason, _ = _transact(sip, dialog.register(expires, challenge=(code, challenge)))
    return code, reason


class _Dialog:
    def __init__(self, account: SipAccountSettings, local: str, via: str) -> None:
        self.account = account
        self.local = local
        self.via = via  # UDP, TCP or TLS
        self.contact_transport = "" if via == "UDP" else f";transport={via.lower()}"
        self.call_id = f"{uuid.uuid4().hex}@victoria-doctor"
        self.tag = uuid.uuid4().hex[:10]
        self.cseq = 0

    def register(self, expires: int, challenge: tuple[int, str] | None = None) -> bytes:
        self.cseq += 1
        aor = self.account.aor
        uri = f"sip:{self.account.domain or registrar_host(self.account.registrar)}"
        lines = [
            f"REGISTER {uri} SIP/2.0",
            f"Via: SIP/2.0/{self.via} {self.local};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport",
            "Max-Forwards: 70",
            f"From: <{aor}>;tag={self.tag}",
            f"To: <{aor}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: <sip:{self.account.user}@{self.local}{self.contact_transport}>;expires={expires}",
            f"Expires: {expires}",
            "User-Agent: Victoria-SIP doctor",
        ]
        if challenge is not None:
            status, header = challenge
            name = "Authorization" if status == 401 else "Proxy-Authorization"
            lines.append(f"{name}: {digest_authorization(header, self.account, 'REGISTER', uri)}")
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def digest_authorization(challenge: str, account: SipAccountSettings, method: str, uri: str) -> str:
    """The Authorization value answering a Digest challenge (RFC 2617 / 3261, MD5, qop auth or none)."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    user = account.auth_user or account.user
    ha1 = _md5(f"{user}:{realm}:{account.password}")
    ha2 = _md5(f"{method}:{uri}")
    value = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", algorithm=MD5'
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = uuid.uuid4().hex[:16], "00000001"
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        value += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        response = _md5(f"{ha1}:{nonce}:{ha2}")
    if "opaque" in params:
        value += f', opaque="{params["opaque"]}"'
    return value + f', response="{response}"'


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _transact(sip: SipConnection, request: bytes) -> tuple[int, str, dict[str, str]]:
    """Send, then wait for the final response (skipping 1xx)."""
    sip.send(request)
    while True:
        data = sip.receive()
        head = data.split("\r\n\r\n", 1)[0].split("\r\n")
        match = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", head[0])
        if not match:
            continue
        code = int(match.group(1))
        if code >= 200:
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
            return code, match.group(2).strip(), headers
