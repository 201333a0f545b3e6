"""Keep the built pages self-contained.

Jupyter Book 1 always loads sphinx-thebe (live code cells from a remote Binder
kernel). This book does not use it (``launch_buttons.thebe: false``), yet its
inline configuration script, which names a CDN URL, is added to every page --
twice, which is a JavaScript error ("Identifier 'THEBE_JS_URL' has already been
declared"). This extension drops those scripts from every page.
"""
from __future__ import annotations


def _is_thebe(js) -> bool:
    name = str(getattr(js, "filename", js) or "")
    body = str(getattr(js, "attributes", {}).get("body", ""))
    return "thebe" in name or "THEBE_JS_URL" in body


def drop_thebe(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"] = [js for js in context["script_files"] if not _is_thebe(js)]
    if "css_files" in context:
        context["css_files"] = [c for c in context["css_files"] if "thebe" not in str(getattr(c, "filename", c))]


def setup(app):
    app.connect("html-page-context", drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
