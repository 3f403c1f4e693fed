#!/usr/bin/python3
"""Plots tf.keras.layers.ReLU variants computed by a relu-serve server.

    client/python/examples/plot_relu.py [--target localhost:50051] [--output relu.png]

Without --output it opens a window; with it, it writes the image (any format
matplotlib knows, by extension) and needs no display. Debian 12:
python3-matplotlib.
"""

import argparse
import sys

import numpy as np

import relu_serve

VARIANTS = [
    ("ReLU()", {}),
    ("ReLU(max_value=6)", {"max_value": 6.0}),
    ("ReLU(negative_slope=0.2)", {"negative_slope": 0.2}),
    ("ReLU(threshold=2.5)", {"threshold": 2.5}),
    ("ReLU(4, 0.5, 1)", {"max_value": 4.0, "negative_slope": 0.5,
                         "threshold": 1.0}),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="localhost:50051")
    parser.add_argument("--output", help="write the plot here instead of "
                        "showing it")
    args = parser.parse_args()

    import matplotlib  # pylint: disable=import-outside-toplevel
    if args.output:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    x = np.linspace(-6.0, 8.0, 561, dtype=np.float32)
    fig, axes = plt.subplots(1, len(VARIANTS),
                             figsize=(4 * len(VARIANTS), 3.6), sharey=True)
    with relu_serve.Client(args.target) as client:
        for ax, (title, params) in zip(axes, VARIANTS):
            ax.plot(x, client.apply(x, **params), color="tab:blue")
            ax.axhline(0, color="0.8", linewidth=0.8)
            ax.axvline(0, color="0.8", linewidth=0.8)
            ax.set_title(title)
            ax.set_xlabel("x")
    axes[0].set_ylabel("layer(x), computed by relu-serve")
    fig.tight_layout()
    if args.output:
        fig.savefig(args.output, dpi=100)
    else:
        plt.show()
    return 0


if __name__ == "__main__":
    sys.exit(main())
