"""How `altvoice caption` decides what to skip and writes each image's outputs: records, audio,
tagged copies, never replacing a file it did not make (see altvoice.outputs)."""
import collections
import datetime
import json
import os
import posixpath
import threading
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import fsspec
from apache_beam.transforms.window import GlobalWindows

from altvoice.errors import ERRORS, error_record
from altvoice.names import described, to_os, to_wire
from altvoice.outputs import alt_text, atomic_write, claimed, exists, output_paths, read_record, same_source
from altvoice.sources import is_local
from altvoice.pipelines.read_images import IGNORED, UP_TO_DATE
from altvoice.review import PAGE_FILES
from altvoice.xmp import UnsupportedFormat, embed_alt_text

OWN_SUFFIXES = (".json", ".jsonl", ".wav", ".mp3", ".ogg")
ALT_COPY = ".alt"  # in-place tagged copies: photo.jpg -> photo.alt.jpg
UNSUPPORTED = "unsupported"  # a record's `embed` when the image's format can't carry XMP
PENDING = 64  # images whose outputs are being written in the background, at most (two caption batches)
PENDING_BYTES = 256 << 20  # and the bytes of their images (kept for --embed-metadata), at most
WRITERS = 2  # threads that write and speak: while one waits for a caption batch, both cores can speak


def base_name(url: str) -> str:
    """A written file's name as records keep it (wire form: valid text even when the bytes are not UTF-8)."""
    return to_wire(posixpath.basename(url))


def copy_path(settings, relpath: str) -> str:
    """Where an image's XMP-tagged copy goes: mirrored under --output, `photo.alt.jpg` in place."""
    if not settings.in_place:
        return f"{settings.output_root}/{to_os(relpath)}"
    stem, ext = posixpath.splitext(to_os(relpath))
    return f"{settings.output_root}/{stem}{ALT_COPY}{ext}"


def human_correction(record: dict | None) -> dict | None:
    """A reviewer's correction kept in a record (see altvoice.corrections), without its pending mark."""
    block = (record or {}).get("correction")
    if not isinstance(block, dict) or not isinstance(block.get("alt_text"), str):
        return None
    return {key: value for key, value in block.items() if key != "pending"}


class IgnoreOwn:
    """Picklable listing filter: the job's records, audio and manifests, the review page's thumbnails,
    and the output folder when it lies inside the input, are never inputs."""

    def __init__(self, settings):
        self.exclude = settings.exclude

    def __call__(self, name: str) -> bool:
        if self.exclude and (name == self.exclude or name.startswith(self.exclude + "/")):
            return True
        return name.lower().endswith(OWN_SUFFIXES) or bool(PAGE_FILES.match(name))


class SkipDone:
    """Picklable read-time filter: ignores in-place tagged copies the job made; skips (unless
    --force) images whose record is current: same model, voice and source stamp, audio and (with
    --embed-metadata) tagged copy present."""

    def __init__(self, settings):
        self.settings = settings

    def __call__(self, entry, content_hash=None) -> str | None:
        if self._own_copy(entry.name):
            return IGNORED
        if self.settings.force:
            return None
        return UP_TO_DATE if self._done(entry.name, entry.stamp, content_hash) else None

    def _own_copy(self, name: str) -> bool:
        """An in-place `photo.alt.jpg` is the job's only when photo.jpg's record claims it."""
        stem, ext = posixpath.splitext(name)
        if not self.settings.in_place or not stem.lower().endswith(ALT_COPY):
            return False
        record = read_record(output_paths(self.settings.output_root, stem[: -len(ALT_COPY)] + ext, None)["json"])
        return posixpath.basename(name) in claimed(record)

    def _done(self, name: str, stamp: tuple, content_hash) -> bool:
        s = self.settings
        paths = output_paths(s.output_root, name, s.extension)
        record = read_record(paths["json"])
        if not record or record.get("model_id") != s.model_id or record.get("voice") != s.voice_id:
            return False
        if (record.get("correction") or {}).get("pending"):  # a reviewer's correction, not yet spoken
            return False
        if not same_source(record.get("source"), stamp, content_hash):
            return False
        if record.get("alt_text") == "" and human_correction(record):  # rejected: no audio, no tagged copy
            return True
        if paths["audio"] and (record.get("audio") != base_name(paths["audio"]) or not exists(paths["audio"])):
            return False
        if s.embed and record.get("embed") != UNSUPPORTED:
            return bool(record.get("tagged_copy")) and exists(copy_path(s, name))
        return True


