#!/usr/bin/env python3
"""Helpers of bench/run-load.sh (standard library only).

    tools.py free-port
    tools.py wait-healthz URL TIMEOUT_S               → time.time_ns() of the first 200
    tools.py login citizen|agent BASE EMAIL PASSWORD  → the session cookie, "name=value"
    tools.py status PID                               → VmRSS and VmHWM in kB, as JSON
    tools.py sample PID OUT [INTERVAL_S]              → samples until SIGTERM, JSON in OUT
    tools.py raw-sqlite DB CLIENTS DURATION_S [ROW_BYTES]   → durable insert rate, JSON
    tools.py pgbench-json STDOUT_FILE LOG_PREFIX      → pgbench's rate and latencies, JSON
    tools.py count-requests sqlite DB | postgres URL  → rows in `requests`
    tools.py email-backlog sqlite DB | postgres URL [LIMIT_S]  → e-mails waiting, time to send them, JSON
    tools.py json KEY=VALUE...                         → a JSON object (values parsed as JSON if they can be)
    tools.py run-json SCENARIO CONC WRK_JSON SAMPLE_JSON [KEY=VALUE...]  → one run's record
    tools.py assemble WORK_DIR OUT                    → load-<backend>.json from a backend's work dir
    tools.py report RESULTS_DIR BACKEND...            → load.md from load-<backend>.json
    tools.py repeat URL COOKIE N                      → N GETs on one connection, each must answer 200
    tools.py callgrind-total FILE                     → the instructions a callgrind dump counted
"""

import glob
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def wait_healthz(url, timeout):
    """Polls URL every 2 ms; prints the wall-clock time (ns) of the first 200. Started before the
    server so that the interpreter's own start-up is not counted in the server's."""
    u = urllib.parse.urlsplit(url)
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            c.request("GET", u.path or "/")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                print(time.time_ns())
                return
        except OSError:
            pass
        time.sleep(0.002)
    sys.exit(f"{url} did not answer 200 within {timeout} s")


def _parse_value(v):
    try:
        return json.loads(v)
    except ValueError:
        return v


def kv_json(*pairs):
    print(json.dumps({k: _parse_value(v) for k, _, v in (p.partition("=") for p in pairs)}))


def run_json(scenario, conc, wrk_json, sample_json, *pairs):
    run = {"scenario": scenario, "concurrency": int(conc)}
    run.update(json.load(open(wrk_json)))
    run["sample"] = json.load(open(sample_json))
    run.update({k: _parse_value(v) for k, _, v in (p.partition("=") for p in pairs)})
    print(json.dumps(run))


def assemble(work, out):
    d = json.load(open(os.path.join(work, "meta.json")))
    d["runs"] = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, "runs", "*.json")))]
    d["raw_inserts"] = sorted(
        (json.load(open(p)) for p in glob.glob(os.path.join(work, "raw", "*.json"))),
        key=lambda x: x["clients"],
    )
    d["ceilings"] = sorted(
        (json.load(open(p)) for p in glob.glob(os.path.join(work, "ceiling", "*.json"))),
        key=lambda x: (x["scenario"], x["concurrency"]),
    )
    large = os.path.join(work, "large.json")
    if os.path.exists(large):
        d["large_startup"] = json.load(open(large))
    hwm = [r["sample"].get("hwm_kb") or 0 for r in d["runs"] if r["scenario"] != "nginx"]
    d["final_hwm_kb"] = max(hwm + [d.get("final_hwm_kb") or 0])
    with open(out, "w") as f:
        json.dump(d, f, indent=1)


def _cookies(response, jar):
    for name, value in response.getheaders():
        if name.lower() == "set-cookie":
            k, _, v = value.split(";", 1)[0].partition("=")
            jar[k.strip()] = v.strip()


def login(kind, base, email, password):
    u = urllib.parse.urlsplit(base)
    page, cookie = {
        "citizen": ("/compte/connexion", "guichet_session"),
        "agent": ("/agents/connexion", "guichet_agent"),
    }[kind]
    jar = {}
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", page)
    r = c.getresponse()
    body = r.read().decode()
    _cookies(r, jar)
    token = re.search(r'name="_csrf" value="([0-9a-f]+)"', body)
    if r.status != 200 or not token:
        sys.exit(f"GET {page}: {r.status}, no _csrf")
    form = {"_csrf": token.group(1), "email": email, "password": password}
    if kind == "citizen":
        form["retour"] = "/compte/"
    c.request(
        "POST",
        page,
        urllib.parse.urlencode(form),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
        },
    )
    r = c.getresponse()
    r.read()
    _cookies(r, jar)
    if r.status != 303 or cookie not in jar:
        sys.exit(f"POST {page} as {email}: {r.status} {r.getheader('location')}")
    print(f"{cookie}={jar[cookie]}")


