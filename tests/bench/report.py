"""The bench's output: a table on stdout, docs/bench/task-path.json and a PNG bar chart."""

import json
import math

# Table columns: (header, result key, format).
COLUMNS = [
    ("configuration", "configuration", "{}"),
    ("workload", "workload", "{}"),
    ("tasks/s", "tasks_per_s", "{:.1f}"),
    ("runs", "runs", "{:.0f}"),
    ("p50 ms", "p50_ms", "{:.1f}"),
    ("p95 ms", "p95_ms", "{:.1f}"),
    ("p99 ms", "p99_ms", "{:.1f}"),
    ("ok", "succeeded", "{}"),
    ("failed", "failed", "{}"),
    ("lost", "lost", "{}"),
    ("÷ stock", "vs_stock", "{:.2f}"),
    ("÷ broker", "vs_broker", "{:.3f}"),
    ("redis cpu", "redis_cpu", "{:.0%}"),
    ("bench cpu", "bench_cpu", "{:.0%}"),
    ("workers cpu", "workers_cpu", "{:.0%}"),
    ("of it main", "main_cpu", "{:.0%}"),
    ("redis forks", "redis_forks", "{}"),
]


def cell(result, key, fmt):
    value = result.get(key)
    if isinstance(value, list):
        return " ".join(fmt.format(item or 0) for item in value)
    return "" if value is None else fmt.format(value)


def table(results):
    """A Markdown table, aligned for the terminal."""
    rows = [[header for header, _, _ in COLUMNS]]
    rows += [[cell(result, key, fmt) for _, key, fmt in COLUMNS] for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)) + " |"
             for row in rows]
    lines.insert(1, "| " + " | ".join("-" * width for width in widths) + " |")
    return "\n".join(lines)


def ratio_lines(ratios):
    workloads = list(ratios)
    names = list(ratios[workloads[0]])
    width = max(len(name) for name in names)
    lines = [f"{'drain throughput ratio'.ljust(width)}  " + "  ".join(w.rjust(12) for w in workloads)]
    for name in names:
        values = [ratios[w][name] for w in workloads]
        lines.append(f"{name.ljust(width)}  " + "  ".join(
            ("n/a" if v is None else f"{v:.3f}").rjust(12) for v in values))
    return "\n".join(lines)


def replace_between_markers(path, name, text):
    """Put text between <!-- name --> and <!-- /name --> in the Markdown file at path."""
    document = path.read_text()
    start, end = f"<!-- {name} -->\n", f"<!-- /{name} -->"
    head, found, rest = document.partition(start)
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        raise LookupError(f"{path} has no {start.strip()} ... {end} region")
    path.write_text(f"{head}{start}{text.rstrip()}\n{end}{tail}")


def machine_lines(machine):
    return "\n".join(f"{key:>14}: {value}" for key, value in machine.items())


def rounded(value):
    """Floats to 3 decimals, in nested lists and dicts (the JSON stays readable)."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def write_json(path, document):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rounded(document), indent=2) + "\n")


def bar_group(axis, groups, series, unit):
    """Grouped bars: one group per label in groups, one bar per series name.
    series: {name: [value per group, None where not measured]}."""
    import matplotlib

    width = 0.8 / len(series)
    # More series than the default cycle's ten colours: each keeps its own
    # (tab10's, then tab20's light shades).
    colours = matplotlib.colormaps["tab10"].colors + matplotlib.colormaps["tab20"].colors[1::2]
    for index, (name, values) in enumerate(series.items()):
        positions = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = axis.bar(positions, [v or 0 for v in values], width, label=name, color=colours[index % len(colours)])
        for bar, value in zip(bars, values, strict=True):
            if value:
                axis.annotate(f"{value:.0f}" if value >= 10 else f"{value:.1f}",
                              (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                              ha="center", va="bottom", fontsize=7)
    axis.set_xticks(range(len(groups)), groups)
    axis.set_ylabel(unit)
    axis.grid(axis="y", alpha=0.3)


def chart(path, document):
    """Three panels: drain throughput, enqueue rate, enqueue-to-start latency."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    # The app's logging config (root at INFO) would print matplotlib's chatter.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    results = document["results"]

    def value(configuration, workload, key="tasks_per_s"):
        found = [r for r in results if r["configuration"] == configuration and r["workload"] == workload]
        return found[0].get(key) if found else None

    configurations = list(document["configurations"])
    drains = document["workloads"]["drain"]
    figure, (drain, enqueue, latency) = plt.subplots(1, 3, figsize=(16, 5.5),
                                                     gridspec_kw={"width_ratios": [3, 2, 3]})
    drained = configurations + list(document.get("factors", {})) + list(document.get("io_pools", {}))
    bar_group(drain, drains, {c: [value(c, w) for w in drains] for c in drained}, "tasks/s (log scale)")
    ceiling = value("broker ceiling", "raw BRPOP, 1 consumer")
    if ceiling:
        drain.axhline(ceiling, color="black", linestyle="--", linewidth=1,
                      label=f"broker ceiling: raw BRPOP, 1 consumer ({ceiling:.0f}/s)")
    drain.set_yscale("log")
    drain.yaxis.set_major_formatter(ScalarFormatter())
    drain.yaxis.set_minor_formatter(NullFormatter())
    drain.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    drain.set_title(f"Drain throughput: {document['settings']['tasks']} tasks queued, then the workers start",
                    fontsize=9)

    enqueues = [r for r in results if r["workload"].startswith("enqueue") or r["workload"].startswith("raw LPUSH")]
    labels = [r["workload"].removeprefix("enqueue, ").replace(" ", "\n", 1) for r in enqueues]
    bars = enqueue.bar(range(len(enqueues)), [r["tasks_per_s"] for r in enqueues],
                       color=["tab:blue", "tab:blue", "tab:gray"][:len(enqueues)])
    enqueue.bar_label(bars, fmt="%.0f", fontsize=7)
    enqueue.set_xticks(range(len(enqueues)), labels, fontsize=8)
    enqueue.set_ylabel("messages/s")
    enqueue.grid(axis="y", alpha=0.3)
    enqueue.set_title("Enqueue rate from one client, no worker running", fontsize=9)

    workload = document["workloads"]["latency"]
    percentiles = ["p50_ms", "p95_ms", "p99_ms"]
    bar_group(latency, [p.removesuffix("_ms") for p in percentiles],
              {c: [value(c, workload, p) for p in percentiles] for c in configurations}, "ms")
    latency.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
    latency.set_title(f"Enqueue-to-start latency, {workload.removeprefix('latency ')}, workers idle", fontsize=9)

    machine = document["machine"]
    figure.suptitle(f"Celery task path on {machine['cpu']}, {machine['cores']} cores (load {machine['load average']}); "
                    f"celery {machine['celery']}, kombu {machine['kombu']}, redis {machine['redis-server']}; "
                    f"{machine['date']}", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
