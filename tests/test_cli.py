"""The ``chatterjee`` command line: select, codec, blanket (and demo's entry point)."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chatterjee
from chatterjee import codec
from chatterjee.cli import main

REPO_ROOT = Path(__file__).absolute().parents[1]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def chain_csv(tmp_path):
    """A chain a -> b -> c, a noise column, a text column, an embedding pair."""
    rng = np.random.default_rng(0)
    n = 400
    a = rng.normal(size=n)
    b = a + 0.3 * rng.normal(size=n)
    c = b ** 2 + 0.3 * rng.normal(size=n)
    lines = ["a,b,c,noise,label,emb_0,emb_1"]
    for i in range(n):
        e0, e1 = rng.normal(size=2)
        lines.append(f"{a[i]},{b[i]},{c[i]},{rng.normal()},w{i % 3},{e0},{e1}")
    path = tmp_path / "chain.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_error(code, out, err, fragment):
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("chatterjee: error:")
    assert fragment in lines[0]
    assert "Traceback" not in err


# ------------------------------------------------------------------ select

def test_select_builtin_table(capsys):
    code, out, err = run(capsys, "select", "--target", "target")
    assert code == 0
    assert "diabetes" in out and "T(y, selected)" in out
    assert "bmi" in out
    assert "[foci]" not in out and "FOCI step" not in out
    assert "FOCI step" not in err and "[foci]" not in err  # stderr is no terminal here


def test_select_builtin_json(capsys):
    code, out, err = run(capsys, "select", "--target", "target", "--json")
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"selected", "scores", "gains"}
    assert "bmi" in result["selected"]
    assert len(result["scores"]) == len(result["gains"]) == len(result["selected"])
    assert result["gains"][0] == pytest.approx(result["scores"][0])
    assert "[foci]" not in err


def test_select_csv_options(capsys, chain_csv):
    code, out, _ = run(capsys, "select", str(chain_csv), "--target", "c", "--json")
    assert code == 0
    assert json.loads(out)["selected"][0] == "b"  # text column skipped (with a note)

    code, out, _ = run(capsys, "select", str(chain_csv), "--target", "c", "--no-stop",
                       "--max-features", "3", "--json")
    assert code == 0
    assert len(json.loads(out)["selected"]) == 3

    code, out, _ = run(capsys, "select", str(chain_csv), "--target", "c", "--randomized",
                       "--seed", "3", "--json")
    assert code == 0
    assert json.loads(out)["selected"][0] == "b"


def test_select_groups_from_prefix(capsys, chain_csv):
    code, out, _ = run(capsys, "select", str(chain_csv), "--target", "c", "--no-stop",
                       "--groups-from-prefix", "_", "--json")
    assert code == 0
    result = json.loads(out)
    assert sorted(result["selected"]) == ["a", "b", "emb", "noise"]
    assert {"emb_0", "emb_1"} <= set(result["columns"])


def test_module_subprocess_json():
    proc = subprocess.run(
        [sys.executable, "-m", "chatterjee", "select", "--target", "target", "--json"],
        check=False, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["selected"] and len(result["scores"]) == len(result["selected"])


# ------------------------------------------------------------------ codec

def test_codec_builtin(capsys):
    code, out, _ = run(capsys, "codec", "--y", "target", "--z", "bmi", "--x", "s5")
    assert code == 0
    assert "T(target, bmi | s5) =" in out and "n = 442" in out


def test_codec_json(capsys, chain_csv):
    code, out, _ = run(capsys, "codec", str(chain_csv), "--y", "c", "--z", "a,b",
                       "--json")
    assert code == 0
    result = json.loads(out)
    assert result["n"] == 400 and result["z"] == ["a", "b"] and result["x"] == []
    assert result["T"] > 0.5
    code, out, _ = run(capsys, "codec", str(chain_csv), "--y", "c", "--z", "a",
                       "--x", "b", "--json")
    assert code == 0
    assert json.loads(out)["T"] < 0.2  # c is independent of a given b


# ------------------------------------------------------------------ blanket

def test_blanket_csv(capsys, chain_csv):
    code, out, _ = run(capsys, "blanket", str(chain_csv), "--symmetric", "and", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["symmetric"] == "and"
    assert set(result["blankets"]) == {"a", "b", "c", "noise", "emb_0", "emb_1"}
    assert "b" in result["blankets"]["a"] and "b" in result["blankets"]["c"]
    code, out, _ = run(capsys, "blanket", str(chain_csv))
    assert code == 0
    assert "Markov blankets" in out


def test_blanket_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "graph.png"
    code, out, _ = run(capsys, "blanket", "--symmetric", "or", "--plot", str(target))
    assert code == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "target" in out


def test_blanket_plot_without_matplotlib(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(capsys, "blanket", "--plot", "x.png")
    assert_error(code, out, err, "matplotlib")


# ------------------------------------------------------------------ errors

def test_error_missing_file(capsys, tmp_path):
    assert_error(*run(capsys, "select", str(tmp_path / "nope.csv"), "--target", "a"),
                 "no such file")


def test_error_empty_file(capsys, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert_error(*run(capsys, "codec", str(path), "--y", "a", "--z", "b"), "empty")
    path.write_text("a,b\n")
    assert_error(*run(capsys, "select", str(path), "--target", "a"), "no data rows")


def test_error_bad_csv(capsys, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('a,b\n1,2\n"3,4\n')
    assert_error(*run(capsys, "select", str(path), "--target", "a"), "cannot parse")
    path.write_bytes(b"a,b\n1,\xff\xfe\n")
    assert_error(*run(capsys, "blanket", str(path)), "cannot parse")
    assert_error(*run(capsys, "blanket", str(tmp_path)), "directory")


def test_error_missing_column(capsys, chain_csv):
    assert_error(*run(capsys, "select", str(chain_csv), "--target", "zz"),
                 "no column 'zz'")
    assert_error(*run(capsys, "codec", str(chain_csv), "--y", "c", "--z", "a,zz"),
                 "--z: no column 'zz'")
    assert_error(*run(capsys, "codec", "--y", "target", "--z", "bmi", "--x", "qq"),
                 "--x: no column 'qq'")


def test_error_non_numeric_column(capsys, chain_csv):
    assert_error(*run(capsys, "select", str(chain_csv), "--target", "label",
                      "--y-type", "continuous"),
                 "'label' is not numeric")
    assert_error(*run(capsys, "codec", str(chain_csv), "--y", "c", "--z", "label"),
                 "'label' is not numeric")


def test_text_target_is_a_class_label(tmp_path, capsys):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 300))
    lines = ["a,b,label"] + [f"{a[i]},{b[i]},{'yes' if a[i] > 0 else 'no'}"
                             for i in range(300)]
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    code, out, _ = run(capsys, "select", str(path), "--target", "label", "--json")
    assert code == 0 and json.loads(out)["selected"] == ["a"]
    code, out, _ = run(capsys, "codec", str(path), "--y", "label", "--z", "a", "--json")
    assert code == 0 and json.loads(out)["T"] > 0.9


@pytest.mark.parametrize("value, fragment", [
    ("0", "positive integer"), ("-2", "positive integer"), ("abc", "positive integer"),
    ("1.5", "positive integer"), ("11", "more than the 10 candidate"),
])
def test_error_bad_max_features(capsys, value, fragment):
    assert_error(*run(capsys, "select", "--target", "target", "--max-features", value),
                 fragment)


def test_error_usage(capsys):
    assert_error(*run(capsys), "command")
    assert_error(*run(capsys, "select"), "--target")
    assert_error(*run(capsys, "blanket", "--symmetric", "xor"), "invalid choice")


def test_help_mentions_builtin_data(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["select", "--help"])
    assert exit_info.value.code == 0
    assert "diabetes" in capsys.readouterr().out


# ------------------------------------------------------------------ unlearn

FAST_UNLEARN = ("unlearn", "--demo", "--removals", "1", "--iterations", "10")


def test_unlearn_demo_table(capsys):
    pytest.importorskip("torch")
    code, out, err = run(capsys, *FAST_UNLEARN)
    assert code == 0, err
    assert "MLP 64-16-10" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("index"))
    for column in ("slices", "params", "loss before", "loss after", "time (s)"):
        assert column in header
    assert "Test accuracy:" in out and "before" in out and "after" in out


def test_unlearn_demo_json(capsys):
    pytest.importorskip("torch")
    code, out, _ = run(capsys, *FAST_UNLEARN, "--json", "--selection", "gradient",
                       "--acceleration", "subspace", "--step-control", "subsample")
    assert code == 0
    result = json.loads(out)
    assert result["selection"] == "gradient" and result["acceleration"] == "subspace"
    assert result["step_control"] == "subsample"
    assert len(result["removals"]) == 1
    removal = result["removals"][0]
    assert set(removal) == {"index", "label", "slices", "n_parameters", "loss_before",
                            "loss_after", "seconds"}
    assert removal["slices"] and removal["n_parameters"] > 0
    assert 0 <= result["test_accuracy_after"] <= 1


def test_unlearn_needs_demo(capsys):
    assert_error(*run(capsys, "unlearn"), "--demo")
    assert_error(*run(capsys, "unlearn", "--demo", "--removals", "0"), "positive integer")


def test_cli_does_not_import_torch():
    code = ("import sys, chatterjee.cli; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT,
                          check=False).returncode == 0


# ------------------------------------------------------------------ progress

def as_terminal(monkeypatch):
    """Make stderr look like a terminal (in the test body: capsys swaps the stream in
    after the fixtures are set up)."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


