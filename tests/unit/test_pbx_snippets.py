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
    trunk = pjsip_object(sections, "victoria-trunk", "endpoint")
    assert {ASTERISK_CODECS[c] for c in trunk["allow"].split(",")} == example["codecs"]
    assert pjsip_object(sections, "victoria-trunk", "identify")["endpoint"] == "victoria-trunk"


def test_asterisk_dialplan_sends_the_extension_and_an_ivr_option_to_victoria(example):
    text = (PBX / "asterisk" / "extensions.conf").read_text()
    user = example["user"]
    assert re.search(rf"^exten => {user},1,", text, re.M), "the extension is dialled by its number"
    assert f"Dial(PJSIP/{user}," in text, "option A dials the registered endpoint"
    assert f"Dial(PJSIP/{user}@victoria-trunk," in text and example["routes"].get(user), \
        "option B dials a number Victoria routes"
    assert re.search(rf"^exten => \d,1,Goto\(from-internal,{user},1\)", text, re.M), "an IVR option"


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
    [entry] = freeswitch("ivr_menus/victoria.xml").iter("entry")
    assert entry.get("param") == f"transfer {user} XML default"
    gateway_dialplan = (PBX / "freeswitch" / "dialplan" / "default" / "victoria.xml").read_text()
    assert f"sofia/gateway/victoria/{user}" in gateway_dialplan and example["routes"].get(user)
