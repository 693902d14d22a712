#!/usr/bin/env python3
"""Validates modelsync --json output against its schema (docs/json/<command>.schema.json).

usage: check_json.py SCHEMA_DIR COMMAND FILE

Every non-empty line of FILE must be one JSON document valid against COMMAND's schema
(JSON Schema 2020-12; $refs to defs.schema.json resolved from SCHEMA_DIR). Exit 0 when all
are, 1 naming each line that is not, 2 when FILE has no line or an argument is wrong.
Needs python3-jsonschema (Debian) or jsonschema from PyPI, 4.0 or newer.
"""
import json
import pathlib
import sys
import warnings

import jsonschema


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    schema_dir, command, path = pathlib.Path(argv[1]), argv[2], argv[3]
    store = {}
    for f in schema_dir.glob("*.schema.json"):
        s = json.loads(f.read_text())
        store[s["$id"]] = s
    schema_file = schema_dir / (command + ".schema.json")
    if not schema_file.exists():
        print(f"check_json: no schema for '{command}' ({schema_file})", file=sys.stderr)
        return 2
    schema = json.loads(schema_file.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
    lines = [l for l in pathlib.Path(path).read_text(errors="replace").splitlines() if l.strip()]
    if not lines:
        print(f"check_json: {path} has no output to check", file=sys.stderr)
        return 2
    bad = 0
    for n, line in enumerate(lines, 1):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"{path}:{n}: not JSON ({e}): {line[:200]}")
            bad += 1
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            bad += 1
            best = jsonschema.exceptions.best_match(errors)
            print(f"{path}:{n}: {command}: {best.message} at {list(best.absolute_path)}: "
                  f"{line[:300]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