@pytest.mark.parametrize("tqdm", [True, False], ids=["tqdm", "lines"])
def test_progress_on_a_terminal_goes_to_stderr_only(capsys, monkeypatch, tqdm):
    as_terminal(monkeypatch)
    if tqdm:
        pytest.importorskip("tqdm")
    else:
        monkeypatch.setitem(sys.modules, "tqdm", None)
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    code, out, err = run(capsys, "select", "--target", "target", "--json")
    assert code == 0
    result = json.loads(out)  # stdout is the JSON document alone
    assert ("FOCI step 1" if tqdm else "[foci] step 1") in err
    code, quiet, quiet_err = run(capsys, "select", "--target", "target", "--json",
                                 "--no-progress")
    assert code == 0 and json.loads(quiet) == result and quiet_err == ""


def test_blanket_progress_and_no_progress(capsys, monkeypatch, chain_csv):
    as_terminal(monkeypatch)
    code, out, err = run(capsys, "blanket", str(chain_csv), "--json")
    assert code == 0
    result = json.loads(out)
    assert "blanket" in err.lower()
    code, quiet, quiet_err = run(capsys, "blanket", str(chain_csv), "--json",
                                 "--no-progress")
    assert code == 0 and json.loads(quiet) == result
    assert quiet_err == "chatterjee: note: ignored 1 non-numeric column(s): label\n"


