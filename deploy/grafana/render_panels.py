"""Draw the Grafana dashboard's panels (dashboards/hydrilla.json) with matplotlib, from a
Prometheus that holds real data: each panel's queries go to Prometheus' range API unchanged (with
``$__rate_interval`` as 1m), one line per series, labelled as the panel's legend says.

For a picture of the dashboard where Grafana itself does not run (the README's screenshot, made
by benchmarks/monitoring_run.py); needs only the standard library and matplotlib (Debian's
python3-matplotlib).

    python3 deploy/grafana/render_panels.py --prometheus http://127.0.0.1:9090 --start 1764660000
"""

import argparse
import datetime
import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

DASHBOARD = Path(__file__).resolve().parent / "dashboards" / "hydrilla.json"
UNITS = {"s": "seconds", "percentunit": "share", "reqps": "requests / s", "short": ""}


def query_range(prometheus: str, expr: str, start: float, end: float, step: int) -> list:
    expr = expr.replace("$__rate_interval", "1m")
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{query}", timeout=30) as answer:
        return json.load(answer)["data"]["result"]


def legend(template: str, labels: dict) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--start", type=float, required=True, help="Unix time")
    parser.add_argument("--end", type=float, default=None)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    end = options.end or time.time()
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    rows = (len(panels) + 1) // 2
    figure, axes = plt.subplots(rows, 2, figsize=(16, 3.2 * rows), squeeze=False)
    for panel, axis in zip(panels, axes.flat, strict=False):  # the grid may have a spare cell
        for target in panel["targets"]:
            for series in query_range(options.prometheus, target["expr"], options.start, end, 15):
                points = [(float(t), float(v)) for t, v in series["values"] if v != "NaN"]
                if not points:
                    continue
                times = [datetime.datetime.fromtimestamp(t, datetime.UTC) for t, _ in points]
                name = legend(target["legendFormat"], series["metric"])
                axis.plot(times, [v for _, v in points], label=name, linewidth=1.4)
        axis.set_title(panel["title"], fontsize=11, loc="left")
        axis.set_ylabel(UNITS.get(panel["fieldConfig"]["defaults"]["unit"], ""), fontsize=8)
        axis.set_xlim(
            datetime.datetime.fromtimestamp(options.start, datetime.UTC),
            datetime.datetime.fromtimestamp(end, datetime.UTC),
        )
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7, loc="upper left")
        else:
            axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(
        f"{dashboard['title']}: the dashboard's panels from Prometheus (drawn by matplotlib, not "
        f"Grafana), {datetime.datetime.fromtimestamp(options.start, datetime.UTC):%Y-%m-%d %H:%M}"
        " UTC",
        fontsize=12,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    figure.savefig(options.out, dpi=80)
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
