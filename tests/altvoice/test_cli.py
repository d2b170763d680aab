"""The `altvoice` command as a user meets it: flags checked, one-line errors, a quiet run, instant help."""
import subprocess
import sys

import pytest

from testdata import encode, scene_image


def altvoice(*argv, timeout=300):
    return subprocess.run([sys.executable, "-m", "altvoice.cli", *argv], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture()
def five(tmp_path):
    folder = tmp_path / "five"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.png").write_bytes(encode(scene_image((40 * i, 200 - 30 * i, 90)), "PNG"))
    return folder


@pytest.mark.parametrize("argv, message", [
    (["--beam-widht", "1"], "unknown flag --beam-widht; did you mean --beam-width?"),
    (["--audio-fromat", "mp3"], "did you mean --audio-format?"),
    (["--runnr", "DirectRunner"], "did you mean --runner?"),
])
def test_a_misspelled_flag_is_a_usage_error(five, tmp_path, argv, message):
    run = altvoice("caption", "--input", str(five), "--output", str(tmp_path / "out"), "--tts", "none", *argv)
    assert run.returncode == 2 and message in run.stderr.splitlines()[-1]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("input_name, message", [("nosuchdir", "no such file or folder"), ("empty", "no files there")])
def test_an_input_that_does_not_exist_or_holds_nothing_is_a_usage_error(tmp_path, input_name, message):
    (tmp_path / "empty").mkdir()
    run = altvoice("caption", "--input", str(tmp_path / input_name), "--output", str(tmp_path / "out"))
    assert run.returncode == 2 and message in run.stderr


def test_a_voice_that_does_not_exist_stops_before_any_image(five, tmp_path):
    run = altvoice("caption", "--input", str(five), "--output", str(tmp_path / "out"), "--tts", "espeak",
                   "--voice", "xx-nonexistent")
    assert run.returncode == 2 and "xx-nonexistent" in run.stderr and not (tmp_path / "out").exists()
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_clean_run_on_a_pipe_is_a_handful_of_lines(five, tmp_path, tiny_model):
    run = altvoice("caption", "--input", str(five), "--output", str(tmp_path / "out"), "--model", str(tiny_model),
                   "--tts", "espeak")
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 0 and len(lines) <= 3, run.stderr
    assert lines[-1].startswith("caption: 5 files in") and "5 written" in lines[-1]
    again = altvoice("caption", "--input", str(five), "--output", str(tmp_path / "out"), "--model", str(tiny_model),
                     "--tts", "espeak", "--verbose")
    assert again.returncode == 0 and len(again.stderr.splitlines()) > 10  # TensorFlow and Beam, on request


def test_help_and_version_need_no_tensorflow():
    code = ("import sys, io, contextlib; from altvoice import cli; out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out): cli.main(['caption', '--help']); cli.main(['--version'])\n"
            "print('tensorflow' in sys.modules, 'apache_beam' in sys.modules, '--max-file-mb' in out.getvalue())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.split() == ["False", "False", "True"]
    assert altvoice("--version").stdout.startswith("altvoice ")


def test_exit_status_says_when_images_failed(tmp_path, tiny_model):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.png").write_bytes(encode(scene_image((200, 30, 30)), "PNG"))
    (folder / "broken.jpg").write_bytes(encode(scene_image((30, 30, 200)), "JPEG")[:200])
    (folder / "notes.txt").write_text("not an image")
    run = altvoice("caption", "--input", str(folder), "--output", str(tmp_path / "out"), "--model", str(tiny_model),
                   "--tts", "none")
    assert run.returncode == 3 and "1 failed" in run.stderr and "1 not an image" in run.stderr


def test_a_job_run_in_process_gives_ctrl_c_back(tmp_path):
    import signal

    from altvoice import cli

    assert cli.main(["caption", "--input", str(tmp_path / "nosuchdir"), "--output", str(tmp_path / "out")]) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_console_script_runs_exit_handlers_and_flushes_before_it_exits(tmp_path):
    code = ("import atexit, sys; from altvoice import cli; atexit.register(print, 'exit handler ran'); "
            "sys.argv = ['altvoice', '--version']; cli.entry()")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.splitlines() == [run.stdout.splitlines()[0], "exit handler ran"]
    assert run.stdout.startswith("altvoice ")


def test_help_into_a_pipe_closed_early_ends_quietly():
    reader = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)  # `| head` that has left
    reader.wait(timeout=30)
    code = "import sys; sys.argv = ['altvoice', 'describe-video', '--help']; from altvoice.cli import entry; entry()"
    run = subprocess.run([sys.executable, "-c", code], stdout=reader.stdin, stderr=subprocess.PIPE, text=True,
                         timeout=60)
    assert run.returncode == 0 and "Traceback" not in run.stderr
