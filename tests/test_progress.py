"""Progress bars of the long commands (issue 11 item 5): a bar on a terminal (a pseudo-terminal
here), nothing extra off a terminal or with --quiet; bad output paths refused before work."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from accelsim import progress
from accelsim.cli import main

HEADER_GEMM = "device,precision,app,M,N,K,transA,transB,time_ms\n"


@pytest.fixture(scope="module")
def v100(repo):
    return str(repo / "hwspecs/v100.yaml")


@pytest.fixture(scope="module")
def gemm_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("val") / "g.csv"
    path.write_text(HEADER_GEMM + "Tesla V100,fp32,x,512,512,512,N,N,0.05\n"
                    "Tesla V100,fp32,x,1024,256,512,N,N,0.04\n")
    return str(path)


def _run(repo, argv, *, terminal: bool, tmp_path):
    """(exit code, stdout, what reached stderr) of `python -m accelsim argv`, stderr on a
    pseudo-terminal or a pipe."""
    out_path = tmp_path / "stdout.txt"
    with open(out_path, "wb") as out:
        if terminal:
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
            proc = subprocess.Popen([sys.executable, "-m", "accelsim", *argv], cwd=repo,
                                    stdout=out, stderr=slave, stdin=subprocess.DEVNULL)
            os.close(slave)
            chunks = []
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(master)
            code = proc.wait(timeout=600)
            err = b"".join(chunks).decode("utf-8", "replace")
        else:
            proc2 = subprocess.run([sys.executable, "-m", "accelsim", *argv], cwd=repo,
                                   stdout=out, stderr=subprocess.PIPE, timeout=600,
                                   stdin=subprocess.DEVNULL)
            code, err = proc2.returncode, proc2.stderr.decode()
    return code, out_path.read_text(), err


COMMANDS = {
    "run": (["run", "{v100}", "{tiny}", "--ops", "1"], "run:", "/8"),
    "compare": (["compare", "{v100}", "{v100}", "{tiny}"], "compare:", "/16"),
    "mrc": (["mrc", "{v100}", "{tiny}"], "mrc:", "/5"),
    "validate": (["validate", "--gemm-csv", "{gemm}", "--rnn-csv", "", "--analytic"],
                 "validate:", "row"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_bar_on_a_terminal_and_nothing_off_it(name, repo, v100, tiny, gemm_csv, tmp_path):
    argv, desc, count = COMMANDS[name]
    argv = [a.format(v100=v100, tiny=tiny, gemm=gemm_csv) for a in argv]
    code, out_tty, err_tty = _run(repo, argv, terminal=True, tmp_path=tmp_path)
    assert code == 0, err_tty
    assert desc in err_tty and count in err_tty, err_tty  # tqdm drew the bar
    code, out_pipe, err_pipe = _run(repo, argv, terminal=False, tmp_path=tmp_path)
    assert code == 0 and err_pipe == ""  # off a terminal: nothing extra
    assert out_pipe == out_tty or name in ("run", "compare")  # (run texts hold wall times)
    code, _out, err_quiet = _run(repo, [*argv, "--quiet"], terminal=True, tmp_path=tmp_path)
    assert code == 0 and desc not in err_quiet


@pytest.mark.slow
def test_project_bar(repo, tmp_path):
    code, _out, err = _run(repo, ["project", "--sweep-points", "2"], terminal=True,
                           tmp_path=tmp_path)
    assert code == 0 and "project:" in err and "table 1" in err


@pytest.mark.parametrize("argv, message", [
    (["validate", "--json", "/no/such/dir/v.json"], "--json /no/such/dir/v.json: expected a path"),
    (["validate", "--plot", "{tmp}/v.txt"], "expected a file name ending in .png"),
    (["validate", "--markdown", "{tmp}"], "--markdown {tmp}: expected a file name, got a directory"),
    (["project", "--json", "/no/such/dir/p.json"], "--json /no/such/dir/p.json: expected a path"),
    (["project", "--plot", "{tmp}/fig.png"], "expected a folder for the figures"),
])
def test_bad_output_paths_refused_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    from accelsim import reproduce, validate

    def no_work(*args, **kwargs):
        raise AssertionError("worked")

    monkeypatch.setattr(validate, "run_validation", no_work)
    monkeypatch.setattr(reproduce, "load_tables", no_work)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_stage_without_steps_is_a_no_op_and_steps_count_stages():
    progress.stage("nothing open")  # no bar: nothing happens

    class Term(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Term()
    with progress.steps(3, "work", stream=term):
        progress.prefix("chip")
        for name in ("a", "b", "c", "d"):  # one more than the total: clamped, no error
            progress.stage(name)
    text = term.getvalue()
    assert "work:" in text and "chip: c" in text and "3/3" in text
    quiet = Term()
    with progress.steps(3, "work", stream=quiet, quiet=True):
        progress.stage("a")
    assert quiet.getvalue() == ""
