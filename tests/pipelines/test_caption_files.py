"""Caption files: Flickr8k token lines, image,caption CSVs, MS-COCO and Karpathy JSON; bad input becomes errors."""
import json

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from altvoice.caption_files import detect_format, json_format, parse_line
from altvoice.errors import ERRORS
from altvoice.pipelines.caption_files import SPLITS, ReadCaptions, ReadSplit

KARPATHY = {"dataset": "coco", "images": [
    {"filepath": "train2014", "filename": "COCO_train2014_1.jpg", "split": "train",
     "sentences": [{"raw": "A dog runs .", "tokens": ["a", "dog", "runs"]}, {"raw": " "}]},
    {"filepath": "val2014", "filename": "COCO_val2014_2.jpg", "split": "restval", "sentences": [{"raw": "A cat ."}]},
    {"filepath": "val2014", "filename": "COCO_val2014_3.jpg", "split": "val", "sentences": [{"raw": "A bird ."}]},
    {"filepath": "val2014", "filename": "COCO_val2014_4.jpg", "split": "test", "sentences": [{"raw": "A fish ."}]},
    {"split": "train", "sentences": [{"raw": "An image without a file name ."}]},
]}
COCO = {"info": {"year": 2014}, "images": [{"id": 7, "file_name": "COCO_val2014_7.jpg"},
                                           {"id": 8, "file_name": "val2014/COCO_val2014_8.jpg"}],
        "annotations": [{"id": 1, "image_id": 7, "caption": "A man rides a horse . "},
                        {"id": 2, "image_id": 8, "caption": "Two men ."}, {"id": 3, "image_id": 7, "caption": ""},
                        {"id": 4, "image_id": 9, "caption": "Nobody's image ."},
                        {"id": 5, "image_id": 8, "caption": "A boat ."}]}


def outputs(dofn, element) -> dict:
    """The DoFn's outputs for one element, run directly, by tag ('ok': the main output)."""
    out = {}
    for item in dofn.process(element):
        tag, value = (item.tag, item.value) if isinstance(item, beam.pvalue.TaggedOutput) else ("ok", item)
        out.setdefault(tag, []).append(value)
    return out


def write_json(tmp_path, name, data) -> str:
    """A dict as JSON after some blank space (detection skips it), or a string as it is."""
    path = tmp_path / name
    path.write_text(("  \n" + json.dumps(data)) if isinstance(data, dict) else data)
    return str(path)


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


def test_json_formats_detected_by_their_keys():
    assert json_format(COCO) == "coco" and json_format(KARPATHY) == "karpathy"
    for data in ({"annotations": []}, {"images": [{"file_name": "a.jpg"}]}, {"type": "captions"}):
        with pytest.raises(ValueError, match="neither MS-COCO captions"):
            json_format(data)


def test_karpathy_json_with_its_own_splits(tmp_path):
    path = write_json(tmp_path, "dataset_coco.txt", KARPATHY)  # detected by content, not by extension
    out = outputs(ReadCaptions(), path)
    assert out["ok"] == [("COCO_train2014_1.jpg", "A dog runs ."), ("COCO_val2014_2.jpg", "A cat ."),
                         ("COCO_val2014_3.jpg", "A bird ."), ("COCO_val2014_4.jpg", "A fish .")]
    assert out[SPLITS] == [("COCO_train2014_1.jpg", "train"), ("COCO_val2014_2.jpg", "train"),
                           ("COCO_val2014_3.jpg", "dev"), ("COCO_val2014_4.jpg", "test")]
    assert [(e["kind"], e["image"]) for e in out[ERRORS]] == [
        ("malformed_entry", f"{path}:images[4]"), ("empty_caption", "COCO_train2014_1.jpg")]
    assert out[ERRORS][1]["reason"] == f"empty caption at {path}:images[0].sentences[1]"


def test_split_flags_replace_the_files_own_splits(tmp_path):
    path = write_json(tmp_path, "dataset_coco.json", KARPATHY)
    assert SPLITS not in outputs(ReadCaptions({}), path)
    named = outputs(ReadCaptions({path: "dev"}), path)
    assert {split for _, split in named[SPLITS]} == {"dev"} and len(named[SPLITS]) == 4
    assert len(named["ok"]) == 4


def test_coco_captions_json(tmp_path):
    path = write_json(tmp_path, "captions_val2014.json", COCO)
    out = outputs(ReadCaptions({path: "train"}), path)
    assert out["ok"] == [("COCO_val2014_7.jpg", "A man rides a horse ."), ("COCO_val2014_8.jpg", "Two men ."),
                         ("COCO_val2014_8.jpg", "A boat .")]
    assert out[SPLITS] == [("COCO_val2014_7.jpg", "train"), ("COCO_val2014_8.jpg", "train")]
    assert [(e["kind"], e["image"]) for e in out[ERRORS]] == [
        ("empty_caption", "COCO_val2014_7.jpg"), ("unknown_image_id", f"{path}:annotations[3]")]
    assert SPLITS not in outputs(ReadCaptions({}), path)  # split flags that name other files


def test_coco_captions_json_without_split_flags_says_so(tmp_path):
    path = write_json(tmp_path, "captions_val2014.json", COCO)
    out = outputs(ReadCaptions(), path)
    assert len(out["ok"]) == 3 and SPLITS not in out
    assert out[ERRORS][0]["kind"] == "no_splits" and "--train-split" in out[ERRORS][0]["reason"]


def test_csv_named_by_a_split_flag_lists_its_images(tmp_path):
    path = tmp_path / "dev.csv"
    path.write_text("image,caption\na.jpg,A dog .\na.jpg,A brown dog .\nb.jpg,A cat .\n")
    assert set(outputs(ReadCaptions({str(path): "dev"}), str(path))[SPLITS]) == {("a.jpg", "dev"), ("b.jpg", "dev")}


@pytest.mark.parametrize("text, kinds, reason", [
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [', ["malformed_json"], "Expecting value"),
    ('{"categories": []}', ["malformed_json"], "neither MS-COCO captions"),
    ('{"images": [], "annotations": [{"image_id": 1, "caption": "A dog ."}, 7]}',
     ["unknown_image_id", "malformed_json"], "unexpected structure"),
])
def test_malformed_json_is_one_error_record(tmp_path, text, kinds, reason):
    path = write_json(tmp_path, "captions.json", text)
    out = outputs(ReadCaptions({}), path)
    assert [e["kind"] for e in out[ERRORS]] == kinds and "ok" not in out
    assert reason in out[ERRORS][-1]["reason"] and out[ERRORS][-1]["image"] == path


def test_split_file_may_be_a_captions_json(tmp_path):
    coco = write_json(tmp_path, "captions_val2014.json", COCO)
    assert outputs(ReadSplit(), ("dev", coco))["ok"] == [("COCO_val2014_7.jpg", "dev"), ("COCO_val2014_8.jpg", "dev")]
    listed = tmp_path / "test.txt"
    listed.write_text("a.jpg\n\nimages/b.jpg\n")
    assert outputs(ReadSplit(), ("test", str(listed)))["ok"] == [("a.jpg", "test"), ("b.jpg", "test")]
    broken = write_json(tmp_path, "broken.json", '{"images": [')
    assert [e["kind"] for e in outputs(ReadSplit(), ("train", broken))[ERRORS]] == ["unreadable_split"]
