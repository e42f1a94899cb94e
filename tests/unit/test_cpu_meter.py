"""The machine's CPU as admission sees it, read from a /proc/stat-format file the test writes."""

import time

from victoria_sip.adapters.cpu_meter import CpuMeter


def write_stat(path, busy: int, idle: int) -> None:
    # user nice system idle iowait irq softirq steal
    path.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n")


def test_busy_is_said_only_once_the_samples_span_long_enough(tmp_path):
    stat = tmp_path / "stat"
    write_stat(stat, busy=1000, idle=1000)
    meter = CpuMeter(window_seconds=10, stat_path=str(stat), min_span_seconds=1.5)
    meter.start()
    try:
        write_stat(stat, busy=1000 + 400, idle=1000)  # every core flat out since the first sample
        assert meter.busy() == 0.0, "too soon to say: a start-up burst is not the load calls bring"
        time.sleep(2.2)
        write_stat(stat, busy=1000 + 600, idle=1000 + 200)
        assert meter.busy() == 0.75
    finally:
        meter.stop()


def test_an_unreadable_stat_file_reports_an_idle_machine(tmp_path):
    meter = CpuMeter(stat_path=str(tmp_path / "missing"), min_span_seconds=0)
    meter.start()
    assert meter.busy() == 0.0
