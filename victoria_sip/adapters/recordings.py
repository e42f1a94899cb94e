"""Per-call stereo WAV recordings (opt-in: ``[recording] enabled``), and their retention.

One thread for the process moves audio from each call's ``StereoTap`` into its
file every 200 ms (pjmedia's clock thread only copies frames into the tap), and
once an hour deletes recordings older than ``retention_days``. Files:
``DIR/YYYY-MM-DD/CALL_ID.wav``, 16-bit stereo, left the caller, right Victoria.
"""

from __future__ import annotations

import logging
import threading
import time
import wave
from datetime import datetime, timezone
from pathlib import Path

from victoria_sip.audio.stereo_tap import StereoTap

log = logging.getLogger("victoria.recordings")

DRAIN_SECONDS = 0.2
RETENTION_CHECK_SECONDS = 3600.0


class Recording:
    def __init__(self, path: Path, tap: StereoTap) -> None:
        self.path = path
        self.tap = tap
        self._file = wave.open(str(path), "wb")
        self._file.setnchannels(2)
        self._file.setsampwidth(2)
        self._file.setframerate(tap.sample_rate)
        self._lock = threading.Lock()  # the recorder thread writes, the SIP thread closes
        self._closed = False

    def write_pending(self, flush: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            samples = self.tap.take_interleaved(flush)
            if len(samples):
                self._file.writeframes(samples.astype("<i2").tobytes())

    def abandon(self) -> None:
        """Stop writing (the disk failed): close the file as it is."""
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    self._file.close()
                except OSError:
                    pass

    def close(self) -> None:
        try:
            self.write_pending(flush=True)
        finally:
            with self._lock:
                if not self._closed:
                    self._closed = True
                    self._file.close()


class Recorder:
    def __init__(self, directory: Path, retention_days: float) -> None:
        self.directory = directory
        self.retention_days = retention_days
        self._recordings: dict[str, Recording] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recordings", daemon=True)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.delete_expired()
        self._thread.start()
        log.info("recording calls to %s (kept %s)", self.directory,
                 f"{self.retention_days:g} days" if self.retention_days else "forever")

    def begin(self, call_id: str, sample_rate: int) -> Recording | None:
        """A new recording for a call; None (logged) if the file cannot be created: the call goes on."""
        day = self.directory / datetime.now(timezone.utc).strftime("%Y-%m-%d")
        try:
            day.mkdir(parents=True, exist_ok=True)
            recording = Recording(day / f"{call_id}.wav", StereoTap(sample_rate))
        except OSError as exc:
            log.error("call %s: not recorded: %s", call_id, exc)
            return None
        with self._lock:
            self._recordings[call_id] = recording
        return recording

    def finish(self, call_id: str) -> None:
        with self._lock:
            recording = self._recordings.pop(call_id, None)
        if recording is not None:
            self._close(recording)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        with self._lock:
            leftovers, self._recordings = list(self._recordings.values()), {}
        for recording in leftovers:
            self._close(recording)

    def delete_expired(self) -> int:
        if not self.retention_days:
            return 0
        cutoff = time.time() - self.retention_days * 86400
        deleted = 0
        for path in self.directory.glob("*/*.wav"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            except OSError as exc:
                log.warning("could not delete expired recording %s: %s", path, exc)
        for day in self.directory.iterdir():
            if day.is_dir() and not any(day.iterdir()):
                day.rmdir()
        if deleted:
            log.info("deleted %d recording(s) older than %g days", deleted, self.retention_days)
        return deleted

    def _run(self) -> None:
        next_retention = time.monotonic() + RETENTION_CHECK_SECONDS
        while not self._stop.wait(DRAIN_SECONDS):
            with self._lock:
                active = list(self._recordings.values())
            for recording in active:
                try:
                    recording.write_pending()
                except OSError as exc:  # disk full: stop this recording, keep the call
                    log.error("recording %s stopped: %s", recording.path, exc)
                    self._drop(recording)
            if time.monotonic() >= next_retention:
                next_retention = time.monotonic() + RETENTION_CHECK_SECONDS
                self.delete_expired()

    def _drop(self, recording: Recording) -> None:
        with self._lock:
            for call_id, candidate in list(self._recordings.items()):
                if candidate is recording:
                    del self._recordings[call_id]
        recording.abandon()

    @staticmethod
    def _close(recording: Recording) -> None:
        try:
            recording.close()
        except OSError as exc:
            log.error("recording %s could not be finished: %s", recording.path, exc)
