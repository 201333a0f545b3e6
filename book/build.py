"""Build the Jupyter Book site, fully offline-capable pages included.

    python book/build.py            # vendor JS if missing, then build book/_build/html
    python book/build.py --vendor-only
    python book/build.py -- --path-output build/mine   # a private copy: build/mine/_build/html

1. Vendors what the pages would otherwise fetch from a CDN into ``book/_vendor``
   (copied by Sphinx into ``_build/html/_static``): MathJax 3 and the ipywidgets
   HTML manager with require.js, taken from the npm registry once (``npm pack``).
2. Runs ``jupyter-book build -W -n --keep-going`` (warnings are errors); notebooks
   are executed through the jupyter-cache, so a second build only re-runs chapters
   whose code changed. The cache knows only the chapters' code, not the library they
   import: when ``afno_lite``, the shipped results or ``AFNO_FAST`` changed since the last build, the
   cache is emptied first and every chapter runs again, so no page shows outputs of old code.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

BOOK = Path(__file__).resolve().parent
VENDOR = BOOK / "_vendor"
PACKAGES = {  # npm package -> files/dirs to copy (from package/) -> destination under _vendor
    "mathjax@3.2.2": [("es5", "mathjax")],
    "requirejs@2.3.8": [("require.js", "widgets/require.js")],
    "@jupyter-widgets/html-manager@1.0.15": [("dist/embed-amd.js", "widgets/embed-amd.js"),
                                             ("dist", "widgets/fonts")],
}
# The widget renderer fetches its icon fonts from "@jupyter-widgets/html-manager/dist/"
# relative to the page that shows widgets; build() puts a copy there.
WIDGET_FONT_DIR = "@jupyter-widgets/html-manager/dist"
FONT_SUFFIXES = (".woff2", ".woff", ".ttf", ".eot", ".svg")
# MathJax ships one combined file per input/output pair; we use tex-chtml.js only.
MATHJAX_DROP = {"tex-mml-chtml.js", "tex-chtml-full.js", "tex-chtml-full-speech.js", "tex-mml-svg.js",
                "tex-svg.js", "tex-svg-full.js", "mml-chtml.js", "mml-svg.js", "tex-svg-full-speech.js",
                "mml-chtml-full.js", "mml-svg-full.js"}


def _needed() -> list[str]:
    missing = []
    for pkg, items in PACKAGES.items():
        if not all((VENDOR / dst).exists() for _, dst in items):
            missing.append(pkg)
    return missing


def vendor(force: bool = False) -> None:
    """Fetch the JavaScript the pages need from the npm registry into book/_vendor."""
    todo = list(PACKAGES) if force else _needed()
    if not todo:
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("book/build.py: npm is needed once to vendor MathJax and the widget renderer "
                 "(install Node.js, or copy them into book/_vendor by hand)")
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in todo:
            print(f"vendoring {pkg} from the npm registry", flush=True)
            out = subprocess.run([npm, "pack", "--silent", pkg], cwd=tmp, check=True,
                                 capture_output=True, text=True).stdout.split()[-1]
            dest = Path(tmp) / out.replace(".tgz", "")
            with tarfile.open(Path(tmp) / out) as tf:
                tf.extractall(dest, filter="data")
            for src, dst in PACKAGES[pkg]:
                s, d = dest / "package" / src, VENDOR / dst
                d.parent.mkdir(parents=True, exist_ok=True)
                if d.exists():
                    shutil.rmtree(d) if d.is_dir() else d.unlink()
                if s.is_dir() and dst == "widgets/fonts":
                    d.mkdir(parents=True)
                    for f in s.iterdir():
                        if f.suffix in FONT_SUFFIXES:
                            shutil.copy2(f, d / f.name)
                elif s.is_dir():
                    shutil.copytree(s, d, ignore=lambda _d, names: [n for n in names if n in MATHJAX_DROP])
                else:
                    shutil.copy2(s, d)


def library_hash() -> str:
    """sha256 over the library's sources and data, the shipped results the chapters read and
    AFNO_FAST (which sizes the chapters' runs)."""
    h = hashlib.sha256(f"AFNO_FAST={os.environ.get('AFNO_FAST', '')}\0".encode())
    root = BOOK.parent
    files = [*(root / "afno_lite").rglob("*"), *(root / "notebooks" / "results").rglob("*")]
    for f in sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def build(extra: list[str]) -> int:
    out = Path(extra[extra.index("--path-output") + 1]) if "--path-output" in extra[:-1] else BOOK
    cache, stamp = out.resolve() / "_build" / ".jupyter_cache", out.resolve() / "_build" / ".library.sha256"
    lib = library_hash()
    if cache.exists() and (not stamp.exists() or stamp.read_text() != lib):
        print("afno_lite, notebooks/results or AFNO_FAST changed since the last build: "
              "every chapter runs again", flush=True)
        shutil.rmtree(cache)
        extra = ["--all", *extra]  # and every page is read again (Sphinx only knows the sources)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", "-W", "-n", "--keep-going", str(BOOK), *extra]
    print("+", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    rc = subprocess.call(cmd, env=env)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(lib)  # what the cached outputs were computed with
    html = out.resolve() / "_build" / "html"
    for page in html.rglob("*.html") if rc == 0 else []:
        if "widgets/embed-amd.js" in page.read_text(encoding="utf-8"):
            dest = page.parent / WIDGET_FONT_DIR
            if not dest.exists():
                shutil.copytree(VENDOR / "widgets" / "fonts", dest)
    print(f"book build {'passed' if rc == 0 else 'FAILED'} in {time.perf_counter() - t0:.1f} s", flush=True)
    return rc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vendor-only", action="store_true", help="only fetch the vendored JavaScript")
    ap.add_argument("--revendor", action="store_true", help="fetch the vendored JavaScript again")
    ap.add_argument("extra", nargs="*", help="extra arguments for jupyter-book build")
    args = ap.parse_args(argv)
    vendor(force=args.revendor)
    if args.vendor_only:
        return 0
    return build(args.extra)


if __name__ == "__main__":
    sys.exit(main())
