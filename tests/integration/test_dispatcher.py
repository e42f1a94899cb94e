"""More than three calls at once: Victoria instances behind Kamailio's dispatcher (config/kamailio/dispatcher.cfg)."""

import re
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.processes import LOOPBACK, Kamailio, Victoria, run_caller, start_dispatcher, wait_until
from tests.support.raw_sip import invite, send_request

pytestmark = pytest.mark.integration

CONFIG = '[stt]\nprovider = "none"\n'


@pytest.fixture
def instances(tmp_path):
    """Two Victoria instances sharing one SQLite database, as a larger site would share PostgreSQL."""
    db_url = f"sqlite:///{tmp_path / 'calls.db'}"
    pair = [Victoria(tmp_path / name, CONFIG, db_url=db_url) for name in ("a", "b")]
    for instance in pair:
        instance.start()
    for instance in pair:
        instance.wait_ready()
    yield pair
    for instance in pair:
        instance.stop()


@pytest.fixture
def dispatcher(tmp_path, instances):
    balancer = start_dispatcher(instances, tmp_path)
    yield balancer
    balancer.stop()


def answered_count(instance: Victoria) -> int:
    return len(re.findall(r"answered by agent", instance.log()))


def destinations(balancer: Kamailio) -> dict[str, str]:
    """The dispatcher's view of each instance: its address and flags (A active, I inactive, P probing)."""
    kamcmd = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
    listing = subprocess.run([kamcmd, "-s", f"unix:{balancer.workdir}/ctl", "dispatcher.list"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    uris = re.findall(r"URI: sip:([\d.]+:\d+)", listing)
    flags = re.findall(r"FLAGS: (\w+)", listing)
    return dict(zip(uris, flags))


def test_six_callers_are_shared_between_two_instances_and_a_seventh_hears_busy(instances, dispatcher, speech_wav):
    target = f"sip:7000@{dispatcher.registrar}"
    with ThreadPoolExecutor(6) as pool:
        six = [pool.submit(run_caller, target, play=speech_wav, hangup_after=12, timeout=40) for _ in range(6)]
        try:
            wait_until(lambda: sum(answered_count(i) for i in instances) == 6, 40, what="six calls answered")
        except TimeoutError as timeout:  # a caller that died says why (its stderr, with faulthandler's stack)
            failed = [str(f.exception())[-3000:] for f in six if f.done() and f.exception() is not None]
            raise AssertionError(f"{timeout}; callers that failed: {failed}") from None
        seventh = run_caller(target, hangup_after=1)
        reports = [f.result() for f in six]
    for instance in instances:
        instance.wait_for_log(r"ended, caller-hangup", count=3, timeout=20)

    assert all(r["answered"] for r in reports), reports
    assert [answered_count(i) for i in instances] == [3, 3], "the least-loaded instance gets each call"
    assert not seventh["answered"] and seventh["last_status"] == 486, seventh
    assert "every Victoria instance is busy" in dispatcher.log_path.read_text()
    calls = instances[0].calls()  # one database for both
    assert sorted(c["status"] for c in calls) == ["ended"] * 6, "the dispatcher said busy; no instance was asked"


def test_a_dead_instance_is_skipped_and_rejoins_when_it_is_back(instances, dispatcher, speech_wav):
    first, second = instances
    first_address = f"{LOOPBACK}:{first.sip_port}"
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)

    target = f"sip:7000@{dispatcher.registrar}"
    reports = [run_caller(target, hangup_after=1, timeout=20) for _ in range(2)]
    assert all(r["answered"] for r in reports), reports
    assert answered_count(second) == 2, "both calls reached the live instance"
    wait_until(lambda: destinations(dispatcher)[first_address].startswith("I"), 15, what="dead instance marked down")

    first.start()
    first.wait_for_log(r"Victoria is ready", count=2, timeout=60)
    wait_until(lambda: destinations(dispatcher)[first_address].startswith("A"), 20, what="instance back in the set")
    before = [answered_count(first), answered_count(second)]
    with ThreadPoolExecutor(2) as pool:
        both = [pool.submit(run_caller, target, play=speech_wav, hangup_after=6, timeout=30) for _ in range(2)]
        wait_until(lambda: answered_count(first) + answered_count(second) == sum(before) + 2, 30, what="two answered")
        assert all(f.result()["answered"] for f in both)
    assert [answered_count(first), answered_count(second)] == [before[0] + 1, before[1] + 1], \
        "the instance that came back takes its share"


def test_only_the_pbx_may_send_calls_through_the_dispatcher(instances, dispatcher):
    """Victoria trusts the dispatcher's address, so the dispatcher must not relay a stranger's INVITE."""
    stranger = "127.0.0.2"  # another loopback address: a source that is not in PBX_LIST
    host, port = dispatcher.registrar.rsplit(":", 1)
    status = send_request(invite(host, int(port), user="7000", source=stranger), (host, int(port)), source=stranger)
    assert status == 403
    assert f"refused INVITE from {stranger}" in dispatcher.log_path.read_text()
    assert sum(answered_count(i) for i in instances) == 0 and instances[0].calls() == [], "no instance was asked"
    report = run_caller(f"sip:7000@{dispatcher.registrar}", hangup_after=1)  # from 127.0.0.1, the PBX
    assert report["answered"], report
