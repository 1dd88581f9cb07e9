"""What people look at: a self-contained `report.html` per run (its PNG grids are written by
`xdomain.grid`)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any


def _records(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _plot_png(records: list[dict[str, Any]], kind: str, title: str) -> str | None:
    """Curves of every numeric key of one record kind -> base64 PNG (None if nothing to plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in records if r.get("kind") == kind]
    keys = sorted(
        {
            k
            for r in rows
            for k, v in r.items()
            if isinstance(v, (int, float)) and k not in ("step", "time", "it_per_s")
        }
    )
    if not rows or not keys:
        return None
    cols = min(4, len(keys))
    nrows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False)
    for ax, k in zip(axes.flat, keys, strict=False):
        pts = [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1)
        ax.set_title(k, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _img_tag(path: Path, width: int | None = None) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    w = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}"{w} alt="{html.escape(path.name)}">'


def write_report(run: str | Path, sample_rows: str = "input, translation") -> Path:
    """Write `run/report.html`: final metrics, curves, the latest sample grids and figures.
    `sample_rows` says what the sample grids' rows show (the method's `sample_rows`)."""
    run = Path(run)
    records = _records(run)
    final_path = run / "final_metrics.json"
    final = json.loads(final_path.read_text()) if final_path.is_file() else {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>xdomain report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "td,th{padding:2px 10px;text-align:left}img{image-rendering:pixelated}</style>"
        "</head><body>",
        f"<h1>xdomain run: {html.escape(run.name)}</h1>",
    ]
    if final:
        parts.append("<h2>Final metrics</h2><table>")
        for k, v in final.items():
            parts.append(
                f"<tr><th>{html.escape(k)}</th><td>{v:.4g}</td></tr>"
                if isinstance(v, float)
                else f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            )
        parts.append("</table>")
    for kind, title in (("eval", "Evaluation"), ("train", "Training losses")):
        png = _plot_png(records, kind, title)
        if png:
            parts.append(f"<h2>{title}</h2><img src='data:image/png;base64,{png}'>")
    figures = sorted((run / "figures").glob("*.png")) if (run / "figures").is_dir() else []
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [f"<p>{html.escape(f.stem)}<br>{_img_tag(f, 640)}</p>" for f in figures]
    samples = sorted((run / "samples").glob("step-*.png"))
    if samples:
        parts.append(f"<h2>Samples</h2><p>Rows: {html.escape(sample_rows)}.</p>")
        for f in samples[-4:][::-1]:
            parts.append(f"<p>{html.escape(f.stem)}<br>{_img_tag(f)}</p>")
    cfg = run / "config.yaml"
    if cfg.is_file():
        parts.append(f"<h2>Config</h2><pre>{html.escape(cfg.read_text())}</pre>")
    parts.append("</body></html>")
    out = run / "report.html"
    from xdomain.io import atomic_write_text

    atomic_write_text(out, "\n".join(parts))
    return out
