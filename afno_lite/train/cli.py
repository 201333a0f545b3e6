"""``python -m afno_lite.train``: the command line, generated from :class:`TrainConfig`.

Every field of the dataclass is an option (``img_size`` -> ``--img-size``); its type gives the
parser: ``int``/``float``/``str`` values, ``int | None`` optional values, booleans as flags
(``--resume`` when the default is ``False``, ``--no-progress`` when it is ``True``),
``mixer_kw`` as a JSON object, ``eval_sizes`` as a list of integers; the help of every option
that takes a value shows its default. Explained in the chapter "Scaling out".
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys

from .._checks import MixerConfigError
from .config import HELP, TrainConfig
from .distributed import dist_env
from .fit import fit

__all__ = ["parser", "main"]

_TYPES = {"int": int, "float": float, "str": str, "int | None": int, "str | None": str}


def _add_option(p: argparse.ArgumentParser, f: dataclasses.Field, default) -> None:
    flag = "--" + f.name.replace("_", "-")
    help_ = HELP.get(f.name)
    if f.type != "bool":   # a flag needs no default: its name says what it changes
        help_ = (help_ + " " if help_ else "") + "(default: %(default)s)"
    if f.type == "bool":
        if default:
            p.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false",
                           help=help_ or f"turn {f.name} off")
        else:
            p.add_argument(flag, dest=f.name, action="store_true", help=help_)
    elif f.type == "dict":
        p.add_argument(flag, dest=f.name, default=json.dumps(default), help=help_)
    elif f.type == "tuple":
        p.add_argument(flag, dest=f.name, type=int, nargs="*", default=list(default), help=help_)
    else:
        p.add_argument(flag, dest=f.name, type=_TYPES[f.type], default=default, help=help_)


def parser() -> argparse.ArgumentParser:
    """The parser: one option per field of :class:`TrainConfig`, defaults from the dataclass."""
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m afno_lite.train",
                                description="Train a tiny TokenMixerNet on inpainting, the Navier-Stokes task, "
                                            "scene classification or scene segmentation.")
    for f in dataclasses.fields(TrainConfig):
        _add_option(p, f, getattr(d, f.name))
    return p


def main(argv=None) -> int:
    """Run ``python -m afno_lite.train`` with ``argv`` (default ``sys.argv[1:]``): 0 on success,
    2 with one ``error:`` line on stderr for a configuration that cannot run (an option that
    does not parse exits with status 2 and the usage, as ``argparse`` does). ``results.json``
    records the command as ``python -m afno_lite.train`` followed by ``argv``, shell-quoted."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = "python -m afno_lite.train " + shlex.join(argv)   # what results.json records: runnable again
    args = vars(parser().parse_args(argv))
    try:
        args["mixer_kw"] = json.loads(args["mixer_kw"])
    except json.JSONDecodeError as e:
        print(f"error: --mixer-kw must be a JSON object: {e}", file=sys.stderr)
        return 2
    if not isinstance(args["mixer_kw"], dict):
        print(f"error: --mixer-kw must be a JSON object such as '{{\"num_blocks\": 4}}', "
              f"got {args['mixer_kw']!r}", file=sys.stderr)
        return 2
    args["eval_sizes"] = tuple(args["eval_sizes"])
    try:
        cfg = TrainConfig(**args)
        res = fit(cfg, command=command)
    except MixerConfigError as e:   # ConfigError, or a data generator's check of the sizes
        print(f"error: {e}", file=sys.stderr)
        return 2
    if dist_env()[1] == 0 and cfg.progress:
        print(json.dumps({"final": res["final"], "params": res["params"], "weights_sha256": res["weights_sha256"]}))
    return 0
