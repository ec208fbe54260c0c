"""The results database of a study: ``DIR/study.sqlite`` (SQLite, standard library).

One row per case in the table ``cases``: ``case_id``, every swept parameter, every scalar
metric (dotted names, see :func:`electrofem.studies.cases.flatten_metrics`), ``status``
(done | failed), ``error``, ``wall_time_s``, ``version`` and ``folder``. The table
``columns`` says which column is a parameter, a metric or bookkeeping. Columns are added as new
names appear (a value list, e.g. ``discharge.c_rates``, is stored as its JSON text).

Only the study's parent process writes (as each case completes), one transaction per row, in
WAL mode, so readers (``--report``, :func:`load_results`) may open it while a study runs.
The case folders' ``result.json`` files hold the same records: the database can be rebuilt
from them (:func:`electrofem.studies.runner.run_study` does so for any row it misses).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

DB_FILE = "study.sqlite"
META_COLUMNS = ("case_id", "status", "error", "wall_time_s", "version", "folder")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _value(v):
    if isinstance(v, list | dict):
        return json.dumps(v)
    return v


class ResultsDB:
    """The study database (open with :func:`open_db`; the parent process only writes)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, timeout=30.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        with self.conn:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS cases (case_id TEXT PRIMARY KEY, status TEXT, "
                "error TEXT, wall_time_s REAL, version TEXT, folder TEXT)"
            )
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS columns (name TEXT PRIMARY KEY, kind TEXT, "
                "position INTEGER)"
            )
        self._columns = self.columns()

    def columns(self) -> dict[str, str]:
        """``{column: kind}`` in the order the columns were added (kind: meta, param,
        metric)."""
        rows = self.conn.execute("SELECT name, kind FROM columns ORDER BY position").fetchall()
        return {**dict.fromkeys(META_COLUMNS, "meta"), **dict(rows)}

    def _add_columns(self, names, kind: str) -> None:
        new = [n for n in names if n not in self._columns]
        for n in new:
            pos = len(self._columns)
            self.conn.execute(f"ALTER TABLE cases ADD COLUMN {_quote(n)}")
            self.conn.execute("INSERT INTO columns VALUES (?, ?, ?)", (n, kind, pos))
            self._columns[n] = kind

    def write(self, record: dict) -> None:
        """Insert or replace one case's row (one transaction)."""
        params, metrics = record.get("params", {}), record.get("metrics", {})
        with self.conn:
            self._add_columns(params, "param")
            self._add_columns([m for m in metrics if m not in params], "metric")
            row = {k: record.get(k) for k in META_COLUMNS}
            row.update({k: _value(v) for k, v in metrics.items() if k not in params})
            row.update({k: _value(v) for k, v in params.items()})
            names = ", ".join(_quote(k) for k in row)
            marks = ", ".join("?" for _ in row)
            self.conn.execute(
                f"INSERT OR REPLACE INTO cases ({names}) VALUES ({marks})", list(row.values())
            )

    def case_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT case_id FROM cases")}

    def rows(self) -> list[dict]:
        """Every row as a dict (NULL columns left out), in insertion order."""
        cur = self.conn.execute("SELECT * FROM cases ORDER BY rowid")
        names = [d[0] for d in cur.description]
        return [
            {k: v for k, v in zip(names, r, strict=True) if v is not None} for r in cur.fetchall()
        ]

    def close(self) -> None:
        self.conn.close()


def open_db(study_dir: str | Path) -> ResultsDB:
    """The database of the study folder ``study_dir`` (created if missing)."""
    return ResultsDB(Path(study_dir) / DB_FILE)


def load_results(study_dir: str | Path, frame: bool = False):
    """The results of the study in ``study_dir``: a list of dicts, one per case (its
    ``case_id``, parameters, metrics, ``status``, ``error``, ``wall_time_s``, ``version``,
    ``folder``); with ``frame=True`` a pandas DataFrame (pandas must be installed).

    Example::

        from electrofem.studies import load_results
        rows = load_results("study-out")
        done = [r for r in rows if r["status"] == "done"]
    """
    path = Path(study_dir) / DB_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{study_dir}: no {DB_FILE} (not a study folder?)")
    db = ResultsDB(path)
    try:
        rows, cols = db.rows(), db.columns()
    finally:
        db.close()
    if not frame:
        return rows
    import pandas as pd

    return pd.DataFrame(rows, columns=[c for c in cols if any(c in r for r in rows)])


def column_kinds(study_dir: str | Path) -> dict[str, str]:
    """``{column: meta | param | metric}`` of the study's database."""
    db = ResultsDB(Path(study_dir) / DB_FILE)
    try:
        return db.columns()
    finally:
        db.close()
