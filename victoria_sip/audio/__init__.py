"""Audio as numpy: G.711, frame rings, playout, resampling, levels."""
