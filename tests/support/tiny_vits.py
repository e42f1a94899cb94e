"""Builds a tiny, untrained Coqui VITS model on disk, so the real Coqui loading and synthesis path
can be tested where no pretrained model can be downloaded. It speaks noise, at the right rate and length."""

from __future__ import annotations

from pathlib import Path


def build_tiny_vits(directory: Path, sample_rate: int = 16000) -> Path:
    import torch
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import Vits

    config = VitsConfig()
    config.use_phonemes = False
    config.text_cleaner = "basic_cleaners"
    config.characters = CharactersConfig(
        characters_class="TTS.tts.models.vits.VitsCharacters",
        characters="abcdefghijklmnopqrstuvwxyz ", punctuations="!'(),-.:;? ",
        pad="_", eos="", bos="", blank=None, phonemes=None,
    )
    config.audio.sample_rate = sample_rate
    args = config.model_args
    args.hidden_channels = 32
    args.hidden_channels_ffn_text_encoder = 64
    args.num_layers_text_encoder = 2
    args.num_layers_posterior_encoder = 2
    args.num_layers_flow = 2
    args.num_layers_dp_flow = 2
    args.upsample_initial_channel_decoder = 32
    torch.manual_seed(0)
    model = Vits.init_from_config(config)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, directory / "model.pth")
    config.save_json(str(directory / "config.json"))
    return directory
