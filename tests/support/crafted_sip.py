"""PJSIP's own crafted-message tests (``tests/pjsua/scripts-sendto/`` of the pjproject source: RFC 4475's
torture INVITEs, odd SDP, bad headers) as test data, sent to a SIP server over UDP.

Each script defines ``sendto_cfg = sip.SendtoCfg(name, pjsua_args, sdp, resp_code, ..., complete_msg=...)``; it
is run against a stand-in ``inc_sip`` module that only keeps those arguments, and the INVITE is built as
PJSIP's tester builds it: a complete message with its $PLACEHOLDERS filled, or our request line and headers
around the script's SDP, extra headers and body.
"""

from __future__ import annotations

import random
import tarfile
import types
import uuid
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = "tests/pjsua/scripts-sendto/"

HEADERS = ("INVITE $TARGET_URI SIP/2.0\r\n"
           "Via: SIP/2.0/UDP $LOCAL_IP:$LOCAL_PORT;rport;branch=z9hG4bK$BRANCH\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:caller@pjsip.org>$FROM_TAG\r\n"
           "To: <$TARGET_URI>$TO_TAG\r\n"
           "Contact: <sip:$LOCAL_IP:$LOCAL_PORT;transport=udp>\r\n"
           "Call-ID: $CALL_ID@pjsip.org\r\n"
           "CSeq: $CSEQ INVITE\r\n"
           "Allow: PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, REFER\r\n"
           "Supported: replaces, 100rel, norefersub\r\n"
           "Content-Length: $CONTENT_LENGTH\r\n"
           "$SIP_HEADERS")


@dataclass(frozen=True)
class CraftedInvite:
    script: str
    name: str
    expected: int  # the response PJSIP's own test expects from pjsua
    template: str
    use_tcp: bool

    def render(self, target: tuple[str, int], local: tuple[str, int]) -> bytes:
        message = self.template
        for placeholder, value in (
            ("$TARGET_URI", f"sip:{target[0]}:{target[1]}"),
            ("$LOCAL_IP", local[0]), ("$LOCAL_PORT", str(local[1])),
            ("$FROM_TAG", f";tag={uuid.uuid4().hex[:10]}"), ("$TO_TAG", ""),
            ("$CALL_ID", uuid.uuid4().hex), ("$CSEQ", "1"), ("$BRANCH", str(random.random())),
        ):
            message = message.replace(placeholder, value)
        return message.encode()


def crafted_invites(source_tarball: Path) -> list[CraftedInvite]:
    """Every scripts-sendto test in a pjproject source archive, in file order."""
    invites = []
    with tarfile.open(source_tarball) as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            if SCRIPTS in member.name and member.name.endswith(".py") and member.isfile():
                text = archive.extractfile(member).read().decode("utf-8", "replace")
                invites.append(_invite(Path(member.name).name, text))
    return invites


def _invite(script: str, text: str) -> CraftedInvite:
    captured: dict = {}

    def sendto_cfg(name, pjsua_args, sdp, resp_code, resp_inc=(), resp_exc=(), use_tcp=False,
                   extra_headers="", body="", complete_msg="", enable_buffer=False):
        captured.update(name=name, sdp=sdp, code=resp_code, tcp=use_tcp, headers=extra_headers, body=body,
                        complete=complete_msg)

    fake_sip = types.SimpleNamespace(SendtoCfg=sendto_cfg)
    code = text.replace("import inc_sip as sip", "").replace("import inc_sdp as sdp", "")
    exec(compile(code, script, "exec"), {"sip": fake_sip, "__name__": script})  # noqa: S102 — pinned test data
    if captured["complete"]:
        template = captured["complete"]
    else:
        content = captured["sdp"] or captured["body"]
        template = HEADERS.replace("$SIP_HEADERS", captured["headers"])
        if captured["sdp"]:
            template = template.replace("$CONTENT_LENGTH", str(len(content)))
            template += "Content-Type: application/sdp\r\n\r\n" + content
        else:
            template = template.replace("$CONTENT_LENGTH", str(len(content))) + "\r\n" + content
    return CraftedInvite(script, captured["name"], captured["code"], template, captured["tcp"])
