"""python -m bench media       — media primitives, microseconds per 20 ms frame
python -m bench latency     — voice-to-voice latency per stage over a scripted call
python -m bench capacity    — simultaneous calls, one process and one per core: CPU, memory, late RTP, underflows
                              (--admission: N talking callers at once on one process, grown until refused)
python -m bench media-delay — how long pjmedia holds audio, both ways (an echo timed on the wire)
python -m bench loop        — the conversation's own Python cost per call, without SIP (N sessions on one loop)

python -m bench NAME --help says what each takes."""

import sys

from bench import capacity, latency, loop, media, media_delay

BENCHMARKS = {"media": media.main, "latency": latency.main, "capacity": capacity.main, "media-delay": media_delay.main,
              "loop": loop.main}

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name in ("-h", "--help"):
        print(__doc__)
        sys.exit(0)
    if name not in BENCHMARKS:
        print(f"usage: python -m bench {{{'|'.join(BENCHMARKS)}}} [--help]", file=sys.stderr)
        sys.exit(2)
    BENCHMARKS[name](sys.argv[2:])
