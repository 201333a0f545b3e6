"""tests/chapter_outputs.py: the comparison of two executed copies of the chapters."""
from __future__ import annotations

import nbformat
from chapter_outputs import compare
from nbformat.v4 import new_code_cell, new_notebook, new_output


def _write(folder, outputs, code=("print(x)", "y")):
    folder.mkdir()
    cells = []
    for src, text, tagged in zip(code, outputs, (True, False), strict=True):
        c = new_code_cell(src, outputs=[new_output("stream", name="stdout", text=text)])
        if tagged:
            c.metadata["tags"] = ["nbval-check-output"]
        cells.append(c)
    nbformat.write(new_notebook(cells=cells), folder / "01_demo.ipynb")
    return folder


def test_checked_cells_must_print_the_same_after_nbval_sanitizing(tmp_path):
    a = _write(tmp_path / "a", ["rel L2 0.154 in 12.5 ms\n", "anything\n"])
    # a timing differs (sanitized) and an unchecked cell differs: no difference
    n, problems = compare(a, _write(tmp_path / "b", ["rel L2 0.154 in 3 ms\n", "else\n"]))
    assert (n, problems) == (1, [])
    n, problems = compare(a, _write(tmp_path / "c", ["rel L2 0.155 in 12.5 ms\n", "anything\n"]))
    assert n == 1 and len(problems) == 1 and "01_demo.ipynb, code cell 0" in problems[0]
    assert "rel L2 0.155 in TIME" in problems[0]
    _, problems = compare(a, _write(tmp_path / "d", ["rel L2 0.154\n", "anything\n"], code=("print(z)", "y")))
    assert problems == ["01_demo.ipynb: the two copies hold different code"]
    assert compare(tmp_path / "d", tmp_path / "nowhere")[1] == [f"01_demo.ipynb: missing in {tmp_path / 'nowhere'}"]
    assert compare(tmp_path / "nowhere", a) == (0, [f"no executed chapters in {tmp_path / 'nowhere'}"])
