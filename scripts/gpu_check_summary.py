#!/usr/bin/env python3
"""The last step of scripts/gpu-check.sh: gathers what the check measured in
WORK (steps.tsv, logs/, ctest.xml, results/) into OUT, at most eight files:

  gpu-check.json   the summary (schema 1): machine and provenance, every step
                   with its status and time, the tests (the *_cuda ones by
                   name), chapter 1's and the chapter 6 probe's samples/s and
                   the time their full budgets take at that rate, bench-train's
                   rates. `make report` reads it from results/gpu/.
  gpu-check.log    every step's log (long ones cut to their ends)
  build.log, ctest.log, ctest.xml
  chapter-01.json  chapter 1's metrics.json and run.json of the timed run
  chapter-06.json  the probe's point.json
  bench.json       bench-train's JSON

Exits 1 when a step failed or something the check must measure is missing
(in a dry run: what the GPU run would need is checked the same way).
Standard library only.
"""

import argparse
import datetime
import json
import pathlib
import platform
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET


def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:  # noqa: BLE001 - absent tools are reported as such
        return ""


def tail(path, lines):
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    cut = len(text) - lines
    head = [f"[... {cut} lines cut ...]"] if cut > 0 else []
    return "\n".join(head + text[-lines:]) + "\n"


def read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def machine():
    m = {"hostname": platform.node(), "cpu_cores": shutil.os.cpu_count(), "kernel": platform.release()}
    for line in run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo"]).splitlines():
        m["cpu_model"] = line.split(":", 1)[-1].strip()
    smi = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if smi:
        name, driver, memory = (x.strip() for x in smi.splitlines()[0].split(",")[:3])
        m["gpu"] = {"name": name, "driver": driver, "memory": memory}
    py = run(["python3", "-c",
              "import json, torch; c = torch.cuda.is_available(); print(json.dumps({'version': torch.__version__, "
              "'cuda': torch.version.cuda, 'cuda_available': c, "
              "'device_name': torch.cuda.get_device_name(0) if c else None}))"])
    try:
        m["python_torch"] = json.loads(py.splitlines()[-1])
    except (ValueError, IndexError):
        m["python_torch"] = None
    m["compiler"] = run(["sh", "-c", "${CXX:-c++} --version | head -n 1"])
    m["cmake"] = run(["sh", "-c", "cmake --version | head -n 1"])
    return m


def tests(xml_paths):
    xml_paths = [p for p in xml_paths if p.exists()]
    if not xml_paths:
        return None
    cases = []
    for case in (c for p in xml_paths for c in ET.parse(p).getroot().iter("testcase")):
        # ctest's JUnit: status "run" (passed unless a <failure> says
        # otherwise), "notrun" with <skipped> (GTEST_SKIP), "fail".
        raw = case.get("status") or "run"
        if case.find("failure") is not None or case.find("error") is not None or raw == "fail":
            status = "failed"
        elif case.find("skipped") is not None:
            status = "skipped"
        elif raw in ("run", "passed"):
            status = "passed"
        else:
            status = raw
        message = ""
        for child in case:
            if child.tag in ("skipped", "failure", "error"):
                message = (child.get("message") or "")[:300]
        cases.append({"name": case.get("name"), "status": status, "seconds": float(case.get("time") or 0),
                      "message": message})
    count = {s: sum(1 for c in cases if c["status"] == s) for s in ("passed", "failed", "skipped")}
    count["total"] = len(cases)
    count["other"] = count["total"] - count["passed"] - count["failed"] - count["skipped"]
    cuda = [c for c in cases if c["name"].endswith("_cuda")]
    return {"counts": count, "cuda": cuda, "not_passed": [c for c in cases if c["status"] not in ("passed", "skipped")],
            "skipped": [c["name"] for c in cases if c["status"] == "skipped"]}


def ctest_summary(logs):
    lines = []
    for log in logs:
        try:
            text = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        lines += [f"{log.stem}: {line.strip()}" for line in text if "tests passed" in line and "out of" in line]
    return "; ".join(lines) or None


