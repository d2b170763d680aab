"""Pipeline options: the Beam jobs' flags (defined in altvoice.flags) as PipelineOptions subclasses."""
from apache_beam.options.pipeline_options import PipelineOptions

from altvoice import flags
from altvoice.flags import UsageError


class JobOptions(PipelineOptions):
    """Flags every altvoice Beam job shares. Beam parses all PipelineOptions subclasses with one
    parser, so a flag two jobs use is defined once, here."""

    @classmethod
    def _add_argparse_args(cls, parser):
        flags.shared(parser)


def add_job_flags(parser, options_class) -> None:
    """Adds a job's flags, shared ones included, to an argparse parser."""
    for cls in reversed(options_class.__mro__):
        if issubclass(cls, PipelineOptions) and cls is not PipelineOptions and "_add_argparse_args" in vars(cls):
            cls._add_argparse_args(parser)


class PreprocessOptions(JobOptions):
    """Flags of `altvoice preprocess`."""

    REQUIRED = flags.PREPROCESS_REQUIRED

    @classmethod
    def _add_argparse_args(cls, parser):
        flags.preprocess(parser)


class CaptionOptions(JobOptions):
    """Flags of `altvoice caption`."""

    @classmethod
    def _add_argparse_args(cls, parser):
        flags.caption(parser)


class ReviewOptions(JobOptions):
    """Flags of `altvoice review`."""

    @classmethod
    def _add_argparse_args(cls, parser):
        flags.review(parser)


class DescribeVideoOptions(CaptionOptions):
    """Flags of `altvoice describe-video`: caption's (it uses --input, --model, --grounding,
    --beam-width, --batch-size, --tts, --voice, --tts-option, --force) and --range-seconds."""

    @classmethod
    def _add_argparse_args(cls, parser):
        flags.describe_video(parser)


def run_pipeline(options: PipelineOptions, build, wait: bool = True) -> float | None:
    """Builds a job's pipeline with `build(pipeline)` and runs it; the seconds it took, or None with
    `wait=False` (Flex Templates hand the pipeline to the runner and must not wait)."""
    import time

    import apache_beam as beam

    start = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    build(pipeline)
    if not wait:
        pipeline.run()
        return None
    pipeline.run().wait_until_finish()
    return time.monotonic() - start


def beam_flags(argv, job_options: type) -> list[str]:
    """The Beam pipeline options of a command line: what is left once the job's own flags are taken."""
    import argparse

    job = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    add_job_flags(job, job_options)
    return job.parse_known_args(list(argv or []))[1]


def job_pipeline_options(argv, job_options: type) -> PipelineOptions:
    """Beam options for a job, once every flag of `argv` is known: the job's own or a Beam pipeline
    option (else UsageError, with a did-you-mean). With no --runner, Beam's
    FnApiRunner: what the DirectRunner runs these pipelines on, minus its attempt to download and
    switch to the Prism runner first."""
    import argparse
    import difflib

    from apache_beam.options.pipeline_options import StandardOptions, _BeamArgumentParser

    job = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    add_job_flags(job, job_options)
    _, rest = job.parse_known_args(list(argv or []))
    beam_parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__() if not issubclass(c, JobOptions)}.values():
        cls._add_argparse_args(beam_parser)
    _, unknown = beam_parser.parse_known_args(rest)
    if unknown:
        known = [*job._option_string_actions, *beam_parser._option_string_actions]
        flag = next((a for a in unknown if a.startswith("-")), unknown[0])
        close = difflib.get_close_matches(flag.split("=", 1)[0], known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        what = "unknown flag" if flag.startswith("-") else "unexpected argument"
        raise UsageError(f"{what} {flag}{hint} (--help lists the job's flags; Beam's pipeline options are "
                         "accepted too)")
    options = PipelineOptions(list(argv or []))  # the job's flags too: Dataflow shows them with the job
    if options.view_as(StandardOptions).runner is None:
        options.view_as(StandardOptions).runner = "FnApiRunner"
    return options
