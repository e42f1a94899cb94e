"""The PBX snippets in config/pbx/ agree with config/victoria.example.toml: the same extension and user, the
same codecs, keypad digits as telephone-events. A change on either side that the other does not follow fails."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from victoria_sip.config import load_settings

ROOT = Path(__file__).parents[2]
PBX = ROOT / "config" / "pbx"
ASTERISK_CODECS = {"ulaw": "PCMU", "alaw": "PCMA", "g722": "G722"}


@pytest.fixture(scope="module")
def example():
    settings = load_settings(ROOT / "config" / "victoria.example.toml",
                             environ={"VICTORIA_ACCOUNT_RECEPTION_PASSWORD": "change-me"})
    account = settings.sip.accounts[0]
    return {"user": account.user, "codecs": set(settings.sip.codecs), "routes": settings.routes}


def asterisk_sections(path: Path) -> list[tuple[str, dict[str, str]]]:
    """[name] blocks of key=value lines, in order; names may repeat (PJSIP objects share one name)."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if match := re.fullmatch(r"\[([^\]]+)\]", line):
            sections.append((match.group(1), {}))
        elif "=" in line and sections:
            key, value = (part.strip() for part in line.split("=", 1))
            sections[-1][1][key] = value
    return sections


def pjsip_object(sections, name: str, kind: str) -> dict[str, str]:
    [found] = [body for section, body in sections if section == name and body.get("type") == kind]
    return found


def test_asterisk_endpoint_auth_and_aor_are_victorias_extension(example):
    sections = asterisk_sections(PBX / "asterisk" / "pjsip.conf")
    user = example["user"]
    endpoint = pjsip_object(sections, user, "endpoint")
    assert pjsip_object(sections, user, "auth")["username"] == user
    assert pjsip_object(sections, user, "aor")["max_contacts"] == "1"
    assert endpoint["auth"] == endpoint["aors"] == user
    assert endpoint["disallow"] == "all"
    assert {ASTERISK_CODECS[c] for c in endpoint["allow"].split(",")} == example["codecs"]
    assert endpoint["dtmf_mode"] == "rfc4733"
    assert endpoint["allow_transfer"] == "yes", "Victoria's transfers are REFERs"


def test_asterisk_options_a_and_b_live_in_separate_files(example):
    """Loaded together, option B's identify (matched by IP first) takes Victoria's REGISTER: 404."""
    option_a = asterisk_sections(PBX / "asterisk" / "pjsip.conf")
    assert not [body for _, body in option_a if body.get("type") == "identify" or "contact" in body], \
        "option A must not carry the trunk's identify or static contact"
    trunk_sections = asterisk_sections(PBX / "asterisk" / "pjsip-trunk.conf")
    trunk = pjsip_object(trunk_sections, "victoria-trunk", "endpoint")
    assert {ASTERISK_CODECS[c] for c in trunk["allow"].split(",")} == example["codecs"]
    assert pjsip_object(option_a, trunk["transport"], "transport")["protocol"] == "udp", \
        "the trunk names the transport the snippets define"
    assert trunk["rtp_symmetric"] == "yes" and trunk["allow_transfer"] == "yes"
    identify = pjsip_object(trunk_sections, "victoria-trunk", "identify")
    assert identify["endpoint"] == "victoria-trunk"
    assert identify["match"] in pjsip_object(trunk_sections, "victoria-trunk", "aor")["contact"]


