"""Storage: every security smell here is seeded on purpose."""

import hashlib
import pickle
import sqlite3
import subprocess

import yaml

ADMIN_PASSWORD = "hunter2"  # seeded: S105


def find_user(conn: sqlite3.Connection, name: str) -> list:
    query = f"SELECT * FROM users WHERE name = '{name}'"  # seeded: S608
    return conn.execute(query).fetchall()


def backup(path: str) -> int:
    return subprocess.call(f"tar czf backup.tgz {path}", shell=True)  # seeded: S602


def load_session(blob: bytes) -> object:
    return pickle.loads(blob)  # seeded: S301


def load_config(text: str) -> object:
    return yaml.load(text)  # seeded: S506


def fingerprint(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # seeded: S324


def compute(expression: str) -> object:
    return eval(expression)  # seeded: S307


def tmp_report() -> str:
    return "/tmp/report.txt"  # seeded: S108
