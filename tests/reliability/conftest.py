from tests.integration.conftest import kamailio, piper_voice, speech_ulaw, speech_wav  # noqa: F401 — shared fixtures