def from_progress(log, full, device):
    """The last rate a run's progress lines printed, for a run stopped at its
    time limit before it wrote its results."""
    import re
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    found = re.findall(r"([0-9.]+(?:e[+-]?[0-9]+)?)/[0-9.e+]+ samples .*?([0-9.]+(?:e[+-]?[0-9]+)?) samples/s", text)
    if not found:
        return None
    seen, r = float(found[-1][0]), float(found[-1][1])
    return {"samples": seen, "full_budget_samples": full, "samples_per_s": r, "seconds_for_full_budget": full / r,
            "partial": True, "device": device,
            "note": "stopped at its time limit: the rate of its last progress line (evaluations apart)"}


def rate(samples, seconds):
    return samples / seconds if seconds and seconds > 0 else None


def chapter_01(results, full):
    metrics = next(results.glob("chapter-01/*/metrics.json"), None)
    if metrics is None:
        return None, None
    m = read_json(metrics)
    run_json = read_json(metrics.parent / "run.json") or {}
    model = m["models"][0]
    r = rate(model["samples_seen"], model["train_seconds"])
    out = {"nz": model["nz"], "architecture": model["architecture"], "samples": model["samples_seen"],
           "full_budget_samples": full, "train_seconds": model["train_seconds"], "eval_seconds": model["eval_seconds"],
           "samples_per_s": r, "seconds_for_full_budget": full / r if r else None, "step": model.get("step"),
           "test_elbo": model["final"]["test"]["elbo"], "train_elbo": model["final"]["train"]["elbo"],
           "dataset": (run_json.get("dataset") or {}).get("name"), "device": run_json.get("device"),
           "profile": run_json.get("profile")}
    return out, {"metrics": m, "run": run_json}


def chapter_06(results, full):
    point = next(results.glob("chapter-06/.points/*/*/point.json"), None)
    if point is None:
        return None, None
    p = read_json(point)
    r = rate(p["samples_seen"], p["train_seconds"])
    out = {"probe": "500-500-3.r0", "architecture": "[500, 500, 3]", "samples": p["samples_seen"],
           "full_budget_samples": full, "epochs": p["samples_seen"] / 60000.0, "train_seconds": p["train_seconds"],
           "seconds": p["seconds"], "samples_per_s": r, "seconds_for_full_budget": full / r if r else None,
           "step": p.get("step"), "device": p.get("device"), "reconstruction": p["reconstruction"], "kl": p["kl"],
           "dataset": (p.get("config") or {}).get("dataset")}
    return out, p


