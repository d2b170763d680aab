"""Offline formant speech with the system's espeak-ng (Debian: apt-get install espeak-ng)."""
import shutil
import subprocess

from altvoice.tts import audio
from altvoice.tts.base import Synthesizer, TTSError

TIMEOUT_S = 60


class EspeakSynthesizer(Synthesizer):
    """espeak-ng voice (`espeak-ng --voices` lists them), `speed` in words a minute, `pitch` 0-99."""

    def __init__(self, voice: str | None = None, audio_format: str = "wav", speed: int = 175, pitch: int = 50):
        super().__init__(audio_format)
        if not shutil.which("espeak-ng"):
            raise TTSError("the espeak backend needs espeak-ng on PATH (apt-get install espeak-ng)",
                           transient=False)
        self.voice = voice or "en-us"
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
