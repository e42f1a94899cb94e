"""Victoria SIP: a self-hosted telephone voice agent that answers calls on an on-prem PBX."""

__version__ = "0.1.0"
