"""The byte-mutation strategy the fuzz readers share: a valid seed file, bytes overwritten and/or cut."""

from __future__ import annotations

from hypothesis import strategies as st


def mutated_bytes(seeds: dict[str, bytes], header_bytes: int | None = None) -> st.SearchStrategy[tuple[str, bytes]]:
    """(seed name, bytes): up to 8 bytes overwritten anywhere (or, with ``header_bytes``, also only
    within the header, where a reader's decisions are made), cut at any length, both, or untouched."""
    names = sorted(seeds)
    hows = ["flip", "flip-header", "truncate", "both", "none"] if header_bytes else ["flip", "truncate", "both", "none"]

    @st.composite
    def strategy(draw) -> tuple[str, bytes]:
        name = draw(st.sampled_from(names))
        data = bytearray(seeds[name])
        how = draw(st.sampled_from(hows))
        if how in ("flip", "flip-header", "both"):
            top = min(header_bytes, len(data)) if how == "flip-header" and header_bytes else len(data)
            for _ in range(draw(st.integers(1, 8))):
                i = draw(st.integers(0, top - 1))
                data[i] = draw(st.integers(0, 255))
        if how in ("truncate", "both"):
            data = data[: draw(st.integers(0, len(data)))]
        return name, bytes(data)

    return strategy()