def dialplan_contexts(path: Path) -> dict[str, list[str]]:
    """[context] -> its active (uncommented) lines."""
    contexts: dict[str, list[str]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if match := re.fullmatch(r"\[([^\]]+)\]", line):
            current = contexts.setdefault(match.group(1), [])
        elif line and current is not None:
            current.append(line)
    return contexts


def test_asterisk_dialplan_sends_the_extension_and_an_ivr_option_to_victoria(example):
    path = PBX / "asterisk" / "extensions.conf"
    contexts = dialplan_contexts(path)
    user = example["user"]
    phones = "\n".join(contexts["from-internal"])
    assert re.search(rf"^exten => {user},1,", phones, re.M), "the extension is dialled by its number"
    assert f"Dial(PJSIP/{user}," in phones, "option A dials the registered endpoint"
    assert f"Dial(PJSIP/{user}@victoria-trunk," in path.read_text() and example["routes"].get(user), \
        "option B (commented, A or B) dials a number Victoria routes"
    assert any(re.fullmatch(rf"exten => \d,1,Goto\(from-internal,{user},1\)", line) for line in contexts["ivr-main"])


def test_asterisk_victorias_context_reaches_internal_extensions_only():
    """Transfer targets are looked up in the endpoint's context; a stolen password must not reach a trunk."""
    contexts = dialplan_contexts(PBX / "asterisk" / "extensions.conf")
    for snippet in ("pjsip.conf", "pjsip-trunk.conf"):
        endpoints = [body for _, body in asterisk_sections(PBX / "asterisk" / snippet) if body.get("type") == "endpoint"]
        assert [e["context"] for e in endpoints] == ["from-victoria"], snippet
    victoria = contexts["from-victoria"]
    assert not any(line.startswith("include") for line in victoria), "no include: it could reach the trunks"
    patterns = [asterisk_pattern(m.group(1)) for line in victoria if (m := re.match(r"exten => (_[^,]+),1,", line))]
    assert patterns
    for number, internal in (("100", True), ("200", True), ("9001234567", False), ("0044207946000", False)):
        assert any(p.fullmatch(number) for p in patterns) == internal, number


def asterisk_pattern(pattern: str) -> re.Pattern:
    """An extensions.conf pattern (_NXX, _[12]XX, _9.) as a regular expression."""
    letters = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}
    return re.compile("".join(letters.get(c, c) for c in re.findall(r"\[[^\]]*\]|.", pattern.removeprefix("_"))))


def freeswitch(path: str) -> ET.Element:
    return ET.parse(PBX / "freeswitch" / path).getroot()


def test_freeswitch_user_dialplan_and_gateway_match(example):
    user = example["user"]
    [directory_user] = freeswitch("directory/default/victoria.xml").iter("user")
    assert directory_user.get("id") == user
    assert any(p.get("name") == "password" for p in directory_user.iter("param"))
    [extension] = [e for e in freeswitch("dialplan/default/victoria.xml").iter("extension")
                   if e.get("name") == "victoria"]
    condition = extension.find("condition")
    assert re.fullmatch(condition.get("expression"), user) and condition.get("field") == "destination_number"
    actions = {a.get("application"): a.get("data") for a in condition.iter("action")}
    assert actions["bridge"] == f"user/{user}@${{domain_name}}"
    assert set(actions["set"].removeprefix("absolute_codec_string=").split(",")) == example["codecs"]
    [gateway] = freeswitch("sip_profiles/external/victoria.xml").iter("gateway")
    assert {p.get("name"): p.get("value") for p in gateway.iter("param")}["register"] == "false"
    gateway_dialplan = (PBX / "freeswitch" / "dialplan" / "default" / "victoria.xml").read_text()
    assert f"sofia/gateway/victoria/{user}" in gateway_dialplan and example["routes"].get(user)


DEMO_IVR_DIGITS = set("1234569")  # vanilla conf/vanilla/ivr_menus/demo_ivr.xml binds these (9: menu-top)


def test_freeswitch_ivr_is_a_menu_that_loads_and_can_be_dialled(example):
    """A bare <entry> under <menus> is ignored; FreeSWITCH runs every matching entry, so the digit is free."""
    root = freeswitch("ivr_menus/victoria.xml")
    [menu] = root.findall("menu")
    [entry] = menu.findall("entry")
    assert entry.get("param") == f"transfer {example['user']} XML default"
    assert entry.get("digits") not in DEMO_IVR_DIGITS, "the digit to copy into demo_ivr must be free there"
    dialled = [e for e in freeswitch("dialplan/default/victoria.xml").iter("extension")
               if any(a.get("application") == "ivr" for a in e.iter("action"))]
    assert [a.get("data") for e in dialled for a in e.iter("action") if a.get("application") == "ivr"] == \
        [menu.get("name")], "the sample menu is reachable from the dialplan"


def test_freeswitch_did_sets_the_domain_before_the_transfer(example):
    [did] = [e for e in freeswitch("dialplan/public/victoria.xml").iter("extension") if e.get("name") == "did-to-victoria"]
    actions = [(a.get("application"), a.get("data")) for a in did.iter("action")]
    assert actions == [("set", "domain_name=$${domain}"), ("transfer", f"{example['user']} XML default")]