def _proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def _proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def _postgres_ticks():
    """CPU ticks of every running process named postgres (server and backends)."""
    ticks = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            ticks[d] = _proc_ticks(d)
        except OSError:
            pass
    return ticks


def _system_ticks():
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]), idle


def status(pid):
    s = _proc_status(pid)
    print(json.dumps({"rss_kb": s.get("VmRSS"), "hwm_kb": s.get("VmHWM")}))


def sample(pid, out, interval=0.1):
    """Samples the process until SIGTERM: CPU seconds used, largest VmRSS seen, VmHWM at the end;
    also the CPU of PostgreSQL's processes and the whole machine's busy share."""
    interval = float(interval)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    t0 = time.time()
    ticks0 = _proc_ticks(pid)
    pg0 = _postgres_ticks()
    sys0 = _system_ticks()
    max_rss = _proc_status(pid).get("VmRSS", 0)
    samples = 0
    while not stop.wait(interval):
        try:
            max_rss = max(max_rss, _proc_status(pid).get("VmRSS", 0))
            samples += 1
        except OSError:
            break
    wall = time.time() - t0
    try:
        ticks1 = _proc_ticks(pid)
        hwm = _proc_status(pid).get("VmHWM")
    except OSError:
        ticks1, hwm = ticks0, None
    pg1 = _postgres_ticks()
    pg = sum(v - pg0.get(k, 0) for k, v in pg1.items())
    sys1 = _system_ticks()
    total, idle = sys1[0] - sys0[0], sys1[1] - sys0[1]
    result = {
        "wall_s": round(wall, 3),
        "cpu_s": (ticks1 - ticks0) / CLK_TCK,
        "cpu_cores": round((ticks1 - ticks0) / CLK_TCK / wall, 3) if wall else None,
        "postgres_cpu_s": pg / CLK_TCK,
        "system_busy": round(1 - idle / total, 3) if total else None,
        "max_rss_kb": max_rss,
        "hwm_kb": hwm,
        "samples": samples,
    }
    with open(out, "w") as f:
        json.dump(result, f)


