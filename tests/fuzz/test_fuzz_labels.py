"""``labels.csv`` under fuzzed text: ``check_dataset`` reports, it never raises or reads outside the folder.

Generated tables mix good rows with BOMs, CRLF, quotes, missing and extra columns, duplicate ids,
ids with path separators or ``..``, labels that are not 0/1 and non-UTF-8 bytes. Contract: a
``CheckReport`` whose errors name a file (``labels.csv`` with its line, or the image) and whose rows
all resolve inside the folder; the loader then either loads or raises ``DatasetError``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (pip install -e '.[dev]')")

from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgecalc.data.dataset import DatasetError, check_dataset, load_dataset  # noqa: E402

IDS = ["a", "b", "c", "../a", "a/../b", "/etc/passwd", "..", "", " a ", "a\x00", "ü", "x" * 300]
LABELS = ["0", "1", "", "2", "-1", "yes", "1.0", '"1"']


@st.composite
def label_tables(draw) -> bytes:
    header = draw(st.sampled_from(["id,calcification", "id,calcification,patient", "calcification,id", "id",
                                   "id,calcification,path", "ID,Calcification", ""]))
    rows = [header]
    for _ in range(draw(st.integers(0, 8))):
        cells = [draw(st.sampled_from(IDS)), draw(st.sampled_from(LABELS))]
        if draw(st.booleans()):
            cells.append(draw(st.sampled_from(["P1", "images/a.png", "../outside.png", "/abs.png", '"q,uote"'])))
        rows.append(",".join(cells))
    text = draw(st.sampled_from(["\n", "\r\n"])).join(rows)
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data  # BOM
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.sampled_from([b"\xff\xfe", b"\x80", b"\x00", b'"'])) + data[pos:]
    return data


@given(label_tables())
@example(b"\xef\xbb\xbfid,calcification\r\na,1\r\na,0\r\n")  # BOM, CRLF, a duplicate id
@example(b"id,calcification\n../a,1\n")  # an id that climbs out of the folder
@example(b"id,calcification\na\x00,0")  # found by this test: a NUL byte in an id crashed the check
@example(b"id,calcification\n" + b"x" * 300 + b",0")  # found by this test: a name too long for the file system
@example(b'\xef\xbb\xbfcalcification,id\n"a,0')  # found by the long profile: an unclosed quote left id None
def test_check_dataset_reports_and_never_leaves_the_folder(tmp_path_factory, table):
    root = tmp_path_factory.mktemp("ds")
    (root / "images").mkdir()
    for sid in ("a", "b", "c"):
        cv2.imwrite(str(root / "images" / f"{sid}.png"), np.full((8, 8), 100, np.uint8))
    (root.parent / "outside.png").write_bytes(b"not for us")
    (root / "labels.csv").write_bytes(table)
    rep = check_dataset(root)
    for problem in rep.errors + rep.warnings:
        assert problem.file and problem.reason
    for row in rep.rows:
        assert root.resolve() in __import__("pathlib").Path(row["_image"]).resolve().parents
    try:
        load_dataset(root, 16)
    except DatasetError as exc:
        assert str(root) in str(exc)
