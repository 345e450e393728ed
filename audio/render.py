"""Command line renderer: ``python -m audio.render DOCUMENT.json -o OUT.wav``.

Sources in the document are paths relative to the document's folder. On
success prints one line of JSON with the render's figures; on a bad document,
a missing source or bad options exits with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence

from audio.engine.document import DocumentError, parse_document
from audio.engine.render import render


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m audio.render", description=__doc__)
    parser.add_argument("document", help="project document (JSON)")
    parser.add_argument("-o", "--output", required=True, help="output .wav, .flac or .mp3")
    parser.add_argument("--bit-depth", default="24", choices=("16", "24", "32f"))
    parser.add_argument("--mp3-quality", default="320", choices=("320", "V2"))
    parser.add_argument("--dither", action="store_true", help="seeded TPDF dither (16-bit)")
    parser.add_argument("--stems", metavar="DIR", help="also write one file per track here")
    parser.add_argument(
        "--master", metavar="TARGET", help="streaming, apple, ebu or a LUFS value such as -12"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--block-frames", type=int, default=32768)
    return parser


def _number(value: float) -> float | None:
    # JSON has no -inf (silence); null says "not measurable".
    return round(value, 4) if math.isfinite(value) else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    folder = os.path.dirname(os.path.abspath(args.document))

    def resolve(source: str) -> str:
        return os.path.join(folder, source)

    try:
        with open(args.document, encoding="utf-8") as f:
            data = json.load(f)
        doc = parse_document(data)
        result = render(
            doc,
            resolve,
            args.output,
            bit_depth=args.bit_depth,
            mp3_quality=args.mp3_quality,
            dither=args.dither,
            stems_dir=args.stems,
            master=args.master,
            threads=args.threads,
            block_frames=args.block_frames,
        )
    except (OSError, json.JSONDecodeError, DocumentError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    line = {
        "duration_s": round(result.duration_s, 6),
        "sample_rate": result.sample_rate,
        "peak_dbfs": _number(result.peak_dbfs),
        "lufs": _number(result.lufs),
        "true_peak_dbtp": _number(result.true_peak_dbtp),
        "pcm_sha256": result.pcm_sha256,
        "seconds": round(result.seconds, 3),
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
