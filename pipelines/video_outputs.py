"""describe-video's outputs beside each video: the WebVTT track, the narration, the described copy
and the scenes record (written last, listing the files the job made; claimed before writing)."""
import json
import posixpath
import tempfile

import apache_beam as beam

from altvoice.errors import tagged_error
from altvoice.names import described, to_os
from altvoice.narration import with_description_track, write_narration
from altvoice.outputs import alt_text, atomic_put, atomic_write, exists, read_record
from altvoice.sources import open_source

TRACK_SUFFIX, SCENES_SUFFIX = ".descriptions.vtt", ".scenes.json"
NARRATION_SUFFIX, DESCRIBED_SUFFIX = ".narration.wav", ".described.mp4"


def timestamp(seconds: float) -> str:
    """WebVTT's hh:mm:ss.ttt."""
    millis = round(seconds * 1000)
    return f"{millis // 3600000:02d}:{millis // 60000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def cues(spans: list, captions: dict) -> list[dict]:
    """Scenes (start, end, keyframe time) with their captions -> cues: consecutive scenes with the
    same alt text are one cue; a scene without a caption (its keyframe failed) joins none."""
    merged = []
    for index, (start, end, keyframe) in enumerate(spans):
        found = captions.get(index)
        if found is None:
            continue
        text = alt_text(found.caption)
        if merged and merged[-1]["alt_text"] == text and merged[-1]["end"] == start:
            merged[-1]["end"] = end
            continue
        merged.append({"start": start, "end": end, "keyframe_time": keyframe, "caption": found.caption,
                       "alt_text": text, "score": round(float(found.score), 4),
                       **({"confidence": found.confidence, "needs_review": found.needs_review}
                          if found.grounding != "off" else {})})
    return merged


def webvtt(track: list[dict]) -> str:
    """A WebVTT file of description cues (for <track kind="descriptions">)."""
    lines = ["WEBVTT", "Kind: descriptions", "Language: en", ""]
    for number, cue in enumerate(track, 1):
        lines += [str(number), f"{timestamp(cue['start'])} --> {timestamp(cue['end'])}", cue["alt_text"], ""]
    return "\n".join(lines)


