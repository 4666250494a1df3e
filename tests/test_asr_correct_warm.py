"""The homophone corrector's dictionaries load before a live call, not on its first committed line."""

from __future__ import annotations


def test_loading_the_transcriber_through_services_warms_the_correction_dictionaries() -> None:
    from copilot import asr_correct
    from copilot.config import load_config
    from copilot.services import Services

    asr_correct._dictionary.cache_clear()
    services = Services(load_config())
    assert services.hotwords, "the shipped knowledge base has domain words to correct toward"
    _ = services.transcriber
    assert asr_correct._dictionary.cache_info().currsize == 1
    assert asr_correct.is_real_word("问题")  # jieba's real dictionary, not an empty stand-in
