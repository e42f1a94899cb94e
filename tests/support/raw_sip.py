"""Hand-written SIP over a plain UDP socket, for requests no well-behaved user agent sends:
other source addresses, broken headers, lying Content-Length, SDP without audio, garbage.

    status = send_request(invite("127.0.0.1", 5080, user="7000"), ("127.0.0.1", 5080), source="127.0.0.2")
"""

from __future__ import annotations

import socket
import uuid

SDP_PCMU = ("v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            "m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def invite(host: str, port: int, *, user: str = "victoria", source: str = "127.0.0.1", source_port: int = 0,
           sdp: str | None = None, extra_headers: str = "", content_length: int | None = None,
           rtp_port: int = 49170) -> bytes:
    """An INVITE from ``source`` (the Via/Contact say so); ``content_length`` may lie on purpose."""
    body = (SDP_PCMU if sdp is None else sdp).format(host=source, rtp_port=rtp_port)
    length = len(body.encode()) if content_length is None else content_length
    call_id = uuid.uuid4().hex
    return (
        f"INVITE sip:{user}@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:{source_port or 5099};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:tester@{source}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{user}@{host}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 INVITE\r\n"
        f"Contact: <sip:tester@{source}:{source_port or 5099}>\r\n"
        f"Content-Type: application/sdp\r\n"
        f"{extra_headers}"
        f"Content-Length: {length}\r\n\r\n{body}"
    ).encode()


def send_request(request: bytes, target: tuple[str, int], *, source: str = "127.0.0.1", timeout: float = 3.0,
                 final_only: bool = True) -> int | None:
    """Send one datagram and return the first final status code (or the first at all), None if none came."""
    response = exchange(request, target, source=source, timeout=timeout, final_only=final_only)
    return None if response is None else int(response.split(b" ", 2)[1])


def exchange(request: bytes, target: tuple[str, int], *, source: str = "127.0.0.1", timeout: float = 3.0,
             final_only: bool = True, source_port: int = 0) -> bytes | None:
    """Send one datagram; the first final response (a 2xx is ACKed and hung up at once), None if none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((source, source_port))
        sock.settimeout(timeout)
        sock.sendto(request, target)
        while True:
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                return None
            code = int(data.split(b" ", 2)[1]) if data.startswith(b"SIP/2.0 ") else 0
            if not final_only or code >= 200:
                if 200 <= code < 300:
                    _ack_and_bye(sock, data, target)
                return data


def _ack_and_bye(sock: socket.socket, response: bytes, target: tuple[str, int]) -> None:
    """A 200 to a raw INVITE must not leave a call up: ACK it and hang up at once."""
    headers = dict(_headers(response))
    host, port = target
    number = int(headers.get("cseq", "1").split()[0])  # the ACK repeats the INVITE's CSeq number
    for method, cseq in (("ACK", f"{number} ACK"), ("BYE", f"{number + 1} BYE")):
        sock.sendto((f"{method} sip:victoria@{host}:{port} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {sock.getsockname()[0]}:{sock.getsockname()[1]};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
                     f"Max-Forwards: 70\r\nFrom: {headers['from']}\r\nTo: {headers['to']}\r\n"
                     f"Call-ID: {headers['call-id']}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode(), target)


def _headers(message: bytes):
    for line in message.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            yield name.strip().lower(), value.strip()
