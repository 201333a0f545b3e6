"""Figures keep their shape on every screen.

``afno_lite.use_book_style()`` makes every inline figure a "retina" PNG: twice as many pixels
as its on-screen size, which the notebook output records as ``width`` and ``height``. myst-nb
turns both into an inline style (``width: 683px; height: 491px``). The theme scales images down
to the text column (``max-width: 100%``), which then changes only the width: on a phone a
figure would be squeezed sideways. This extension keeps the width and drops the fixed height
of such output images, so the browser derives the height from the picture's own aspect ratio.
"""
from __future__ import annotations

from docutils import nodes


def drop_fixed_height(app, doctree, docname):
    for image in doctree.findall(nodes.image):
        if "width" in image and "height" in image:
            del image["height"]


def setup(app):
    app.connect("doctree-resolved", drop_fixed_height)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
