"""The SIP adapter: pjsua2 endpoint, accounts, calls and the media bridge."""

from victoria_sip.adapters.sip.call_legs import SipCallLeg
from victoria_sip.adapters.sip.user_agent import SipUserAgent

__all__ = ["SipCallLeg", "SipUserAgent"]
