"""The SIP adapter: pjsua2 endpoint, accounts, calls and the media bridge."""

from victoria_sip.adapters.sip.user_agent import SipCallLeg, SipUserAgent

__all__ = ["SipCallLeg", "SipUserAgent"]
