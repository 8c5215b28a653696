"""Reads a transaction lake with the tools data people use and checks it holds exactly a file's rows.

    python read_lake.py FILE.csv.gz LAKE [--s3-endpoint URL --bucket B --prefix P]

LAKE is a local directory (read with DuckDB and with pyarrow.dataset) or, with --s3-endpoint, the lake under
s3://B/P on an S3-protocol server (read with pyarrow's own S3 filesystem; DuckDB's S3 support is an extension it
downloads, which this machine cannot). For each reader: every transaction of FILE is in `transactions` once with
the same time, card, terminal and amount, every label in `labels` once with the file's outcome, nothing else, and
every row real (`synthetic` false: FILE is replayed real traffic). Files written before the `synthetic` column
existed have none: the readers are told to unify the files' columns (pyarrow: one schema from every file's,
DuckDB: `union_by_name`), and a row without the flag counts as real, as the lake's own reader takes it.
Prints one line per check; exit status 1 if any fails.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import sys
from datetime import datetime

import pyarrow as pa
import pyarrow.dataset as ds

parser = argparse.ArgumentParser()
parser.add_argument("file")
parser.add_argument("lake")
parser.add_argument("--s3-endpoint")
args = parser.parse_args()

expected: dict[int, tuple] = {}
with gzip.open(args.file, "rt") as f:
    reader = csv.DictReader(f)
    for row in reader:
        row = {k.strip().lower(): v for k, v in row.items()}
        expected[int(row["transaction_id"])] = (
            datetime.strptime(row["tx_datetime"], "%Y-%m-%d %H:%M:%S"),
            int(row["customer_id"]),
            int(row["terminal_id"]),
            float(row["tx_amount"]),
            row["tx_fraud"] in ("1", "true", "True"),
        )
failures = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} [lake readers] {name}{'' if ok else f': {detail}'}", flush=True)
    if not ok:
        failures.append(name)


def unified(make):
    """The dataset `make(schema)` opens, with every column of any of its files: a dataset takes its first
    file's columns, and a file from before `synthetic` has one column less."""
    first = make(None)
    return make(pa.unify_schemas([f.physical_schema for f in first.get_fragments()] + [first.partitioning.schema]))


def real_rows(reader: str, table: str, flags: list) -> None:
    """Every row real: `synthetic` false, or null where a file predates the column."""
    marked = sum(1 for flag in flags if flag)
    check(f"{reader}: every {table} row real (synthetic false or absent)", marked == 0, f"{marked} marked synthetic")


def synthetic_flags(table) -> list:
    return table.column("synthetic").to_pylist() if "synthetic" in table.column_names else [None] * table.num_rows


def compare(reader: str, transactions: list[tuple], labels: list[tuple]) -> None:
    ids = [t[0] for t in transactions]
    check(f"{reader}: {len(expected)} transactions, each once", len(ids) == len(expected) == len(set(ids)),
          f"{len(ids)} rows, {len(set(ids))} distinct, {len(expected)} expected")
    wrong = [t for t in transactions if expected.get(t[0], (None,))[:4] != tuple(t[1:5])]
    check(f"{reader}: every transaction's time, card, terminal and amount as in the file", not wrong, str(wrong[:3]))
    label_ids = [label[0] for label in labels]
    check(f"{reader}: {len(expected)} labels, each once", len(label_ids) == len(expected) == len(set(label_ids)),
          f"{len(label_ids)} rows, {len(set(label_ids))} distinct")
    wrong = [label for label in labels if expected.get(label[0], (None,) * 5)[4] != label[1]]
    check(f"{reader}: every label's outcome as in the file", not wrong, str(wrong[:3]))


def rows(table, columns):
    data = table.select(columns).to_pydict()
    return list(zip(*(data[c] for c in columns)))


TX = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
if args.s3_endpoint:
    from pyarrow import fs

    url = args.s3_endpoint.split("://", 1)
    s3 = fs.S3FileSystem(endpoint_override=url[1], scheme=url[0], access_key=os.environ["AWS_ACCESS_KEY_ID"],
                         secret_key=os.environ["AWS_SECRET_ACCESS_KEY"], region=os.environ.get("AWS_REGION", "us-east-1"))
    root = args.lake.removeprefix("s3://")

    def s3_table(name: str):
        # The files listed first: a HEAD on a "folder" key is not something every S3 server answers.
        base = f"{root}/{name}"
        files = [i.path for i in s3.get_file_info(fs.FileSelector(base, recursive=True)) if i.path.endswith(".parquet")]
        return unified(lambda schema: ds.dataset(files, filesystem=s3, format="parquet", schema=schema,
                                                 partitioning=ds.partitioning(flavor="hive"),
                                                 partition_base_dir=base)).to_table()

    tx, lb = s3_table("transactions"), s3_table("labels")
    compare("pyarrow (S3)", rows(tx, TX), rows(lb, ["transaction_id", "tx_fraud"]))
    real_rows("pyarrow (S3)", "transactions", synthetic_flags(tx))
    real_rows("pyarrow (S3)", "labels", synthetic_flags(lb))
    check("pyarrow (S3): dt is the transaction's day",
          all(str(t.date()) == d for t, d in rows(tx, ["tx_datetime", "dt"])))
else:
    import duckdb

    def local_table(name: str):
        return unified(lambda schema: ds.dataset(f"{args.lake}/{name}", format="parquet", partitioning="hive",
                                                 schema=schema)).to_table()

    tx, lb = local_table("transactions"), local_table("labels")
    compare("pyarrow", rows(tx, TX), rows(lb, ["transaction_id", "tx_fraud"]))
    real_rows("pyarrow", "transactions", synthetic_flags(tx))
    real_rows("pyarrow", "labels", synthetic_flags(lb))
    con = duckdb.connect()
    glob = f"{args.lake}/{{}}/*/*.parquet"
    # union_by_name: a file from before `synthetic` has no such column (NULL here, real).
    options = "hive_partitioning = true, union_by_name = true"
    dtx = con.execute(f"SELECT {', '.join(TX)} FROM read_parquet('{glob.format('transactions')}', {options})"
                      ).fetchall()
    dlb = con.execute(f"SELECT transaction_id, tx_fraud FROM read_parquet('{glob.format('labels')}', {options})"
                      ).fetchall()
    compare("DuckDB", dtx, dlb)
    for name in ("transactions", "labels"):
        flags = con.execute(f"SELECT synthetic FROM read_parquet('{glob.format(name)}', {options})").fetchall()
        real_rows("DuckDB", name, [flag for (flag,) in flags])
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{glob.format('transactions')}', "
                            f"{options})").fetchall()
    types = {row[0]: row[1] for row in described}
    check("DuckDB: typed columns (ids BIGINT, times TIMESTAMP, synthetic BOOLEAN, dt a date)",
          types.get("transaction_id") == "BIGINT" and types.get("tx_datetime") == "TIMESTAMP"
          and types.get("synthetic") == "BOOLEAN" and types.get("dt") == "DATE", str(types))
sys.exit(1 if failures else 0)
