"""Synthetic ADEME « DPE tertiaire » records in the official 63-column format.

The generator makes the fixtures of the tests that must pass on a fresh clone and the
1M-row data of the benchmarks, so it must look like what ADEME serves: official column
names and order, text where the export holds text, codes with their leading zeros,
ISO dates, nulls and placeholders at the real rates, labels on the official scales.

Every constant (tooling.synth_tables) was measured once on the real 2,200-record sample
(`../shared/data/dpe_tertiaire_sample.csv`, pulled March–April 2024); they live in the
code because a fresh clone has no access to that sample.

How a record is drawn (all vectorised with numpy, block by block):
1. its kind: (Version_DPE, Méthode_du_DPE, status) from their joint frequencies, where the
   status is `measured` (a real consumption and label), `placeholder` (consumption 0.1,
   label A: « vierge » diagnostics and many v1.0 ones) or `unlabelled` (no consumption);
2. the building (sector, ERP category, period, year, surfaces, occupants) given the status;
3. its energies, then its consumption: a heavy-tailed distribution matching the real one,
   shifted a little by sector, period, main energy, surface and « neuf », so building-only
   features carry some signal, as they do in the real data;
4. its labels: a scale family drawn given the sector (the real labels often follow
   another family than the one the regulation assigns), then the official thresholds.

Blocks of `BLOCK_ROWS` rows each have their own random stream, seeded by (seed, block):
the same (n, seed) gives the same records whether generated at once or written in chunks.
"""

