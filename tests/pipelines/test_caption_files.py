"""Caption files: Flickr8k token lines and image,caption CSVs; malformed lines become errors."""
import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from altvoice.errors import ERRORS
from pipelines.caption_files import ReadCaptions, detect_format, parse_line


def test_token_format():
    assert parse_line("1000_abc.jpg#3\tA dog runs .", "token") == ("1000_abc.jpg", "A dog runs .")


def test_csv_format_with_quoted_commas():
    assert parse_line('1000_abc.jpg,"A dog, a cat ."', "csv") == ("1000_abc.jpg", "A dog, a cat .")
    assert parse_line("1000_abc.jpg,A dog, a cat .", "csv") == ("1000_abc.jpg", "A dog, a cat .")


@pytest.mark.parametrize("line, fmt", [("no tab", "token"), ("#1\tcaption", "token"), ("onlyimage", "csv")])
def test_malformed(line, fmt):
    with pytest.raises(ValueError):
        parse_line(line, fmt)


def test_detect_format():
    assert detect_format("captions.txt", "image,caption") == "csv"
    assert detect_format("x.csv", "a.jpg,caption") == "csv"
    assert detect_format("Flickr8k.token.txt", "a.jpg#0\tA dog .") == "token"


def test_read_captions_csv_with_bad_lines(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text('image,caption\na.jpg,A dog .\nb.jpg,"A cat, asleep ."\nbroken\nc.jpg,\n')
    with test_pipeline.TestPipeline() as p:
        out = p | beam.Create([str(path)]) | beam.ParDo(ReadCaptions()).with_outputs(ERRORS, main="ok")
        assert_that(out.ok, equal_to([("a.jpg", "A dog ."), ("b.jpg", "A cat, asleep .")]), label="good")
        kinds = out[ERRORS] | beam.Map(lambda e: (e["kind"], e["image"]))
        assert_that(kinds, equal_to([("malformed_line", f"{path}:4"), ("empty_caption", "c.jpg")]), label="bad")
