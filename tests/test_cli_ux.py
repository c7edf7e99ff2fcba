"""A newcomer's first hour, held as a user meets it through the real command line: one-line errors, metadata
kept, outputs that are what they were asked to be, tables that read at 80 columns, help that lists choices
and defaults, and an API that shows what it is."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, PngImagePlugin

import mdn
from mdn.errors import MdnError

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(5)
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
EXPOSURE = 0x829A
"""EXIF's exposure time, in EXIF's own sub-directory."""
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="5"/></rdf:RDF></x:xmpmeta>'
)
"""An XMP packet: a catalogue's rating, as photo tools keep ratings, keywords and captions."""


def mdn_cli(*args: object, columns: int | None = 80, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`mdn ARGS` in a child process as a user runs it, its output piped (not a terminal), at `columns` (None: as
    a pipe into a file or another program, with no COLUMNS set)."""
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"} | {"NO_COLOR": "1"}
    env |= {"COLUMNS": str(columns)} if columns else {}
    command = [sys.executable, "-m", "mdn", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def _one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small camera JPEG with EXIF (make, model, software, exposure), an ICC profile and 300 dpi."""
    path = tmp_path_factory.mktemp("photos") / "ok.jpg"
    exif = Image.Exif()
    exif.update({271: "Canon", 272: "EOS R5", 305: "Firmware 1.8"})
    exif.get_ifd(0x8769)[EXPOSURE] = 0.004
    pixels = RNG.integers(40, 200, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes(), icc_profile=ICC, dpi=(300, 300), xmp=XMP)
    return path


def _camera(image: Image.Image) -> tuple[object, ...]:
    exif = image.getexif()
    return exif.get(271), exif.get(272), exif.get(305)


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("command", "card", "words"),
    [("denoise", "fill-grey", ("fill-grey", "fill card", "mdn zeroshot")),
     ("zeroshot", "unet", ("unet", "denoise card", "mdn denoise"))],
)  # fmt: skip
def test_a_card_of_the_wrong_kind_is_one_line_naming_it_and_what_it_is_for(
    photo: Path, tmp_path: Path, command: str, card: str, words: tuple[str, ...]
) -> None:
    result = mdn_cli(command, photo, "-o", tmp_path / "out.png", "--model", card)
    assert result.returncode == 2
    _one_error_line(result, *words)
    assert not (tmp_path / "out.png").exists()
    with pytest.raises(MdnError, match=f"model {card} is a"):
        (mdn.denoise if command == "denoise" else mdn.denoise_zeroshot)(np.zeros((16, 16, 3), np.uint8), model=card)


def test_the_bench_refuses_a_fill_card_in_one_line() -> None:
    result = mdn_cli("bench", "--quick", "--models", "fill-grey")
    assert result.returncode == 2
    _one_error_line(result, "fill-grey: a fill card", "--zeroshot")


def test_an_unknown_output_extension_is_refused_not_made_a_folder(photo: Path, tmp_path: Path) -> None:
    result = mdn_cli("denoise", photo, "-o", tmp_path / "x.gif")
    assert result.returncode == 2
    _one_error_line(result, "x.gif", "'.gif'", ".png")
    assert not (tmp_path / "x.gif").exists()


@pytest.mark.parametrize("iters", ["0", "-3"])
def test_zeroshot_needs_at_least_one_iteration(photo: Path, tmp_path: Path, iters: str) -> None:
    result = mdn_cli("zeroshot", photo, "-o", tmp_path / "z.png", "--iters", iters)
    assert result.returncode == 2
    _one_error_line(result, "--iters must be at least 1")
    assert not (tmp_path / "z.png").exists()


def test_every_time_budget_takes_the_same_durations(photo: Path, tmp_path: Path) -> None:
    result = mdn_cli("zeroshot", photo, "-o", tmp_path / "z.png", "--iters", "3", "--time-budget", "1m", "--preset",
                     "fast")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "wrote " in result.stderr and "fill-syn" in result.stderr and result.stdout == ""
    assert mdn_cli("zeroshot", photo, "--time-budget", "soon").returncode == 2
    with pytest.raises(MdnError, match="cannot be negative"):
        mdn.denoise_zeroshot(np.zeros((16, 16, 3), np.uint8), time_budget=-1)


def test_a_usage_error_is_one_line_with_nothing_before_it(photo: Path) -> None:
    _one_error_line(mdn_cli("denoise", photo, "--no-such-option"), "--no-such-option", "mdn denoise --help")
    _one_error_line(mdn_cli("zeroshot", photo, "--iters", "many"), "--iters", "mdn zeroshot --help")
    _one_error_line(mdn_cli("noise", photo, "--type", "gausian"), "did you mean gaussian")


