"""The console's pages in a real browser: Debian's Chromium, headless, driven by selenium, against
`victoria-sip serve` on loopback with calls in its SQLite database. Screenshots go to the test's directory."""

import shutil
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from tests.support.ollama_double import OllamaDouble
from tests.support.processes import LOOPBACK, Victoria, add_console_user, run_caller
from tests.support.wav import write_wav
from victoria_sip.adapters.repository import SqlCallRepository, open_database
from victoria_sip.domain import Call, CallId, EndReason, PhoneNumber, Role, TurnLatency

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "admin password two"
VIEWER_PASSWORD = "viewer password one"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def chromium(tmp_path, *extra_flags: str):
    assert shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER), "setup.sh --tests installs chromium, chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1200,900", *extra_flags):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path)
    try:
        yield driver
    finally:
        driver.quit()


def stored_calls(url: str) -> tuple[Call, Call]:
    repository = SqlCallRepository(open_database(url))
    ended = Call(id=CallId.new(), agent="front", caller=PhoneNumber("+4930123"), callee="7000",
                 created_at=datetime.now(timezone.utc) - timedelta(minutes=5))
    ended.start(at=ended.created_at)
    repository.save_call(ended)
    latency = TurnLatency(endpoint_ms=300, stt_final_ms=240, llm_request_ms=250, llm_first_token_ms=380,
                          first_chunk_ms=520, tts_first_audio_ms=640, first_frame_out_ms=660)
    for role, text, figures in [(Role.ASSISTANT, "Hello, front desk.", None),
                                (Role.CALLER, "<script>alert(1)</script> my pin is", None),
                                (Role.CALLER, "[keypad] 4711", None),
                                (Role.ASSISTANT, "Thank you, one moment.", latency)]:
        repository.add_turn(ended.id, ended.conversation.add_turn(role, text, latency=figures))
    ended.end(EndReason.CALLER_HANGUP, at=ended.created_at + timedelta(seconds=42))
    repository.save_call(ended)
    other = Call(id=CallId.new(), agent="sales", caller=PhoneNumber("+4930999"), callee="7001")
    other.reject(EndReason.BUSY)
    repository.save_call(other)
    repository.close()
    return ended, other


def log_in(driver, base: str, name: str, password: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/calls")
    WebDriverWait(driver, 10).until(lambda d: "/login" in d.current_url)
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    WebDriverWait(driver, 10).until(lambda d: "/login" not in d.current_url)
    assert driver.current_url == f"{base}/calls"


def test_log_in_read_the_history_and_a_call_s_waterfall_then_erase_it(tmp_path, browser):
    server = Victoria(tmp_path / "v", '[stt]\nprovider = "none"\n')
    ended, other = stored_calls(server.db_url)
    add_console_user(server.db_url, "boss", ADMIN_PASSWORD, "admin")
    add_console_user(server.db_url, "ops", VIEWER_PASSWORD, "viewer")
    server.start()
    base = f"http://{LOOPBACK}:{server.web_port}"
    try:
        server.wait_ready(timeout=90)
        browser.get(f"{base}/calls/{ended.id.value}")
        assert "/login?next=" in browser.current_url  # not logged in: the form, not the call
        browser.find_element(By.NAME, "username").send_keys("ops")
        browser.find_element(By.NAME, "password").send_keys("wrong password!")
        browser.find_element(By.CSS_SELECTOR, "#login button").click()
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "login-error").text)
        browser.save_screenshot(str(tmp_path / "login-refused.png"))

        log_in(browser, base, "ops", VIEWER_PASSWORD)
        rows = browser.find_elements(By.CSS_SELECTOR, "table.calls tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == ["sales", "front"]
        browser.save_screenshot(str(tmp_path / "history.png"))
        rows[1].find_element(By.TAG_NAME, "a").click()
        WebDriverWait(browser, 10).until(lambda d: ended.id.value in d.current_url)
        turns = [t.text for t in browser.find_elements(By.CSS_SELECTOR, ".turn p")]
        assert turns[1] == "<script>alert(1)</script> my pin is"  # shown as text, never run
        assert turns[2] == "[keypad] ••••"  # a viewer does not see keypad digits
        assert not browser.find_elements(By.ID, "erase")
        bars = browser.find_elements(By.CSS_SELECTOR, "svg.waterfall rect.step")
        assert len(bars) == 7
        labels = browser.find_element(By.CSS_SELECTOR, "svg.waterfall").text
        assert "first audio out" in labels and "660 ms" in labels
        browser.save_screenshot(str(tmp_path / "call-viewer.png"))

        log_in(browser, base, "boss", ADMIN_PASSWORD)
        browser.get(f"{base}/calls/{ended.id.value}")
        assert browser.find_elements(By.CSS_SELECTOR, ".turn p")[2].text == "[keypad] 4711"
        browser.save_screenshot(str(tmp_path / "call-admin.png"))
        browser.find_element(By.ID, "erase").click()
        WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert).accept()
        WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith("/calls"))
        rows = browser.find_elements(By.CSS_SELECTOR, "table.calls tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == ["sales"]

        browser.get(f"{base}/users")
        form = browser.find_element(By.ID, "add-user")
        form.find_element(By.NAME, "username").send_keys("nina")
        form.find_element(By.NAME, "password").send_keys("nina's long password")
        form.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, 10).until(lambda d: "nina" in d.find_element(By.CSS_SELECTOR, "table.users").text)
        browser.save_screenshot(str(tmp_path / "users.png"))
        browser.find_element(By.ID, "logout").click()
        WebDriverWait(browser, 10).until(lambda d: "/login" in d.current_url)
        browser.get(f"{base}/calls")
        assert "/login" in browser.current_url  # the session ended with the logout
    finally:
        assert server.stop() == 0
    log = server.log()
    assert f"ops opened call {ended.id.value}" in log and f"boss erased 1 call(s) and 4 turn(s)" in log
    assert [c["id"] for c in server.calls()] == [other.id.value]


