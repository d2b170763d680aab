"""Offline formant speech with the system's espeak-ng (Debian: apt-get install espeak-ng)."""
import functools
import re
import shutil
import subprocess

from altvoice.tts import audio
from altvoice.tts.base import Synthesizer, TTSError

TIMEOUT_S = 60
LIST_HINT = ("`espeak-ng --voices` lists the languages and voice files (en-us, gmw/en-GB-x-rp), "
             "`espeak-ng --voices=variant` the variants to add with '+' (en-us+f3)")
OTHERS = r"\((\S+) \d+\)"  # "(en 2)": another language the voice speaks, and its priority


@functools.cache
def installed_voices() -> tuple[frozenset, frozenset]:
    """What `-v` takes, per `espeak-ng --voices`: language codes and voice files (path or base name), in
    lower case as espeak-ng matches them; and the variant file names (case-sensitive) for after a '+'."""
    def rows(option: str):  # (language, file, other languages) of: Pty Language Age/Gender VoiceName File (en 2)
        listing = subprocess.run(["espeak-ng", option], capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines()[1:]:
            yield line.split()[1], re.sub(OTHERS, "", line).split()[-1], re.findall(OTHERS, line)

    voices = {name.lower() for language, file, others in rows("--voices")
              for name in (language, file, file.rsplit("/", 1)[-1], *others)}
    return frozenset(voices), frozenset(file.rsplit("/", 1)[-1] for _, file, _ in rows("--voices=variant"))


class EspeakSynthesizer(Synthesizer):
    """espeak-ng voice: a language code or voice file, optionally '+variant' ('en-us+f3'); `speed` in words
    a minute, `pitch` 0-99. A voice espeak-ng lacks is a ValueError here, not a quiet fallback later."""

    def __init__(self, voice: str | None = None, audio_format: str = "wav", speed: int = 175, pitch: int = 50):
        super().__init__(audio_format)
        if not shutil.which("espeak-ng"):
            raise TTSError("the espeak backend needs espeak-ng on PATH (apt-get install espeak-ng)",
                           transient=False)
        self.voice = voice or "en-us"
        base, plus, variant = self.voice.partition("+")
        voices, variants = installed_voices()
        if base.lower() not in voices or plus and variant not in variants:  # espeak-ng would fall back quietly
            raise ValueError(f"espeak-ng has no voice {self.voice!r}: {LIST_HINT}")
        self.speed = int(speed)
        self.pitch = int(pitch)
        if not 80 <= self.speed <= 500 or not 0 <= self.pitch <= 99:
            raise ValueError("espeak speed must be 80-500 words a minute and pitch 0-99")

    @property
    def voice_id(self) -> str:
        return f"espeak:{self.voice}:speed={self.speed}:pitch={self.pitch}:{self.extension}"

    def _synthesize(self, text: str) -> bytes:
        # The text goes in on stdin, so a caption starting with "-" is never read as a flag.
        command = ["espeak-ng", "--stdout", "-v", self.voice, "-s", str(self.speed), "-p", str(self.pitch)]
        try:
            result = subprocess.run(command, input=text.encode("utf-8"), capture_output=True,
                                    timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as err:
            raise TTSError(f"espeak-ng took over {TIMEOUT_S} s", transient=True) from err
        if result.returncode != 0:
            raise TTSError(f"espeak-ng failed: {result.stderr.decode(errors='replace').strip()}",
                           transient=False)
        return audio.encode(audio.repair_wav(result.stdout), self.extension)