class WriteTrack(beam.DoFn):
    """(relpath, {"video": [info], "captions": [(index, Grounded)]}) -> beside the video's mirrored
    path: the track, with a voice the narration and an MP4 copy with an audio-description track,
    then the scenes record (listing the files it made); a manifest line. A file there that an
    earlier run did not make is never replaced (an error line; the others are written). A
    description that can't be spoken is an error line; the narration has the others."""

    def __init__(self, settings):
        self.settings, self.root = settings, settings.output_root
        self.speaker = None

    def setup(self):
        from altvoice.tts import get_synthesizer
        from altvoice.tts.reuse import shared_speaker

        s = self.settings
        synthesizer = get_synthesizer(s.backend, s.voice, "wav", **s.tts_options)
        self.speaker = shared_speaker(synthesizer) if synthesizer else None

    def _spoken(self, relpath: str, track: list, work: str, errors: list) -> tuple[list, list]:
        """(clips, cues): WAV files in `work` of the cues the voice could say, and those cues; an
        error record in `errors` for each it could not."""
        clips, spoken = [], []
        for cue in track:
            try:
                clip = f"{work}/{len(clips)}.wav"
                with open(clip, "wb") as f:
                    f.write(self.speaker.speak(cue["alt_text"])[0])
                clips.append(clip)
                spoken.append(cue)
            except Exception as err:  # TTSError or a backend's own: this description is left out
                errors.append(tagged_error(relpath, "speech", "tts_failed", f"{cue['alt_text'][:60]!r}: {err}"))
        return clips, spoken

    def process(self, element):
        relpath, joined = element
        if not joined["video"]:
            return
        info = joined["video"][0]
        errors = []
        try:
            with tempfile.TemporaryDirectory(prefix="altvoice-video-") as work:
                lines = list(self._describe(relpath, info, dict(joined["captions"]), work, errors))
        except Exception as err:  # an output store that fails, say: this video only, never the run
            errors.append(tagged_error(relpath, "write", "write_failed", f"{type(err).__name__}: {err}"))
            lines = [{**described(relpath), "status": "failed"}]
        yield from lines
        yield from errors

    def _describe(self, relpath: str, info: dict, captions: dict, work: str, errors: list):
        """Writes the video's files and record; yields its manifest line, keeps errors in `errors`."""
        base = f"{self.root}/{to_os(relpath)}"
        name = posixpath.basename(base)
        old = read_scenes(base + SCENES_SUFFIX)
        if old is None and exists(base + SCENES_SUFFIX):
            errors.append(tagged_error(relpath, "write", "output_exists", f"{base}{SCENES_SUFFIX} exists and is "
                                       "not one altvoice wrote: not overwritten, video not described"))
            yield {**described(relpath), "status": "failed"}
            return
        ours = {n for n in (old or {}).get("files", []) if isinstance(n, str) and "/" not in n}
        track = cues(info["spans"], captions)
        record = {**described(relpath), "source": info["stamp"], "duration": round(info["duration"], 3),
                  "has_audio": info["has_audio"],
                  "scenes": [{"start": s, "end": e, "keyframe_time": k} for s, e, k in info["spans"]],
                  "cues": track, "model_id": self.settings.model_id, "voice": self.settings.voice_id, "files": []}
        with open(f"{work}/track.vtt", "w", encoding="utf-8") as f:
            f.write(webvtt(track))
        outputs = {TRACK_SUFFIX: lambda: f"{work}/track.vtt"}
        if self.speaker and track:
            clips, spoken = self._spoken(relpath, track, work, errors)
            try:
                fits = write_narration(clips, [cue["start"] for cue in spoken], info["duration"], f"{work}/voice.wav")
            except Exception as err:  # sox missing or failing, a full disk: the track is still written
                errors.append(tagged_error(relpath, "speech", "narration_failed", f"{type(err).__name__}: {err}"))
                clips = []
            if clips:
                for cue, fit in zip(spoken, fits):
                    cue["narration"] = fit
                spans = [(fit["start"], fit["end"]) for fit in fits]
                outputs[NARRATION_SUFFIX] = lambda: f"{work}/voice.wav"
                outputs[DESCRIBED_SUFFIX] = lambda: described_copy(info["url"], f"{work}/voice.wav", spans, work)
        claims = sorted(ours | {name + suffix for suffix in outputs if not exists(base + suffix)})  # never a user's
        try:  # the files about to be written, claimed first: a run killed mid-way still owns them
            atomic_write(base + SCENES_SUFFIX, json.dumps({**record, "files": claims, "complete": False}).encode())
        except Exception as err:  # a local or object-store write that failed: this video only
            errors.append(tagged_error(relpath, "write", "write_failed", str(err)))
            yield {**described(relpath), "status": "failed"}
            return
        for suffix, make in outputs.items():
            if exists(base + suffix) and name + suffix not in ours:
                errors.append(tagged_error(relpath, "write", "output_exists", f"{base}{suffix} exists and was not "
                                           "written by altvoice: not overwritten"))
                continue
            try:
                atomic_put(base + suffix, make())
                record["files"].append(name + suffix)
            except Exception as err:  # a copy FFmpeg can't make, a write that failed: this file only
                errors.append(tagged_error(relpath, "write", "write_failed",
                                           f"{name}{suffix}: {type(err).__name__}: {err}"))
        record["files"] += sorted(n for n in ours - set(record["files"]) if exists(f"{posixpath.dirname(base)}/{n}"))
        record["complete"] = not errors and not info.get("partial") and len(captions) == len(info["spans"])
        try:
            atomic_write(base + SCENES_SUFFIX, json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
        except Exception as err:  # as above
            errors.append(tagged_error(relpath, "write", "write_failed", str(err)))
            yield {**described(relpath), "status": "failed"}
            return
        beam.metrics.Metrics.counter("altvoice", "videos_described").inc()
        yield {**described(relpath), "status": "written" if record["complete"] else "partial",
               "scenes": len(info["spans"]), "cues": len(track), "files": record["files"]}


def read_scenes(url: str) -> dict | None:
    """A scenes record altvoice wrote (outputs.read_record: a regular file, capped), or None."""
    record = read_record(url)
    return record if record and "cues" in record else None


def described_copy(url: str, narration_path: str, spans: list, work: str) -> str:
    """A local MP4 copy (in `work`) of the video at `url` with the audio-description track."""
    target = f"{work}/described.mp4"
    with open_source(url) as source:
        with_description_track(source, narration_path, spans, target)
    return target
