"""The GloVe matrix: rows in vocabulary order, zeros for missing words, coverage reported."""
import numpy as np
import pytest

from altvoice.pipelines.glove import glove_matrix


def test_rows_follow_vocabulary_and_missing_words_are_zero(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("dog 1 2 3\ncat 4 5 6\nbroken 1 x 3\nshort 1 2\n")
    matrix, report = glove_matrix(str(path), ["<pad>", "<unk>", "<start>", "<end>", "cat", "dog", "emu"])
    np.testing.assert_array_equal(matrix[4:], [[4, 5, 6], [1, 2, 3], [0, 0, 0]])
    assert not matrix[:4].any()
    assert report["found"] == 2 and report["words"] == 3 and report["missing_examples"] == ["emu"]


def test_no_overlap_is_an_error(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("zebra 1 2\n")
    with pytest.raises(ValueError, match="no GloVe vector"):
        glove_matrix(str(path), ["<pad>", "dog"])