import csv
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from tooling.synth_location import (
    admin_columns,
    draw_dates,
    draw_location,
)
from tooling.synth_parts import (
    ScaleShift,
    draw_building,
    draw_energies,
    draw_kind,
    draw_performance,
    energy_columns,
    heating_column,
    sector_choice,
    shift_scales,
)
from tooling.synth_tables import (
    API_INTEGER_TEXT,
    BLOCK_ROWS,
    INTEGER_COLUMNS,
    NUMBER_COLUMNS,
    OFFICIAL_COLUMNS,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def generate_records(
    n: int,
    seed: int = 0,
    *,
    sector_weights: dict[str, float] | None = None,
    surface_scale: float = 1.0,
    scale_shift: ScaleShift | None = None,
) -> pd.DataFrame:
    """`n` synthetic records in the official 63-column format (official names and order).

    Text columns are object columns of str (null: None), number columns float64 (null: NaN).
    `sector_weights` replaces the sector distribution (any sector name, weights >= 0), and
    `surface_scale` multiplies every surface (the 100.0 placeholder too, so a shifted set
    differs on every record): both make shifted data for drift tests. `scale_shift` makes
    the scale diagnosticians use change with the diagnostic date (`ScaleShift`); the
    records are otherwise the same as without it.
    """
    blocks = list(_blocks(n, seed, sector_weights, surface_scale, scale_shift))
    if not blocks:
        return _empty_frame()
    return pd.concat(blocks, ignore_index=True)


def write_csv(
    path,
    n: int,
    seed: int = 0,
    *,
    chunk_rows: int = 200_000,
    sector_weights: dict[str, float] | None = None,
    surface_scale: float = 1.0,
    scale_shift: ScaleShift | None = None,
) -> Path:
    """Write `generate_records(n, seed, ...)` as an ADEME CSV export (UTF-8, `,`, quoted
    where needed), `chunk_rows` records at a time so memory stays flat whatever `n`."""
    blocks = _blocks(n, seed, sector_weights, surface_scale, scale_shift)
    # Chunks are whole blocks, so the file is the same whatever chunk_rows.
    blocks_per_chunk = max(1, math.ceil(chunk_rows / BLOCK_ROWS))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pending: list[pd.DataFrame] = []
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        _csv_frame(_empty_frame()).to_csv(handle, index=False, lineterminator="\n")
        for block in blocks:
            pending.append(block)
            if len(pending) == blocks_per_chunk:
                written += _append_csv(handle, pending)
                log.info("generate: %d / %d rows", written, n)
                pending = []
        if pending:
            written += _append_csv(handle, pending)
    log.info("generate: %d rows written to %s", written, path)
    return path


def to_api_pages(
    frame: pd.DataFrame, page_size: int = 100, base_url: str = "http://127.0.0.1/lines"
) -> list[dict]:
    """Split records into ADEME data-fair API pages: `{"total", "next", "results"}`.

    As the API does, a null field is absent from its record, integers are JSON integers, and
    `next` is the cursor URL of the following page (None on the last one). Each record
    carries `_i`, the position the cursor points after.
    """
    if page_size < 1:
        raise ValueError("page_size must be >= 1")
    records = _api_records(frame)
    pages = []
    for start in range(0, len(records), page_size):
        results = records[start : start + page_size]
        last = start + page_size >= len(records)
        cursor = results[-1]["_i"]
        next_url = None if last else f"{base_url}?size={page_size}&format=json&after={cursor}"
        pages.append({"total": len(records), "next": next_url, "results": results})
    return pages or [{"total": 0, "next": None, "results": []}]


# ---------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------


def _blocks(n, seed, sector_weights, surface_scale, scale_shift) -> Iterator[pd.DataFrame]:
    """The records block by block; arguments are checked now, before any block is made."""
    if n < 0 or seed < 0:
        raise ValueError("n and seed must be >= 0")
    if not surface_scale > 0:
        raise ValueError("surface_scale must be > 0")
    return _generate_blocks(n, seed, sector_choice(sector_weights), surface_scale, scale_shift)


def _generate_blocks(n, seed, sectors, surface_scale, scale_shift) -> Iterator[pd.DataFrame]:
    for start in range(0, n, BLOCK_ROWS):
        rng = np.random.default_rng([seed, start // BLOCK_ROWS])
        rows = np.arange(start, min(n, start + BLOCK_ROWS), dtype=np.int64)
        yield _block(rng, seed, rows, sectors, surface_scale, scale_shift)


def _block(rng, seed, rows, sectors, surface_scale, scale_shift) -> pd.DataFrame:
    n = len(rows)
    version, methode, status = draw_kind(rng, n)
    building = draw_building(rng, status, version, methode, sectors, surface_scale)
    energies = draw_energies(rng, status)
    performance = draw_performance(rng, status, methode, building, energies)
    dates = draw_dates(rng, version)
    if scale_shift is not None:  # its own stream: every other value stays as without it
        shift_rng = np.random.default_rng([seed, int(rows[0]) // BLOCK_ROWS, 1])
        established = dates.columns["Date_établissement_DPE"]
        sectors_drawn = building.columns["Secteur_activité"]
        shift_scales(shift_rng, scale_shift, sectors_drawn, established, performance)
    location = draw_location(rng, n)
    columns = {
        **admin_columns(rng, seed, rows, version, methode, dates, location),
        **dates.columns,
        **performance,
        **building.columns,
        **heating_column(rng, status, version, energies),
        **location.columns,
        **energy_columns(rng, status, building, energies, performance, dates),
    }
    return pd.DataFrame({name: _column(name, columns[name]) for name in OFFICIAL_COLUMNS})


def _column(name, values) -> pd.Series:
    if name in NUMBER_COLUMNS:
        return pd.Series(np.asarray(values, dtype=float))
    # Object columns of Python str: building Arrow strings would double the generation time.
    return pd.Series(np.asarray(values, dtype=object), dtype=object)


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({name: _column(name, []) for name in OFFICIAL_COLUMNS})


# ---------------------------------------------------------------------------------------
# Output formats
# ---------------------------------------------------------------------------------------


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns printed as ADEME prints them (2007, not 2007.0)."""
    return frame.astype({name: "Int64" for name in INTEGER_COLUMNS if name in frame})


def _append_csv(handle, blocks: list[pd.DataFrame]) -> int:
    frame = pd.concat(blocks, ignore_index=True)
    _csv_frame(frame).to_csv(
        handle, header=False, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL
    )
    return len(frame)


def _api_records(frame: pd.DataFrame) -> list[dict]:
    columns = {name: _api_values(name, frame[name]) for name in frame.columns}
    records = []
    for position in range(len(frame)):
        record = {}
        for name, values in columns.items():
            value = values[position]
            if value is not None:
                record[name] = value
        record["_i"] = position + 1
        records.append(record)
    return records


def _api_values(name: str, series: pd.Series) -> list:
    """JSON-ready values of one column, None for nulls."""
    values = series.astype(object).where(series.notna(), None).tolist()
    if name in INTEGER_COLUMNS:
        return [None if v is None else int(v) for v in values]
    if name in NUMBER_COLUMNS:
        return [None if v is None else float(v) for v in values]
    if name in API_INTEGER_TEXT:
        return [int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in values]
    return values
