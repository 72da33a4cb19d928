#!/usr/bin/env python3
"""Draws the benchmark chart (PNG) from bench/results/latest.json: jobs and freshness per burst
size, the SyncDelaySeconds sweep, and the cost per 1,000 changes against one workflow per change.

Usage: chart.py LATEST.json OUT.png   (matplotlib, pinned in tools/requirements-bench.txt)
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, out: str) -> None:
    with open(src) as f:
        doc = json.load(f)
    scenarios = doc["scenarios"]
    bursts = [s for s in scenarios if s["kind"] == "burst" and not s["name"].startswith("delay-")]
    bursts.sort(key=lambda s: s["changes"])
    default_delay = bursts[0]["timings"]["sync_delay"] if bursts else 60
    sweep = [s for s in scenarios if s["name"].startswith("delay-")]
    sweep += [s for s in bursts if s["changes"] == (sweep[0]["changes"] if sweep else -1)]
    sweep.sort(key=lambda s: s["timings"]["sync_delay"])

    fig, ax = plt.subplots(2, 2, figsize=(12, 8.5))
    fig.suptitle(f"kb-autosync on the local stack ({doc['generated_at']}; jobs of {doc['job_seconds']} s)")

    a = ax[0][0]
    sizes = [s["changes"] for s in bursts]
    a.plot(sizes, [s["jobs_started"] for s in bursts], "o-", label="ingestion jobs")
    a.plot(sizes, [s["executions"] for s in bursts], "s--", label="Step Functions executions")
    a.axhline(2, color="grey", linestyle=":", label="target: at most 2 jobs")
    a.set_xscale("log")
    a.set_xlabel("burst size (uploads)")
    a.set_ylabel("count")
    a.set_ylim(0, max([3] + [s["jobs_started"] + 1 for s in bursts]))
    a.set_title(f"Coalescing (SyncDelaySeconds {default_delay})")
    a.legend()

    a = ax[0][1]
    a.plot(sizes, [s["freshness_jobs"] for s in bursts], "o-", label="last upload -> all SYNCED")
    a.plot(sizes, [s["freshness_target_s"] / s["job_seconds"] for s in bursts], ":", color="grey",
           label="target: job + delay + poll")
    a.set_xscale("log")
    a.set_xlabel("burst size (uploads)")
    a.set_ylabel("x one job duration")
    a.set_ylim(bottom=0)
    a.set_title("Freshness")
    a.legend()

    a = ax[1][0]
    if sweep:
        delays = [s["timings"]["sync_delay"] for s in sweep]
        a.plot(delays, [s["freshness_jobs"] for s in sweep], "o-", label="freshness (x job)")
        a.set_xlabel(f"SyncDelaySeconds (burst of {sweep[0]['changes']})")
        a.set_ylabel("x one job duration")
        b = a.twinx()
        b.plot(delays, [s["jobs_started"] for s in sweep], "s--", color="tab:red", label="jobs")
        b.set_ylabel("ingestion jobs")
        b.set_ylim(0, max(3, max(s["jobs_started"] for s in sweep) + 1))
        a.legend(loc="upper left")
        b.legend(loc="upper right")
    a.set_title("SyncDelaySeconds sweep")

    a = ax[1][1]
    names = [c["scenario"] for c in doc["comparisons"]]
    xs = range(len(names))
    a.bar([x - 0.2 for x in xs], [c["service_per_1k"] for c in doc["comparisons"]], 0.4, label="kb-autosync")
    a.bar([x + 0.2 for x in xs], [c["per_change_per_1k"] for c in doc["comparisons"]], 0.4,
          label="one workflow per change (model)")
    a.set_yscale("log")
    a.set_xticks(list(xs))
    a.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    a.set_ylabel("USD per 1,000 changes")
    a.set_title("Cost per 1,000 changes (list prices)")
    a.legend()

    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
