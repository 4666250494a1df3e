"""The homophone corrector's dictionaries load before a live call, not on its first committed line."""

from __future__ import annotations

import pytest


@pytest.mark.real
def test_loading_the_transcriber_through_services_warms_the_correction_dictionaries() -> None:
    from copilot.config import load_config
    from copilot.session.engines import Services
    from copilot.transcription import correct as asr_correct

    asr_correct._dictionary.cache_clear()
    services = Services(load_config())
    from pathlib import Path

    from copilot.transcription.asr import domain_vocabulary_for

    words = domain_vocabulary_for(services.config.asr, Path(services.config.knowledge_dir)).words
    assert words, "the shipped knowledge base has domain words to correct toward"
    _ = services.transcriber
    assert asr_correct._dictionary.cache_info().currsize == 1
    assert asr_correct.is_real_word("问题")  # jieba's real dictionary, not an empty stand-in