LIVE_CONFIG = """
[stt]
provider = "pocketsphinx"

[llm]
host = "{llm}"

[[agents]]
name = "front"
first_message = "Hello, front desk."
system_prompt = "You are the front desk of a hotel. <Answer briefly.>"

[agents.destinations]
reception = "sip:reception@127.0.0.1"
"""


def live_cards(driver) -> list[dict]:
    """The Live page's cards as shown, read in one script (each event replaces its card: no stale elements)."""
    return driver.execute_script("""
        return [...document.querySelectorAll("article.call")].map((card) => ({
            status: card.querySelector(".status").textContent,
            turns: [...card.querySelectorAll(".turn p")].map((p) => p.textContent)}));""")


def test_live_page_shows_a_sip_call_as_its_transcript_grows_then_agents_and_system(tmp_path, browser, speech_wav):
    with OllamaDouble(reply="Your room is ready.") as ollama:
        server = Victoria(tmp_path / "v", LIVE_CONFIG.format(llm=ollama.host))
        add_console_user(server.db_url, "ops", VIEWER_PASSWORD, "viewer")
        server.start()
        base = f"http://{LOOPBACK}:{server.web_port}"
        try:
            server.wait_ready(timeout=90)
            log_in(browser, base, "ops", VIEWER_PASSWORD)
            browser.get(f"{base}/live")
            WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "live-state").text == "live")
            assert browser.find_element(By.ID, "no-calls").is_displayed()

            caller = threading.Thread(target=run_caller, args=(f"sip:7000@{LOOPBACK}:{server.sip_port}",),
                                      kwargs={"play": speech_wav, "hangup_after": 16}, daemon=True)
            caller.start()
            greeted = WebDriverWait(browser, 20).until(lambda d: [c for c in live_cards(d) if c["turns"]])
            assert greeted[0]["status"] == "active" and greeted[0]["turns"][0] == "Hello, front desk."
            browser.save_screenshot(str(tmp_path / "live-greeting.png"))
            # the caller's sentence ends about 10 s after the answer; the reply follows
            WebDriverWait(browser, 30).until(lambda d: any(len(c["turns"]) >= 3 for c in live_cards(d)))
            [card] = live_cards(browser)
            assert card["status"] == "active" and card["turns"][2] == "Your room is ready.", card
            browser.save_screenshot(str(tmp_path / "live-growing.png"))
            WebDriverWait(browser, 20).until(lambda d: any(c["status"].startswith("ended") for c in live_cards(d)))
            caller.join(20)

            browser.get(f"{base}/agents")
            agent = browser.find_element(By.ID, "agent-front").text
            assert "any other direct call" in agent and "reception → sip:reception@127.0.0.1" in agent
            assert browser.find_element(By.CSS_SELECTOR, "pre.prompt").text.endswith("<Answer briefly.>")
            browser.save_screenshot(str(tmp_path / "agents.png"))
            browser.get(f"{base}/system")
            system = browser.find_element(By.TAG_NAME, "main").text
            assert "✔ writable" in system and "pocketsphinx" in system and "PJSIP 2." in system
            browser.save_screenshot(str(tmp_path / "system.png"))

            said = card["turns"][1].split()[0]  # the caller's first word, as recognised
            browser.get(f"{base}/calls")
            browser.find_element(By.NAME, "text").send_keys(said)
            browser.find_element(By.CSS_SELECTOR, ".filters button").click()
            WebDriverWait(browser, 10).until(lambda d: "text=" in d.current_url)
            assert len(browser.find_elements(By.CSS_SELECTOR, "table.calls tbody tr a")) == 1
            browser.save_screenshot(str(tmp_path / "history-search.png"))
        finally:
            assert server.stop() == 0