def test_no_progress_in_help(capsys):
    for command in ("select", "blanket"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--no-progress" in capsys.readouterr().out


# ------------------------------------------------------------------ reported items

def test_dash_reads_stdin(capsys, monkeypatch, chain_csv):
    code, expected, _ = run(capsys, "codec", str(chain_csv), "--y", "c", "--z", "a",
                            "--json")
    assert code == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(chain_csv.read_text()))
    code, out, err = run(capsys, "codec", "-", "--y", "c", "--z", "a", "--json")
    assert code == 0, err
    assert json.loads(out) == json.loads(expected)
    monkeypatch.setattr(sys, "stdin", io.StringIO(chain_csv.read_text()))
    code, out, _ = run(capsys, "codec", "-", "--y", "c", "--z", "a")
    assert code == 0 and "(standard input)" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert_error(*run(capsys, "select", "-", "--target", "a"), "standard input is empty")


def test_dash_reads_stdin_subprocess(chain_csv):
    proc = subprocess.run(
        [sys.executable, "-m", "chatterjee", "select", "-", "--target", "c", "--json"],
        input=chain_csv.read_text(), check=False, capture_output=True, text=True,
        cwd=REPO_ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["selected"][0] == "b"


def test_blanket_plot_empty_path_is_an_error(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for path in ("", " "):
        assert_error(*run(capsys, "blanket", "--plot", path), "--plot")
    assert list(tmp_path.iterdir()) == []  # no hidden '.png'


@pytest.mark.parametrize("command", [
    ("demo",), ("select", "--target", "target"), ("codec", "--y", "target", "--z", "bmi"),
    ("blanket",), ("unlearn", "--demo"),
])
@pytest.mark.parametrize("seed", ["-1", "1.5", "x"])
def test_bad_seed_names_the_option(capsys, command, seed):
    assert_error(*run(capsys, *command, "--seed", seed), "--seed")


@pytest.mark.parametrize("command", [(), ("select",), ("codec",), ("blanket",)])
def test_help_is_plain_text(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: chatterjee" in out
    assert "`" not in out and ":func:" not in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"chatterjee {chatterjee.__version__}\n"


def test_select_says_which_text_columns_it_ignores(capsys, chain_csv):
    code, out, err = run(capsys, "select", str(chain_csv), "--target", "c", "--json")
    assert code == 0 and json.loads(out)["selected"]
    assert "non-numeric" in err and "label" in err
    code, _, err = run(capsys, "select", "--target", "target", "--json")
    assert code == 0 and err == ""  # all columns numeric: no note


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_separators_are_detected(capsys, tmp_path, chain_csv, sep):
    path = tmp_path / "other.csv"
    path.write_text(chain_csv.read_text().replace(",", sep))
    args = ("--y", "c", "--z", "a", "--x", "b", "--json")
    code, expected, _ = run(capsys, "codec", str(chain_csv), *args)
    assert code == 0
    code, out, err = run(capsys, "codec", str(path), *args)
    assert code == 0, err
    assert json.loads(out) == json.loads(expected)


def test_compressed_csv_is_read_with_commas(capsys, tmp_path, chain_csv):
    import gzip

    path = tmp_path / "chain.csv.gz"
    path.write_bytes(gzip.compress(chain_csv.read_bytes()))
    args = ("--y", "c", "--z", "a", "--json")
    code, expected, _ = run(capsys, "codec", str(chain_csv), *args)
    code, out, err = run(capsys, "codec", str(path), *args)
    assert code == 0, err
    assert json.loads(out) == json.loads(expected)


def test_missing_column_hints_at_the_separator(capsys, tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text("a b\n1 2\n3 4\n5 6\n")
    code, out, err = run(capsys, "codec", str(path), "--y", "a", "--z", "b")
    assert_error(code, out, err, "no column 'a'")
    assert "'a b'" not in err and "a b" in err  # the columns found are shown
    assert "separated by something other than a comma" in err


@pytest.fixture
def tied_csv(tmp_path):
    """y depends on a column a with 5 values (ties) and on a continuous b."""
    rng = np.random.default_rng(3)
    n = 300
    a = rng.integers(0, 5, size=n).astype(float)
    b = rng.normal(size=n)
    y = a + b + 0.5 * rng.normal(size=n)
    path = tmp_path / "tied.csv"
    rows = (",".join(repr(float(v)) for v in row) for row in zip(y, a, b))
    path.write_text("y,a,b\n" + "\n".join(rows) + "\n")
    return path, y, a, b


@pytest.mark.parametrize("z, x", [("a", "a"), ("b", "b"), ("a", "a,b"), ("a,b", "a"),
                                  ("b", None), ("a,b", "b,a")])
@pytest.mark.parametrize("seed", [0, 7])
def test_codec_matches_the_python_call(capsys, tied_csv, z, x, seed):
    path, y, a, b = tied_csv
    columns = {"a": a, "b": b}

    def block(names):
        return np.column_stack([columns[name] for name in names.split(",")])

    expected = codec(y, block(z), None if x is None else block(x),
                     random_state=seed).statistic
    argv = ["codec", str(path), "--y", "y", "--z", z, "--seed", str(seed), "--json"]
    code, out, err = run(capsys, *argv, *([] if x is None else ["--x", x]))
    assert code == 0, err
    assert json.loads(out)["T"] == expected


def test_codec_notes_a_column_in_both_z_and_x(capsys, tied_csv):
    path, y, a, _ = tied_csv
    code, out, err = run(capsys, "codec", str(path), "--y", "y", "--z", "a", "--x", "a",
                         "--json")
    assert code == 0
    assert json.loads(out)["T"] == codec(y, a, a, random_state=0).statistic
    assert "a in both --z and --x" in err
    code, _, err = run(capsys, "codec", str(path), "--y", "y", "--z", "a", "--x", "b")
    assert code == 0 and err == ""


def test_torch_hint_needs_no_published_package(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    code, out, err = run(capsys, "unlearn", "--demo")
    assert_error(code, out, err, "needs torch")
    assert "chatterjee[torch]" not in err and "pip install -e" in err