def bench(results):
    b = read_json(results / "bench" / "bench.json")
    if b is None:
        return None, None
    rows = []
    for c in b.get("configs", []):
        for v, r in (c.get("variants") or {}).items():
            if isinstance(r, dict) and r.get("median_samples_per_s"):
                rows.append({"config": c.get("name"), "variant": v, "samples_per_s": r["median_samples_per_s"]})
    return {"device": (b.get("gpu") or {}).get("device", "cpu"), "rates": rows}, b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dry-run", type=int, default=0)
    ap.add_argument("--budget", type=float, default=0)
    ap.add_argument("--elapsed", type=float, default=0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--ch1-full", type=float, default=1e8)
    ap.add_argument("--ch6-full", type=float, default=6e7)
    a = ap.parse_args()
    work, out = pathlib.Path(a.work), pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    logs, results = work / "logs", work / "results"

    steps = []
    for line in (work / "steps.tsv").read_text().splitlines():
        f = line.split("\t")
        steps.append({"name": f[0], "status": f[1], "exit": int(f[2]), "seconds": int(f[3]), "limit": int(f[4]),
                      **({"reason": f[5]} if len(f) > 5 else {})})

    summary = {
        "schema": 1,
        "kind": "gpu-check",
        "dry_run": bool(a.dry_run),
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": a.device,
        "budget_seconds": a.budget,
        "elapsed_seconds": a.elapsed,
        "machine": machine(),
        "steps": steps,
    }
    found = {}
    try:
        for line in (logs / "configure.log").read_text(errors="replace").splitlines():
            if line.startswith("LibTorch through its"):
                found["libtorch_through"] = line.split(";")[0][len("LibTorch through its "):]
            elif line.startswith("found: "):
                key, _, value = line[len("found: "):].partition(" = ")
                found[key] = value
    except OSError:
        pass
    summary["build"] = found
    runs = ("ctest-cuda", "ctest")  # the CUDA tests, then the others
    t = tests([work / f"{r}.xml" for r in runs])
    if t is not None:
        t["summary_line"] = ctest_summary([logs / f"{r}.log" for r in runs])
    summary["tests"] = t
    ch1, ch1_files = chapter_01(results, a.ch1_full)
    ch6, ch6_files = chapter_06(results, a.ch6_full)
    if ch1 is None:
        ch1 = from_progress(logs / "chapter-01.log", a.ch1_full, a.device)
    if ch6 is None:
        ch6 = from_progress(logs / "chapter-06.log", a.ch6_full, a.device)
    b, b_file = bench(results)
    summary["chapter_01"] = ch1
    summary["chapter_06_probe"] = ch6
    summary["bench"] = b
    run_json = (ch1_files or {}).get("run") or {}
    summary["provenance"] = {"chapter_run": run_json.get("provenance"), "runtime": run_json.get("runtime")}

    problems = [f"step {s['name']}: {s['status']}" for s in steps if s["status"] not in ("passed", "skipped")]
    if t is None:
        problems.append("no test results (ctest-cuda.xml, ctest.xml)")
    else:
        if t["counts"]["failed"] or t["counts"]["other"]:
            problems.append(f"{t['counts']['failed'] + t['counts']['other']} tests did not pass")
        if not t["cuda"]:
            problems.append("no *_cuda test ran")
        want = "skipped" if a.dry_run else "passed"
        wrong = [c["name"] for c in t["cuda"] if c["status"] != want]
        if wrong:
            problems.append(f"CUDA tests not {want}: {', '.join(wrong)}")
    for name, value in (("chapter-01", ch1), ("chapter-06", ch6)):
        if not any(s["name"] == name and s["status"] == "skipped" for s in steps):
            if not value or not value.get("samples_per_s"):
                problems.append(f"{name}: no samples/s measured")
            elif value.get("device") not in (a.device, f"{a.device}:0", None):
                problems.append(f"{name}: ran on {value.get('device')}, not {a.device}")
    summary["problems"] = problems

    (out / "gpu-check.json").write_text(json.dumps(summary, indent=2) + "\n")
    if ch1_files:
        (out / "chapter-01.json").write_text(json.dumps(ch1_files, indent=2) + "\n")
    if ch6_files:
        (out / "chapter-06.json").write_text(json.dumps(ch6_files, indent=2) + "\n")
    if b_file:
        (out / "bench.json").write_text(json.dumps(b_file, indent=2) + "\n")
    if (logs / "build.log").exists():
        (out / "build.log").write_text(tail(logs / "build.log", 3000))
    with open(out / "ctest.log", "w") as f:
        for r in runs:
            if (logs / f"{r}.log").exists():
                f.write(f"===== {r}\n" + tail(logs / f"{r}.log", 10000))
    # Both runs' JUnit files in one.
    merged = ET.Element("testsuites")
    for r in runs:
        if (work / f"{r}.xml").exists():
            root = ET.parse(work / f"{r}.xml").getroot()
            for suite in ([root] if root.tag == "testsuite" else list(root)):
                suite.set("name", r)
                merged.append(suite)
    ET.ElementTree(merged).write(out / "ctest.xml", encoding="utf-8", xml_declaration=True)
    with open(out / "gpu-check.log", "w") as f:
        for s in steps:
            f.write(f"===== {s['name']}: {s['status']} (exit {s['exit']}, {s['seconds']} s of {s['limit']})\n")
            log = logs / f"{s['name']}.log"
            if log.exists():
                f.write(tail(log, 60 if s["name"] in ("build", "ctest", "ctest-cuda") else 400))
        if (logs / "ldd.log").exists():
            f.write("===== ldd chapter-01\n" + tail(logs / "ldd.log", 100))
        f.write("===== problems\n" + ("\n".join(problems) or "none") + "\n")

    def show(label, v):
        if v and v.get("samples_per_s"):
            full = v["seconds_for_full_budget"]
            print(f"gpu-check: {label}: {v['samples_per_s']:.0f} samples/s over {v['samples']} samples "
                  f"({v['train_seconds']:.1f} s; the full {v['full_budget_samples']:.0e} would take {full:.0f} s)")

    show("chapter 1, Nz = 20", ch1)
    show("chapter 6 probe [500, 500, 3]", ch6)
    if t is not None:
        print(f"gpu-check: tests: {t['summary_line']}; CUDA tests: "
              + ", ".join(f"{c['name']} {c['status']}" for c in t["cuda"]))
    for p in problems:
        print(f"gpu-check: problem: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