def test_an_admin_calls_an_agent_from_the_browser_with_a_microphone_and_hears_the_reply(tmp_path, piper_voice):
    question = piper_voice("Hello, I would like to book a table for two people tomorrow evening.")
    silence = np.zeros(16000 * 3, np.int16)
    microphone = write_wav(tmp_path / "question.wav", np.concatenate([silence, question, silence, silence]), 16000)
    reply = "We have a table for two people at seven tomorrow evening."
    driver = chromium(tmp_path, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-audio-capture={microphone}%noloop",
                      "--autoplay-policy=no-user-gesture-required")
    with OllamaDouble(reply=reply) as ollama:
        server = Victoria(tmp_path / "v", LIVE_CONFIG.format(llm=ollama.host))
        add_console_user(server.db_url, "boss", ADMIN_PASSWORD, "admin")
        server.start()
        base = f"http://{LOOPBACK}:{server.web_port}"
        try:
            server.wait_ready(timeout=90)
            log_in(driver, base, "boss", ADMIN_PASSWORD)
            driver.get(f"{base}/agents")
            driver.find_element(By.CSS_SELECTOR, 'button.call-agent[data-agent="front"]').click()
            WebDriverWait(driver, 15).until(lambda d: d.find_element(By.ID, "test-state").text.startswith("connected"))
            driver.save_screenshot(str(tmp_path / "test-call-connected.png"))
            # the greeting (about 1 s), then the question recognised and the reply played (about 3 s)
            WebDriverWait(driver, 40).until(lambda d: float(d.find_element(By.ID, "heard-seconds").text) > 3.0)
            driver.save_screenshot(str(tmp_path / "test-call-reply.png"))
            driver.find_element(By.CSS_SELECTOR, '#test-call button.key[data-key="7"]').click()
            driver.find_element(By.CSS_SELECTOR, '#test-call button.key[data-key="#"]').click()
            time.sleep(1.0)
            driver.find_element(By.ID, "hang-up").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "test-state").text.startswith("Call ended"))
            server.wait_for_log(r"ended, caller-hangup", timeout=10)
        finally:
            driver.quit()
            assert server.stop() == 0
    [call] = server.calls()
    assert call["channel"] == "web" and call["caller"] == "boss" and call["agent"] == "front", call
    turns = server.call_detail(call["id"])["turns"]
    said = [(t["role"], t["text"]) for t in turns]
    assert said[0] == ("assistant", "Hello, front desk."), said
    heard = set(said[1][1].split())
    assert said[1][0] == "caller" and len(heard & {"book", "table", "two", "people", "tomorrow", "evening"}) >= 3
    assert ("assistant", reply) in said
    assert ("caller", "[keypad] 7") in said, "the on-screen keypad reached the conversation"
