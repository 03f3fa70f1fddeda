"""Join phantom data sets into one (ids prefixed per source) — for training one encoder on several
imaging settings at once (domain randomisation). One-off for docs/real-data.md.

    python docs/experiments/merge_phantoms.py OUT SRC1 SRC2 ...
"""
from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path


def merge(final: Path, sources: list[Path]) -> None:
    """Writes into FINAL.partial and renames it at the end: an interrupted merge leaves no half set at FINAL."""
    if final.exists():
        raise SystemExit(f"{final} exists; remove it first")
    out = final.with_name(final.name + ".partial")
    if out.exists():
        shutil.rmtree(out)  # a merge interrupted earlier
    for sub in ("images", "masks", "nodules"):
        (out / sub).mkdir(parents=True)
    rows, meta, fields = [], [], None
    for k, src in enumerate(sources):
        prefix = f"s{k}-"
        with open(src / "labels.csv", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = fields or reader.fieldnames
            if reader.fieldnames != fields:
                raise SystemExit(f"{src}/labels.csv: columns {reader.fieldnames} differ from {fields}")
            for r in reader:
                rows.append({**r, "id": prefix + r["id"]})
                for sub in ("images", "masks", "nodules"):
                    f = src / sub / f"{r['id']}.png"
                    if f.is_file():
                        shutil.copy2(f, out / sub / f"{prefix}{r['id']}.png")
        for line in (src / "meta.jsonl").read_text().splitlines():
            m = json.loads(line)
            meta.append(json.dumps({**m, "id": prefix + m["id"]}, sort_keys=True))
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    (out / "meta.jsonl").write_text("\n".join(meta) + "\n")
    shutil.copy2(sources[0] / "phantom.json", out / "phantom.json")
    (out / "merged_from.json").write_text(json.dumps([str(s) for s in sources], indent=1))
    out.rename(final)
    print(f"wrote {len(rows)} crops from {len(sources)} sets to {final}")


if __name__ == "__main__":
    merge(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
