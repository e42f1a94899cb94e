"""Which source addresses may send Victoria an INVITE."""

from dataclasses import replace

from victoria_sip.adapters.sip.allow_list import InviteAllowList
from victoria_sip.settings import SipAccountSettings, SipSettings, invite_sources


def account(registrar: str) -> SipAccountSettings:
    return SipAccountSettings(name="desk", registrar=registrar, user="7000", password="secret", agent="front")


def test_by_default_loopback_and_the_registrars_may_call():
    allowed = InviteAllowList.from_entries(invite_sources(SipSettings(accounts=(account("sip:192.0.2.10:5060"),))))
    assert allowed.allows("127.0.0.1:5060") and allowed.allows("127.0.0.2:40000") and allowed.allows("[::1]:5060")
    assert allowed.allows("192.0.2.10:5060")
    assert not allowed.allows("192.0.2.11:5060") and not allowed.allows("[2001:db8::1]:5060")


def test_networks_addresses_and_host_names():
    allowed = InviteAllowList.from_entries(["10.1.0.0/16", "192.0.2.7", "localhost"])
    assert allowed.allows("10.1.200.3:5060") and not allowed.allows("10.2.0.1:5060")
    assert allowed.allows("192.0.2.7:5080") and not allowed.allows("192.0.2.8:5080")
    assert allowed.allows("127.0.0.1:5060"), "localhost resolved when the list was built"
    assert allowed.allows("[::ffff:10.1.0.9]:5060"), "an IPv4-mapped source counts as its IPv4 address"


def test_an_unparseable_source_is_refused():
    allowed = InviteAllowList.from_entries(["0.0.0.0/0"])
    assert allowed.allows("203.0.113.9:5060")
    assert not allowed.allows("garbage") and not allowed.allows("")


def test_a_name_that_does_not_resolve_allows_nothing():
    assert InviteAllowList.from_entries(["no-such-host.invalid"]).networks == ()


def test_a_configured_list_replaces_the_default():
    sip = SipSettings(accounts=(account("192.0.2.10"),), allow_invites_from=("10.1.0.0/16",))
    assert invite_sources(sip) == ("10.1.0.0/16",)
    assert invite_sources(replace(sip, allow_invites_from=())) == ("127.0.0.0/8", "::1/128", "192.0.2.10")