def test_a_failed_file_prints_its_error_alone_and_a_batch_counts_every_file(photo: Path, tmp_path: Path) -> None:
    single = mdn_cli("denoise", tmp_path / "missing.png")
    assert single.returncode == 1
    _one_error_line(single, "missing.png", "does not exist")
    missing = [tmp_path / f"gone{i}.png" for i in range(4)]
    batch = mdn_cli("noise", photo, *missing, "-o", tmp_path / "out")
    assert batch.returncode == 1
    errors = [line for line in batch.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4 and all(line.endswith("does not exist") for line in errors)
    assert "1 done, 4 failed" in batch.stderr


def test_the_files_bar_counts_failed_files_and_ends_full(monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from rich.console import Console

    from mdn.cli import report
    from mdn.io.batch import Job, Result

    screen = StringIO()
    monkeypatch.setattr(report, "console", Console(file=screen, force_terminal=True, width=100, color_system=None))
    with report.BatchProgress(5) as bar:
        for index in range(5):
            job = Job(Path(f"in{index}.png"), Path(f"out{index}.png"))
            bar.file(job)
            bar.result(Result(job.input, job.output, "done" if index == 0 else "failed"))
    frames = screen.getvalue()
    assert "in4.png (4 failed)" in frames and "5/5" in frames


def test_a_single_file_line_names_the_card_and_the_seconds(photo: Path, tmp_path: Path) -> None:
    result = mdn_cli("denoise", photo, "-o", tmp_path / "clean.png", "--model", "unet")
    assert result.returncode == 0 and result.stdout == ""  # stdout is for data; what was done goes to stderr
    line = result.stderr.strip()
    assert line.startswith(f"wrote {tmp_path / 'clean.png'} (unet, ") and line.endswith(" s)")


def test_a_single_file_line_says_what_share_of_the_change_a_strength_kept(photo: Path, tmp_path: Path) -> None:
    result = mdn_cli("denoise", photo, "-o", tmp_path / "half.png", "--model", "unet", "--strength", "0.5")
    assert result.returncode == 0 and "(unet, kept 50 % of the change, " in result.stderr


# -------------------------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_a_photos_exif_profile_xmp_and_dpi_are_kept_in_every_photo_format(
    photo: Path, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"clean{suffix}"
    assert mdn_cli("denoise", photo, "-o", out, "--model", "unet").returncode == 0
    again = tmp_path / "again.jpg"  # read back from this format into a JPEG: the packet travels both ways
    assert mdn_cli("noise", out, "-o", again).returncode == 0
    with Image.open(again) as image:
        assert image.info.get("xmp") == XMP
    assert XMP in out.read_bytes()
    with Image.open(out) as image:
        assert _camera(image) == ("Canon", "EOS R5", "Firmware 1.8")
        assert image.info.get("icc_profile") == ICC
        if suffix != ".webp":  # WebP has no resolution field
            assert [round(d) for d in image.info["dpi"]] == [300, 300]
        if suffix != ".tif":  # TIFF keeps EXIF's first-directory fields, not its sub-directory
            assert image.getexif().get_ifd(0x8769)[EXPOSURE] == pytest.approx(0.004)


def test_a_pngs_text_and_dpi_survive_and_a_tiffs_tags_and_profile(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ann")
    info.add_itxt("Title", "Straße im Regen")
    Image.fromarray(pixels).save(tmp_path / "a.png", pnginfo=info, dpi=(150, 150), icc_profile=ICC)
    assert mdn_cli("noise", tmp_path / "a.png", "-o", tmp_path / "b.png").returncode == 0
    with Image.open(tmp_path / "b.png") as image:
        assert image.text == {"Author": "Ann", "Title": "Straße im Regen"}
        assert [round(d) for d in image.info["dpi"]] == [150, 150] and image.info["icc_profile"] == ICC
    tifffile.imwrite(tmp_path / "c.tif", pixels, photometric="rgb", iccprofile=ICC, resolution=(72, 72),
                     resolutionunit="INCH", extratags=[(271, "s", 0, "Nikon", True)], software="Capture")  # fmt: skip
    assert mdn_cli("noise", tmp_path / "c.tif", "-o", tmp_path / "d.tif").returncode == 0
    with tifffile.TiffFile(tmp_path / "d.tif") as tif:
        tags = tif.pages.first.tags
        assert tags[271].value == "Nikon" and tags[305].value == "Capture" and bytes(tags[34675].value) == ICC


# -------------------------------------------------------------------------------------- tables and help


def test_the_models_table_reads_at_80_columns() -> None:
    result = mdn_cli("models", columns=80)
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and max(map(len, lines)) <= 80
    cards = mdn.models()
    assert len(lines) <= len(cards) + 3
    rows = {line.split()[0]: line for line in lines[1:] if line.split() and line.split()[0] in {c.name for c in cards}}
    assert set(rows) == {card.name for card in cards}  # every name whole
    assert "40,000" in rows["unet"]  # all the sittings' steps, not the last one's
    default = next(card for card in cards if card.default)
    assert "impulses → network → texture" in rows[default.name] and " default " in rows[default.name]
    assert " grey " in rows[default.grey]  # the network its grey pictures run through
    wide = mdn_cli("models", columns=120).stdout
    assert "impulses → network → texture → Wiener: U-Net" in wide  # what it runs, then what it is


def test_tables_on_a_pipe_cut_nothing() -> None:
    lines = mdn_cli("models", columns=None).stdout.splitlines()
    assert not any("…" in line for line in lines)
    assert any("MPI fill network (grey-fast), pre-trained on 30% one shared mask" in line for line in lines)


def test_models_show_is_a_short_summary_and_json_on_request() -> None:
    summary = mdn_cli("models", "show", "unet-dct-practical").stdout.splitlines()
    assert 5 <= len(summary) <= 15 and "the default of mdn denoise" in summary[0]
    assert any("impulses → network → texture → Wiener" in line for line in summary)
    assert '"architecture": "unet"' in mdn_cli("models", "show", "unet-dct-practical", "--json").stdout
    forced = subprocess.run(  # CI sets FORCE_COLOR: the JSON had come out coloured, and invalid
        [sys.executable, "-m", "mdn", "models", "show", "unet", "--json"], capture_output=True, text=True,
        env=os.environ | {"FORCE_COLOR": "1"}, timeout=600,
    )  # fmt: skip
    assert json.loads(forced.stdout)["name"] == "unet"


@pytest.mark.parametrize("command", ["denoise", "zeroshot", "noise", "train", "bench", "models show"])
def test_help_lists_choices_and_defaults_and_no_type_names(command: str) -> None:
    text = mdn_cli(*command.split(), "--help", columns=120).stdout
    for placeholder in ("<bool>", "<list[str]>", "images_", "╭", "{"):  # typer's {NAME} for a required argument
        assert placeholder not in text, f"mdn {command} --help shows {placeholder}"
    choices = {
        "denoise": ["<auto|fp32|bf16|fp16>", "<auto|cpu|cuda[:N]|mps>", "[default: the card mdn models marks"],
        "zeroshot": ["<full|fast|real|microscopy>", "<mpi|zs-n2n>", "90s"],
        "noise": ["--type <type>", "[choices: gaussian, speckle, poisson,"],
        "train": ["<denoise|fill|self-supervised|render>", "<step|cosine>", "9m", "<auto|cpu|cuda[:N]>"],
        "bench": ["[IMAGES]..."],
        "models show": ["--json", "models show [OPTIONS] NAME"],
    }[command]
    words = " ".join(text.split())  # the help wraps at 80 columns
    assert all(choice in words for choice in choices), text


def test_version_answers_without_loading_torch() -> None:
    code = (
        "import sys; from mdn.cli import main; sys.argv = ['mdn', '--version']; main(); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["mdn", mdn.__version__, "False"]


# ------------------------------------------------------------------------------------------------- API


def test_the_api_shows_what_it_is() -> None:
    assert [name for name in dir(mdn) if not name.startswith("_")] == sorted(mdn.__all__)
    model = mdn.load_model("unet")
    assert repr(model) == f"Model('unet', unet, {model.card.parameters:,} parameters, cpu)"
    assert repr(model.card) == "ModelCard('unet', task='denoise', architecture='unet')"
    with pytest.raises(MdnError, match="fill card"):
        mdn.load_model("fill-grey", task="denoise")
    assert mdn.load_model("fill-grey").card.task == "fill"


def test_threads_in_the_api_hold_for_the_call_alone() -> None:
    import torch

    before = torch.get_num_threads()
    seen = []
    mdn.denoise(
        np.zeros((16, 16, 3), np.uint8), "unet", threads=1, progress=lambda *_: seen.append(torch.get_num_threads())
    )
    assert seen and set(seen) == {1} and torch.get_num_threads() == before


def test_brackets_in_paths_and_names_are_printed_as_they_are(tmp_path: Path) -> None:
    folder = tmp_path / "shots [a]"
    folder.mkdir()
    (folder / "bad.png").write_bytes(b"not a png")
    failed = mdn_cli("denoise", folder / "bad.png", "--threads", "1", columns=None)
    assert failed.returncode == 1 and "shots [a]/bad.png: cannot read PNG" in failed.stderr
    shown = mdn_cli("models", "show", "[/draft]", columns=None)
    assert shown.returncode == 2 and "unknown model '[/draft]'" in shown.stderr and "Traceback" not in shown.stderr


@pytest.mark.parametrize("columns", [None, 40])
def test_the_batch_summary_never_cuts_a_path(tmp_path: Path, columns: int | None) -> None:
    """Into a log (a batch system's, nohup's) the table is read whole; in a narrow terminal a path is folded."""
    folder = tmp_path / ("acquisition_2024_11_29_of_the_long_folder_names" * 2)  # 192 characters a row and more
    folder.mkdir()
    names = [f"sample_plate_07_well_B0{i}_channel_dapi_z000.png" for i in (1, 2)]
    for name in names:
        Image.fromarray(np.full((16, 16), 128, np.uint8)).save(folder / name)
    result = mdn_cli("noise", folder.name, "-o", "out", columns=columns, cwd=tmp_path)
    assert result.returncode == 0 and "…" not in result.stderr, result.stderr
    rows = [line.split("│") for line in result.stderr.splitlines() if line.startswith("│")]
    inputs = "".join(row[1].strip() for row in rows)  # a folded cell's pieces, one under the other
    assert inputs == "".join(f"{folder.name}/{name}" for name in names), result.stderr
    if columns is None:  # a log: each path whole on its row, for grep, and on its line as it was done
        table = [line for line in result.stderr.splitlines() if line.startswith("│")]
        assert [len(rows), *(sum(f"{folder.name}/{n}" in line for line in table) for n in names)] == [2, 1, 1]
        lines = [line for line in result.stderr.splitlines() if re.match(r"\d+/\d+ ", line)]
        assert len(lines) == 2 and all(
            re.fullmatch(rf"{k}/2 done: {re.escape(f'{folder.name}/{n}')} \(\d+\.\d s\)", line)
            for k, n, line in zip((1, 2), names, lines, strict=True)
        ), lines


def test_a_name_no_text_encoding_holds_keeps_the_summary_table_aligned(tmp_path: Path) -> None:
    """A file name with the byte 0xFF was measured one column wide and printed six, pushing its row out."""
    folder = tmp_path / "in"
    folder.mkdir()
    picture = io.BytesIO()
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(picture, "PNG")
    for name in (b"plain.png", b"x\xff.png"):
        (Path(os.fsdecode(os.fsencode(folder) + b"/" + name))).write_bytes(picture.getvalue())
    result = mdn_cli("noise", "in", "-o", "out", "--threads", "1", cwd=tmp_path)
    assert result.returncode == 0 and "in/x\\xff.png" in result.stderr, result.stderr
    table = [line for line in result.stderr.splitlines() if line[:1] in "┏┃┡│└"]
    assert len(table) == 6 and len({len(line) for line in table}) == 1, result.stderr
    assert os.path.exists(os.fsencode(tmp_path) + b"/out/x\xff.png")  # the file keeps its own name


def test_control_characters_in_names_neither_reach_the_terminal_nor_split_a_line(tmp_path: Path) -> None:
    """A name's escape sequence coloured the terminal in the wrote line; a newline split a one-line error."""
    picture = io.BytesIO()
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(picture, "PNG")
    (tmp_path / "e\x1b[31mRED.png").write_bytes(picture.getvalue())
    (tmp_path / "bad\nname.png").write_bytes(b"not a PNG")
    wrote = mdn_cli("noise", "e\x1b[31mRED.png", "--threads", "1", cwd=tmp_path)
    assert wrote.returncode == 0 and "wrote e\\x1b[31mRED_noisy.png" in wrote.stderr, wrote.stderr
    failed = mdn_cli("noise", "bad\nname.png", "--threads", "1", cwd=tmp_path)
    errors = [line for line in failed.stderr.splitlines() if line.strip()]
    assert failed.returncode == 1 and errors == [
        "error: bad\\nname.png: cannot read PNG (corrupt or truncated?): not a PNG image"
    ], failed.stderr
    assert "\x1b" not in wrote.stdout + wrote.stderr + failed.stderr


class _InterruptedImport:
    """A finder that is Ctrl-C'd while the app's module loads (torch's import takes a second or two)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "mdn.cli.commands":
            raise KeyboardInterrupt


def test_ctrl_c_while_the_app_loads_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A Ctrl-C in the first second and a half printed 64 lines of traceback from torch's import."""
    import mdn.cli

    monkeypatch.delitem(sys.modules, "mdn.cli.commands", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport(), *sys.meta_path])
    monkeypatch.setattr(sys, "argv", ["mdn", "denoise", "photo.png"])
    with pytest.raises(SystemExit) as stopped:
        mdn.cli.main()
    assert stopped.value.code == 130 and capsys.readouterr().err == "interrupted before any work\n"


def test_a_card_name_without_show_says_how_to_show_it() -> None:
    """`mdn models unet` said "No such command 'unet'" and no more."""
    result = mdn_cli("models", "unet")
    assert result.returncode == 2
    _one_error_line(result, "mdn models show unet")
