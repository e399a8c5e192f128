# SPDX-License-Identifier: Apache-2.0
"""README.md's "Results" section: the headline rows, how to reproduce them, the bar's verdict in a sentence."""
from __future__ import annotations

import re

from .common import bar_rows, comparisons, reproduce_commands
from .inputs import Inputs

#: the README rows: (name shown, key in docs/results.json), in this order, those present
README_ROWS = (('method (AT-net + VQ)', 'method'),
               ('method, bodies stood on the measured floor (what the node publishes)', 'method_on_floor'),
               ('end-to-end', 'end_to_end'),
               ('layout (model-based, no learning)', 'layout'),
               ('layout + method (the room measured, the rest and the bodies predicted)', 'layout_method'),
               ('training mean', 'mean'))


def fmt(v: float | None) -> str:
    return '–' if v is None else f'{v:.3f}'


def headline_table(res: dict) -> str:
    rows, persons = res['rows'], res.get('person_iou', {})
    lines = ['| model | depth AbsRel | δ<1.25 | RMSE (m) | seg. mIoU | person IoU (speaking / silent) |',
             '|---|---|---|---|---|---|']
    for name, key in README_ROWS:
        if key not in rows:
            continue
        d, s = rows[key]['depth'], rows[key]['segmentation']
        p = persons.get(key, {})
        lines.append(f"| {name} | {d['abs_rel']:.3f} | {d['delta1']:.3f} | {d['rmse']:.3f} | {s['miou']:.3f} | "
                     f"{fmt(p.get('speaking'))} / {fmt(p.get('silent'))} |")
    return '\n'.join(lines)


def section(inp: Inputs) -> str:
    """The text between '## Results' and '## Layout'."""
    res, rows = inp.results, inp.results['rows']
    misses = [name for name, ok, _ in bar_rows(inp) if not ok]
    compared = comparisons(res)
    return (f"Test split of the default simulated dataset ({res['n_samples']} windows, rooms never seen in "
            f"training), measured {inp.today} on {inp.machine}:\n\n" + headline_table(res) +
            f"\n\nReproduce:\n\n```bash\n{reproduce_commands(inp.facts)}\n```\n\n"
            + (compared + ' ' if compared else '') +
            ('The quality bar of issue #10 is met. ' if not misses else
             f"Not yet met from the quality bar of issue #10: {'; '.join(misses)}. ") +
            "Full table, bar (each miss with its measured cause and what was tried), mosaic and training: "
            "[docs/RESULTS.md](docs/RESULTS.md). "
            + ("The layout row is the sonar front-end's measured room"
               + (" fused over the drive so far (each room's windows in order, the simulator's poses as odometry: "
                  "the room the networks read)" if inp.train.get('features', {}).get('layout_fusion') else '')
               + " rendered into the camera, its depth over "
               f"the {rows['layout']['depth'].get('valid_fraction', 1.0):.0%} of pixels with a prior (a wall it "
               "could not measure leaves its side open); its errors against the simulator's rooms: "
               "[docs/SONAR.md](docs/SONAR.md). " if 'layout' in rows else '')
            + ("The layout + method row joins the two without learning, on every pixel: the layout's depth and "
               "class where it has a prior and the method sees the room there, the method's elsewhere (bodies "
               "included). " if 'layout_method' in rows else '')
            + "Speed: [docs/BENCHMARKS.md](docs/BENCHMARKS.md).")


def render(inp: Inputs) -> str:
    """README.md with its results section replaced."""
    return re.sub(r'(## Results\n\n)(.*?)(\n\n## Layout)', lambda m_: m_.group(1) + section(inp) + m_.group(3),
                  inp.readme, flags=re.S)
