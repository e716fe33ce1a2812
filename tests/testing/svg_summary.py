#!/usr/bin/python3
"""Parses an SVG file of `lepton_client --plot` (client/svg_plot.h) as XML and
prints what the tests check, one item per line:

  series NAME X,Y X,Y ...      one <polyline class="series">, its vertices
  marker KIND DATA_X PIXEL_X   one <line class="marker KIND">
  text CLASS TEXT              one <text> (chart titles, legends, notes)
  foreign WHAT                 anything that would reach outside the file:
                               a script, a foreignObject, an image, a style
                               sheet, an href or a url(...)

Exit status 1, with the parser's message on stderr, if the file is not
well-formed XML or its root is not an <svg> element.
"""
import sys
import xml.etree.ElementTree as ElementTree

SVG = "{http://www.w3.org/2000/svg}"


def main(path):
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as e:
        print(f"{path}: not XML: {e}", file=sys.stderr)
        return 1
    if root.tag != SVG + "svg":
        print(f"{path}: the root is {root.tag}, not svg", file=sys.stderr)
        return 1
    for e in root.iter():
        tag = e.tag.replace(SVG, "")
        if tag in ("script", "foreignObject", "image", "style", "use", "a"):
            print("foreign", tag)
        for name, value in e.attrib.items():
            if name.endswith("href") or "url(" in value or name == "style":
                print("foreign", f"{tag}@{name}")
        classes = e.get("class", "").split()
        if tag == "polyline" and "series" in classes:
            print("series", e.get("data-series"), e.get("points"))
        elif tag == "line" and "marker" in classes:
            print("marker", classes[1], e.get("data-x"), e.get("x1"))
        elif tag == "text":
            print("text", e.get("class"), e.text or "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