def _percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def raw_sqlite(db, clients, duration, row_bytes=1024):
    """CLIENTS threads, each with its own connection, insert ROW_BYTES-byte rows, one row per
    transaction, into a WAL database with synchronous=FULL, for DURATION seconds.

    SQLite has one writer at a time: the threads queue on an in-process lock before BEGIN
    IMMEDIATE (as Guichet's single writer connection does) instead of polling SQLite's busy
    handler, whose sleeps would measure the back-off rather than the disk."""
    clients, duration, row_bytes = int(clients), float(duration), int(row_bytes)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    setup = sqlite3.connect(db, isolation_level=None)
    setup.execute("pragma journal_mode=wal")
    setup.execute(
        "create table raw_insert (id integer primary key, payload text not null, created_at text not null)"
    )
    setup.close()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]
    results = [[] for _ in range(clients)]
    failures = [0]

    def worker(i):
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        conn.execute("pragma synchronous=full")
        conn.execute("pragma busy_timeout=10000")
        lat = results[i]
        start.wait()
        while True:
            payload = os.urandom(row_bytes // 2).hex()
            t = time.perf_counter()
            if t >= deadline[0]:
                break
            try:
                with lock:
                    conn.execute("begin immediate")
                    conn.execute(
                        "insert into raw_insert (payload, created_at) values (?, ?)",
                        (payload, time.strftime("%Y-%m-%dT%H:%M:%S")),
                    )
                    conn.execute("commit")
            except sqlite3.Error:
                failures[0] += 1
                continue
            lat.append(time.perf_counter() - t)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    deadline[0] = t0 + duration
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    check = sqlite3.connect(db)
    mode = check.execute("pragma journal_mode").fetchone()[0]
    rows = check.execute("select count(*) from raw_insert").fetchone()[0]
    check.close()
    lat = sorted(x for r in results for x in r)
    print(
        json.dumps(
            {
                "tool": "python3 sqlite3 (SQLite %s)" % sqlite3.sqlite_version,
                "journal_mode": mode,
                "synchronous": "full",
                "clients": clients,
                "row_bytes": row_bytes,
                "rows": rows,
                "failures": failures[0],
                "duration_s": round(wall, 3),
                "rate": round(rows / wall, 1),
                "latency_p50_us": round(_percentile(lat, 50) * 1e6) if lat else None,
                "latency_p99_us": round(_percentile(lat, 99) * 1e6) if lat else None,
            }
        )
    )


def pgbench_json(stdout_file, log_prefix):
    text = open(stdout_file).read()
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    processed = re.search(r"number of transactions actually processed: (\d+)", text)
    clients = re.search(r"number of clients: (\d+)", text)
    lat = []
    for path in glob.glob(log_prefix + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    lat.append(int(parts[2]))
    lat.sort()
    print(
        json.dumps(
            {
                "tool": "pgbench",
                "clients": int(clients.group(1)) if clients else None,
                "rows": int(processed.group(1)) if processed else None,
                "failures": int(failed.group(1)) if failed else 0,
                "rate": float(tps.group(1)) if tps else None,
                "latency_p50_us": _percentile(lat, 50),
                "latency_p99_us": _percentile(lat, 99),
            }
        )
    )


def _count(kind, where, sql):
    if kind == "sqlite":
        c = sqlite3.connect(f"file:{where}?mode=ro", uri=True)
        return int(c.execute(sql).fetchone()[0])
    out = subprocess.run(
        ["psql", where, "-Atqc", sql], check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip())


def count_requests(kind, where):
    print(_count(kind, where, "select count(*) from requests"))


def email_backlog(kind, where, limit="120"):
    """Acknowledgement e-mails still waiting when a submission run ends, and how long the job
    runner then takes to send them all (it runs beside the load, as in production)."""
    start = time.monotonic()
    waiting = _count(kind, where, "select count(*) from outbox_emails where status = 'pending'")
    left = waiting
    while left > 0 and time.monotonic() - start < float(limit):
        time.sleep(0.25)
        left = _count(kind, where, "select count(*) from outbox_emails where status = 'pending'")
    drained = round(time.monotonic() - start, 2) if left == 0 else None
    print(json.dumps({"emails_waiting": waiting, "emails_left": left, "emails_drain_s": drained}))


# ---------------------------------------------------------------- report

TARGET_RATIO = 0.5
TARGET_P99_MS = 10.0
TARGET_IDLE_MB = 50
TARGET_LOAD_MB = 250
TARGET_START_S = 1.0
# Target 3 is measured by bench/run-inbox.sh on the national territory, at least this large.
TARGET_INBOX_TENANTS = 35_000
TARGET_INBOX_REQUESTS = 1_000_000

# Scenarios that count submissions: the (form GET, POST) and the longer journey.
SUBMISSIONS = ("send", "submit")

LABELS = {
    "catalogue": "(a) catalogue page",
    "home": "(a') commune home page",
    "mycatalogue": "(a'') catalogue page, as a logged-in citizen",
    "fresh": "(b) form page, opened from the service page",
    "form": "(b') form page of a saved draft (a step)",
    "service": "(b'') public service page",
    "send": "(c) submission: form GET, POST (form without a summary page)",
    "submit": "(c') journey with a summary page (5 requests)",
    "inbox": "(d) agent inbox, first page",
    "search": "(e) full-text search",
    "request": "(f) request page (agent)",
    "dashboard": "(g) EPCI dashboard",
    "nginx": "nginx, catalogue bytes as a static file",
}


def _ms(us):
    if us is None:
        return "–"
    if us < 1000:
        return f"{us / 1000:.3f}"
    return f"{us / 1000:.1f}" if us < 100_000 else f"{us / 1000:.0f}"


def _mb(kb):
    return "–" if kb is None else f"{kb / 1024:.0f}"


def _met(ok):
    return "met" if ok else "**missed**"


def _errors(run):
    """Non-2xx/3xx responses and socket errors (connect, read, write, timeout), as wrk counts them."""
    return (
        run.get("errors_status", 0)
        + run.get("errors_connect", 0)
        + run.get("errors_read", 0)
        + run.get("errors_write", 0)
        + run.get("errors_timeout", 0)
    )


def _failures(run):
    """Errors, and the flow's unexpected answers that were not already errors (a 303 or a 200
    where the submission expected something else)."""
    return _errors(run) + max(0, run.get("unexpected", 0) - run.get("errors_status", 0))


def _rate(run):
    return run["requests"] / (run["duration_us"] / 1e6) if run.get("duration_us") else 0.0


def inbox_target(results_dir, backend):
    """Target 3 (inbox, filtered inbox and search at national scale: p95 < 50 ms) from
    bench/run-inbox.sh's results: (table lines, measured text, met or None when the results are
    missing or do not say they were measured on a territory of the target's size)."""
    path = os.path.join(results_dir, f"inbox-{backend}.json")
    if not os.path.exists(path):
        return [], f"not measured: no bench/results/inbox-{backend}.json (bench/run-inbox.sh, or bench/run-all.sh)", None
    d = json.load(open(path))
    results = d.get("results") or []
    if not results:
        return [], f"not measured: bench/results/inbox-{backend}.json holds no result", None
    tenants, requests = d.get("tenants"), d.get("requests")
    where = (
        f"{requests:,} requests over {tenants:,} tenants, commit {d.get('commit', '?')}, {d.get('date', '?')}"
        if tenants and requests
        else "territory not recorded (the bench was run by hand, not by bench/run-inbox.sh)"
    )
    lines = [
        f"Back-office at national scale (`bench/run-inbox.sh`, in-process through the router; {where}), ms:",
        "",
        "| scenario | p50 | p95 | p99 | target p95 |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| < {r['target_p95_ms']} ms: {_met(r['met'])} |"
        )
    lines.append("")
    worst = max(results, key=lambda r: r["p95_ms"])
    measured = f"worst p95 {worst['p95_ms']:.1f} ms ({worst['scenario']}); {where}"
    large_enough = (tenants or 0) >= TARGET_INBOX_TENANTS and (requests or 0) >= TARGET_INBOX_REQUESTS
    ok = all(r["met"] for r in results) if large_enough else None
    if tenants and requests and not large_enough:
        measured += "; smaller than the target's territory"
    return lines, measured, ok


def report(results_dir, *backends):
    lines = []
    out = lines.append
    data = {}
    for b in backends:
        path = os.path.join(results_dir, f"load-{b}.json")
        if os.path.exists(path):
            data[b] = json.load(open(path))
    if not data:
        sys.exit("no results")
    first = next(iter(data.values()))
    out("# Load scenarios (bench/run-load.sh)")
    out("")
    out(
        f"Binary `{first['binary']}` ({first.get('build', '?')} build), {first['duration']} per run, "
        f"machine: {first['machine']}. {first['date']}."
    )
    out("")
    targets = []
    for b, d in data.items():
        runs = d["runs"]
        conc = sorted({r["concurrency"] for r in runs})
        top = max(conc)
        out(f"## {d['backend_label']}")
        out("")
        out(
            f"Start-up (launch → `/healthz` 200, demo loaded into an empty database): "
            f"**{d['startup_ms']:.0f} ms**; restart on the loaded data: {d.get('restart_ms', 0):.0f} ms. "
            f"Idle RSS after start: **{_mb(d['idle_rss_kb'])} MB**; after the {d.get('logins', 8)} logins "
            f"of the harness (argon2id): {_mb(d.get('logins_rss_kb'))} MB. "
            f"Peak RSS over the whole run (VmHWM): **{_mb(d['final_hwm_kb'])} MB**."
        )
        if d.get("log_problems"):
            kinds = "; ".join(f"`{k}`" for k in str(d.get("log_problem_kinds", "")).split("|") if k)
            out("")
            out(f"The server logged **{d['log_problems']} warnings or errors** during the runs: {kinds}.")
        out("")
        out(
            "| scenario | conc. | req/s | p50 ms | p99 ms | errors | 3xx | guichet CPU | CPU ms/req | max RSS MB | notes |"
        )
        out("|---|---|---|---|---|---|---|---|---|---|---|")
        order = list(LABELS)
        for r in sorted(runs, key=lambda r: (order.index(r["scenario"]), r["concurrency"], r.get("beside", ""))):
            s = r.get("sample", {})
            rate = _rate(r)
            cpu = s.get("cpu_s")
            cpu_txt = "–" if cpu is None or r["scenario"] == "nginx" else f"{100 * s['cpu_cores']:.0f} %"
            per_req = (
                "–"
                if cpu is None or r["scenario"] == "nginx" or not r["requests"]
                else f"{1000 * cpu / r['requests']:.2f}"
            )
            notes = []
            if r["scenario"] in SUBMISSIONS:
                notes.append(f"**{r['submitted'] / (r['duration_us'] / 1e6):.1f} submissions/s**")
                if "db_new_requests" in r:
                    notes.append(f"{r['db_new_requests']} new rows in `requests` for {r['submitted']} counted")
                if "emails_waiting" in r:
                    if r.get("emails_drain_s") is not None:
                        notes.append(
                            f"{r['emails_waiting']} acknowledgement e-mails waiting at the end, "
                            f"all sent {r['emails_drain_s']} s later"
                        )
                    else:
                        notes.append(
                            f"{r['emails_waiting']} acknowledgement e-mails waiting at the end, "
                            f"**{r['emails_left']} still waiting** after the wait"
                        )
            if r["scenario"] == "nginx":
                notes.append(
                    f"just before {LABELS[r['beside']].split(' ', 1)[0]}" if r.get("beside") else "at the start"
                )
                if (r.get("measurements") or 1) > 1:
                    notes.append(
                        f"highest of {r['measurements']} measurements (the machine was under 90 % busy)"
                    )
            if "query" in r:
                notes.append(f"q={r['query']}: {r.get('hits', '?')} matching request(s)")
            if "pages" in r:
                notes.append(f"cycles over {r['pages']} requests")
            if s.get("postgres_cpu_s"):
                notes.append(f"postgres CPU {100 * s['postgres_cpu_s'] / s['wall_s']:.0f} %")
            if s.get("system_busy") is not None:
                notes.append(f"machine busy {100 * s['system_busy']:.0f} %")
            if r.get("unexpected"):
                steps = ", ".join(f"{k} {v}" for k, v in r["unexpected_by_step"].items() if v)
                samples = "; ".join(r.get("unexpected_samples") or [])
                notes.append(f"**{r['unexpected']} unexpected answers** ({steps}: {samples})")
            rss = "–" if r["scenario"] == "nginx" else _mb(s.get("max_rss_kb"))
            out(
                f"| {LABELS[r['scenario']]} | {r['concurrency']} | {rate:.0f} | {_ms(r['latency_p50_us'])} "
                f"| {_ms(r['latency_p99_us'])} | {_errors(r)} | {r.get('status_3xx', 0)} | {cpu_txt} | {per_req} "
                f"| {rss} | {'; '.join(notes)} |"
            )
        out("")
        all_raw = d.get("raw_inserts", [])
        # The measurements at the start, and those taken just before a submission scenario's
        # run (compared with that run when there is one).
        raw = [x for x in all_raw if not x.get("beside")]
        beside_raw = {(x["beside"], x["clients"]): x for x in all_raw if x.get("beside")}

        def raw_for(name, clients):
            return beside_raw.get((name, clients)) or next((x for x in raw if x["clients"] == clients), None)

        if all_raw:
            out(
                f"Raw durable inserts ({all_raw[0]['tool']}; 1 KB row, one row per transaction, "
                f"{d['raw_label']}), at the start and just before each submission run:"
            )
            out("")
            out("| clients | measured | rows/s | p50 ms | p99 ms | submissions/s | ratio | target ≥ 50 % |")
            out("|---|---|---|---|---|---|---|---|")
            for x in raw:
                out(
                    f"| {x['clients']} | at the start | {x['rate']:.0f} | {_ms(x['latency_p50_us'])} "
                    f"| {_ms(x['latency_p99_us'])} | | | |"
                )
            for name in SUBMISSIONS:
                for sub in sorted((r for r in runs if r["scenario"] == name), key=lambda r: r["concurrency"]):
                    x = raw_for(name, sub["concurrency"])
                    if x is None:
                        continue
                    sps = sub["submitted"] / (sub["duration_us"] / 1e6)
                    ratio = sps / x["rate"] if x["rate"] else None
                    when = f"just before {name}" if x.get("beside") else "at the start"
                    out(
                        f"| {x['clients']} | {when} | {x['rate']:.0f} | {_ms(x['latency_p50_us'])} "
                        f"| {_ms(x['latency_p99_us'])} | {sps:.1f} ({name}) "
                        f"| {'–' if ratio is None else f'{100 * ratio:.0f} %'} "
                        f"| {'–' if ratio is None else _met(ratio >= TARGET_RATIO)} |"
                    )
            out("")
        ceilings = d.get("ceilings", [])

        def ceiling_for(name, clients):
            return next((x for x in ceilings if x["scenario"] == name and x["concurrency"] == clients), None)

        if ceilings:
            out(
                "The same submissions' statements replayed by pgbench (`bench/load/pg-send.sql`: PostgreSQL "
                "alone, no HTTP, no Guichet), on a copy of this run's database after the scenarios, "
                "with the connections Guichet's pool would give them: the ceiling of (c) on this machine:"
            )
            out("")
            out(
                "| conc. | connections (+ job runners') | replayed submissions/s | p50 ms | p99 ms | failed "
                "| e-mails waiting at the end "
                "| Guichet's submissions/s | Guichet / replay | replay / raw inserts |"
            )
            out("|---|---|---|---|---|---|---|---|---|---|")
            for x in ceilings:
                sub = next((r for r in runs if r["scenario"] == x["scenario"] and r["concurrency"] == x["concurrency"]), None)
                sps = sub["submitted"] / (sub["duration_us"] / 1e6) if sub else None
                raw_x = raw_for(x["scenario"], x["concurrency"])
                sps_txt = "–" if sps is None else f"{sps:.1f}"
                of_replay = "–" if sps is None or not x["rate"] else f"{100 * sps / x['rate']:.0f} %"
                of_raw = "–" if not raw_x or not raw_x["rate"] else f"{100 * x['rate'] / raw_x['rate']:.0f} %"
                out(
                    f"| {x['concurrency']} | {x['clients']} + {x.get('runners', '–')} | {x['rate']:.0f} "
                    f"| {_ms(x['latency_p50_us'])} | {_ms(x['latency_p99_us'])} "
                    f"| {x['failures']} | {x.get('emails_waiting', '–')} | {sps_txt} | {of_replay} | {of_raw} |"
                )
            out("")
        # Versus nginx.
        # nginx at the start, and just before each page scenario's run (compared with it).
        nginx = {r["concurrency"]: r for r in runs if r["scenario"] == "nginx" and not r.get("beside")}
        beside_nginx = {
            (r["beside"], r["concurrency"]): r for r in runs if r["scenario"] == "nginx" and r.get("beside")
        }

        def nginx_for(name, c):
            return beside_nginx.get((name, c)) or nginx.get(c)

        if nginx or beside_nginx:
            out("Versus nginx serving the catalogue's bytes (same wrk settings), measured just before each run:")
            out("")
            out("| page | conc. | req/s | nginx req/s | nginx measured | ratio | p99 ms |")
            out("|---|---|---|---|---|---|---|")
            for name in ("catalogue", "home", "mycatalogue", "fresh", "form", "service"):
                for r in sorted((r for r in runs if r["scenario"] == name), key=lambda r: r["concurrency"]):
                    n = nginx_for(name, r["concurrency"])
                    if not n:
                        continue
                    ratio = _rate(r) / _rate(n) if _rate(n) else 0
                    when = "just before" if n.get("beside") else "at the start"
                    out(
                        f"| {LABELS[name]} | {r['concurrency']} | {_rate(r):.0f} | {_rate(n):.0f} | {when} "
                        f"| {100 * ratio:.0f} % | {_ms(r['latency_p99_us'])} |"
                    )
            out("")
        # Targets for this backend.
        at = "" if top == 64 else f" (64 not run: at {top})"
        for name in ("catalogue", "fresh", "form"):
            r = next((r for r in runs if r["scenario"] == name and r["concurrency"] == top), None)
            n = nginx_for(name, top)
            if r and n:
                ratio = _rate(r) / _rate(n)
                p99 = r["latency_p99_us"] / 1000
                targets.append(
                    (
                        b,
                        f"{LABELS[name]}: ≥ 50 % of nginx at concurrency 64{at}, p99 < 10 ms",
                        f"{100 * ratio:.0f} %, p99 {p99:.1f} ms (nginx {_rate(n):.0f}/s "
                        f"{'just before' if n.get('beside') else 'at the start'})",
                        ratio >= TARGET_RATIO and p99 < TARGET_P99_MS,
                    )
                )
        if all_raw:
            for name in SUBMISSIONS:
                sub = next((r for r in runs if r["scenario"] == name and r["concurrency"] == top), None)
                x = raw_for(name, top)
                if sub and x and x["rate"]:
                    sps = sub["submitted"] / (sub["duration_us"] / 1e6)
                    # What limits it, when it was measured: PostgreSQL alone running the same work.
                    cap = ceiling_for(name, top)
                    cap_txt = (
                        f"; PostgreSQL alone replaying its statements: {cap['rate']:.0f}/s, "
                        f"{100 * cap['rate'] / x['rate']:.0f} % of raw"
                        if cap and cap["rate"]
                        else ""
                    )
                    targets.append(
                        (
                            b,
                            f"{LABELS[name]}: durable submissions/s ≥ 50 % of raw durable inserts/s ({x['clients']} clients)",
                            f"{sps:.1f} vs {x['rate']:.0f} "
                            f"({'just before' if x.get('beside') else 'at the start'}): "
                            f"{100 * sps / x['rate']:.0f} %{cap_txt}",
                            sps / x["rate"] >= TARGET_RATIO,
                        )
                    )
        inbox_lines, inbox_measured, inbox_ok = inbox_target(results_dir, b)
        lines.extend(inbox_lines)
        targets.append(
            (
                b,
                "inbox first page, filtered inbox and full-text search at 1,000,000 requests over "
                "35,000 tenants: p95 < 50 ms",
                inbox_measured,
                inbox_ok,
            )
        )
        errors = sum(_failures(r) for r in runs)
        targets.append((b, "no error responses (non-2xx/3xx, socket errors, unexpected flow answers)", str(errors), errors == 0))
        targets.append((b, "idle RSS < 50 MB", f"{_mb(d['idle_rss_kb'])} MB", d["idle_rss_kb"] < TARGET_IDLE_MB * 1024))
        targets.append(
            (b, "RSS < 250 MB under load (VmHWM)", f"{_mb(d['final_hwm_kb'])} MB", d["final_hwm_kb"] < TARGET_LOAD_MB * 1024)
        )
        targets.append((b, "start-up < 1 s", f"{d['startup_ms']:.0f} ms", d["startup_ms"] < TARGET_START_S * 1000))
        big = d.get("large_startup")
        if big and big.get("startup_ms") is not None:
            targets.append(
                (b, f"start-up < 1 s with {big['label']}", f"{big['startup_ms']:.0f} ms, idle RSS {_mb(big.get('idle_rss_kb'))} MB",
                 big["startup_ms"] < TARGET_START_S * 1000)
            )
        else:
            targets.append((b, "start-up < 1 s with 35,000 tenants", (big or {}).get("note", "not measured"), None))
    out("## Targets")
    out("")
    out("| backend | target | measured | |")
    out("|---|---|---|---|")
    for b, what, measured, ok in targets:
        out(f"| {b} | {what} | {measured} | {'not measured' if ok is None else _met(ok)} |")
    out("")
    text = "\n".join(lines)
    with open(os.path.join(results_dir, "load.md"), "w") as f:
        f.write(text)
    print(text)


def repeat(url, cookie, n):
    """GETs URL N times on one keep-alive connection, as a browser's next clicks would; exits
    with a message on the first answer that is not 200 (a lost session answers 303)."""
    u = urllib.parse.urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    headers = {"Cookie": cookie} if cookie else {}
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    for i in range(int(n)):
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit(f"GET {path}: answer {i + 1} was {r.status} {r.getheader('location') or ''}")
    c.close()


def callgrind_total(path):
    """The instructions (Ir) a callgrind dump counted, from its `summary:` or `totals:` line."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                print(int(line.split()[1]))
                return
    sys.exit(f"{path}: no summary line")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    {
        "free-port": free_port,
        "wait-healthz": wait_healthz,
        "json": kv_json,
        "run-json": run_json,
        "assemble": assemble,
        "login": login,
        "status": status,
        "sample": sample,
        "raw-sqlite": raw_sqlite,
        "pgbench-json": pgbench_json,
        "count-requests": count_requests,
        "email-backlog": email_backlog,
        "report": report,
        "repeat": repeat,
        "callgrind-total": callgrind_total,
    }[cmd](*args)


if __name__ == "__main__":
    main()
