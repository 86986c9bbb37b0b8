"""朗读: a finished or streaming reply read aloud, sentence by sentence (docs/voice.md)."""