class WriteOutputs(beam.DoFn):
    """(((relpath, stamp), bytes or None), Grounded) -> audio, tagged copy, then the JSON record; a
    manifest line. Speech that fails is an error record: the JSON is still written, without audio,
    and the next run retries the audio. A file there that the job did not make is never replaced.

    Writing runs on WRITERS threads of its own, so speech overlaps the captioning of the next batch:
    `process` hands an image over and returns, its outputs follow in order when written (at the latest
    in finish_bundle), and at most PENDING images (PENDING_BYTES of image bytes) wait. Speech runs on one core per sentence (the
    least CPU per sentence), and each distinct sentence is spoken once per worker process
    (altvoice.tts.reuse). Two images whose outputs may share a path are written one after the other.
    """

    def __init__(self, settings):
        self.settings = settings
        self.synthesizer = self.speaker = self._pool = None

    def setup(self):
        from altvoice.tts import get_synthesizer
        from altvoice.tts.reuse import shared_speaker

        s = self.settings
        self.synthesizer = get_synthesizer(s.backend, s.voice, s.audio_format, **s.tts_options)
        if self.synthesizer:
            self.synthesizer.use_threads(1)  # one core a sentence: the least CPU per sentence
            self.speaker = shared_speaker(self.synthesizer)
        self._pool = ThreadPoolExecutor(WRITERS, thread_name_prefix="altvoice-write")
        self._busy, self._free = set(), threading.Condition()  # output paths being written

    def start_bundle(self):
        self._pending, self._pending_bytes = collections.deque(), 0

    def process(self, element):
        size = len(element[0][1] or b"")
        self._pending.append((self._pool.submit(self._outputs, element), size))
        self._pending_bytes += size
        while self._pending and (self._pending[0][0].done() or len(self._pending) > PENDING
                                 or self._pending_bytes > PENDING_BYTES):
            yield from self._emit(self._next())

    def finish_bundle(self):
        while self._pending:
            for output in self._emit(self._next()):
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
                else:
                    yield GlobalWindows.windowed_value(output)

    def _next(self):
        """The oldest pending image's result, waiting for it; if it failed, the bundle fails and the
        writes not yet started are cancelled (a retry redoes them)."""
        future, size = self._pending.popleft()
        self._pending_bytes -= size
        try:
            return future.result()
        except BaseException:
            for other, _ in self._pending:
                other.cancel()
            raise

    def teardown(self):
        if self._pool:
            self._pool.shutdown(cancel_futures=True)

    @staticmethod
    def _emit(result):
        """The outputs of one image, counted (Beam's metrics belong to the thread that runs the DoFn)."""
        outputs, reused = result
        counter = beam.metrics.Metrics.counter
        if reused:
            counter("altvoice", "speech_reused").inc()
        for output in outputs:
            if isinstance(output, beam.pvalue.TaggedOutput):
                counter("altvoice", f"failed_{output.value['stage']}").inc()
            else:
                counter("altvoice", "images_failed" if output["status"] == "failed" else "images_captioned").inc()
                if output["needs_review"]:
                    counter("altvoice", "images_needing_review").inc()
            yield output

    def _outputs(self, element) -> tuple[list, bool]:
        """(outputs, whether the audio was reused) of one image; runs on the write thread."""
        ((relpath, stamp), data), prediction = element
        spoken, path = [], relpath.casefold()  # two names one disk may take as one path are written in turn
        with self._free:
            self._free.wait_for(lambda: path not in self._busy)
            self._busy.add(path)
        try:
            return list(self._write(relpath, stamp, data, prediction.inference, spoken)), any(spoken)
        except Exception as err:  # a bug or an unforeseen error on one image must not stop the run
            failure = error_record(relpath, "write", "write_failed", f"{type(err).__name__}: {err}")
            return list(self._finish(relpath, prediction.inference, alt_text(prediction.inference.caption), None,
                                     [failure])), False
        finally:
            with self._free:
                self._busy.discard(path)
                self._free.notify_all()

    def _write(self, relpath, stamp, data, found, spoken: list):
        s = self.settings
        paths = output_paths(s.output_root, relpath, s.extension)
        old = read_record(paths["json"])
        human = human_correction(old)
        text, failures = human["alt_text"] if human else alt_text(found.caption), []
        if old is None and exists(paths["json"]):
            failures.append(error_record(relpath, "write", "output_exists", f"{paths['json']} exists and is not "
                                         "an altvoice record: not overwritten, image not captioned"))
            yield from self._finish(relpath, found, text, None, failures)
            return
        record = {**described(relpath), "caption": found.caption, "score": round(float(found.score), 4),
                  "alt_text": text, "audio": None, "model_id": s.model_id, "voice": s.voice_id,
                  "input": s.source, "source": dict(stamp), "claims": sorted(claimed(old)),
                  "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        if found.grounding != "off":
            record.update(grounding=found.grounding, objects=found.objects, confidence=found.confidence,
                          needs_review=found.needs_review)
        if human:  # kept across runs, models and --force: the model never overwrites a person's text
            record.update(alt_text_source="human", correction=human,
                          needs_review=human.get("decision") == "rejected" and not text)
        targets = {"audio": paths["audio"] if self.synthesizer and text else None,
                   "copy": copy_path(s, relpath) if s.embed and data is not None and text else None}
        for key, url in targets.items():
            if url and base_name(url) not in claimed(old) and exists(url):
                stage = "speech" if key == "audio" else "embed"
                failures.append(error_record(relpath, stage, "output_exists", f"{url} exists and was not written "
                                             "by altvoice: not overwritten"))
                targets[key] = None
        kept = claimed(old)
        if human and not text and paths["audio"] and (old or {}).get("audio") == base_name(paths["audio"]):
            failures += self._remove_audio(relpath, paths["audio"])
            kept -= {base_name(paths["audio"])}
        new = {base_name(u) for u in targets.values() if u} - kept
        try:
            if new:  # an intent record first: a run killed before the final record still owns these files
                record["claims"] = sorted(kept | new)
                intent = {**described(relpath), "claims": record["claims"]}
                if human:  # and still holds the reviewer's correction, pending
                    intent["correction"] = old["correction"]
                atomic_write(paths["json"], json.dumps(intent).encode())
            if targets["audio"]:
                failures += self._speak(relpath, text, targets["audio"], record, spoken)
            if targets["copy"]:
                failures += self._embed(relpath, data, text, targets["copy"], record)
            made = {record["audio"], record.get("tagged_copy")} - {None}
            record["claims"] = sorted(kept | made)  # a claimed file that was not written is not kept
            atomic_write(paths["json"], json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
        except OSError as err:
            failures.append(error_record(relpath, "write", "write_failed", f"record not written: {err}"))
            record = None
        yield from self._finish(relpath, found, text, record, failures)

    def _speak(self, relpath: str, text: str, url: str, record: dict, spoken: list) -> list:
        try:
            audio, reused = self.speaker.speak(text)
            spoken.append(reused)
        except Exception as err:  # TTSError, or a backend's own: caption kept, audio retried next run
            transient = getattr(err, "transient", False)
            return [error_record(relpath, "speech", "tts_failed", f"{err} (transient: {transient})")]
        try:
            atomic_write(url, audio)
        except OSError as err:
            return [error_record(relpath, "speech", "audio_write_failed", f"audio not written: {err}")]
        record["audio"] = base_name(url)
        return []

    @staticmethod
    def _remove_audio(relpath: str, url: str) -> list:
        """The job's audio of an alt text a reviewer rejected (and gave no other): no file says it."""
        try:
            fs, path = fsspec.core.url_to_fs(url)
            if fs.isfile(path) and not (is_local(fs) and os.path.islink(path)):
                fs.rm_file(path)
        except OSError as err:
            return [error_record(relpath, "speech", "audio_remove_failed", f"{url}: {err}")]
        return []

    def _embed(self, relpath: str, data: bytes, text: str, url: str, record: dict) -> list:
        try:
            atomic_write(url, embed_alt_text(data, text))
        except UnsupportedFormat as err:
            record["embed"] = UNSUPPORTED  # not retried: the format can't carry it
            return [error_record(relpath, "embed", "embed_unsupported", str(err))]
        except (ValueError, OSError) as err:
            return [error_record(relpath, "embed", "embed_failed", str(err))]
        record["tagged_copy"] = base_name(url)
        return []

    def _finish(self, relpath, found, text, record, failures):
        for failure in failures:
            yield beam.pvalue.TaggedOutput(ERRORS, failure)
        written = record is not None
        status = "written" if written and not failures else ("partial" if written else "failed")
        needs_review = record.get("needs_review", found.needs_review) if written else found.needs_review
        yield {**described(relpath), "status": status, "caption": found.caption, "alt_text": text,
               "audio": record["audio"] if written else None, "needs_review": needs_review}
