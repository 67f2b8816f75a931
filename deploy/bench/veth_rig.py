#!/usr/bin/env python3
"""veth benchmark rig for furui and the passive receivers it is compared with.

Receivers: furui with its default snap (headers plus what the rules read:
here, no payload rules, so headers only), furui-whole (snap = "whole":
every byte copied), furui-4k (the default snap, its UMEM on 4 KiB pages:
see FURUI_BENCH_HUGE below), tcpdump (whole frames) and tcpdump-s96 (-s 96, what
softflowd asks for), softflowd (its default 96-byte snap) and pmacctd.
For each workload (64-byte UDP; a ~650-byte mix of 64/576/1500) and each
receiver, RUNS runs of DURATION seconds in two phases:
  ceiling    trafgen on core 1 with no rate limit: packets/s received and
             loss at the generator's ceiling (which differs per receiver:
             the generator's core also runs the veth's receive path, XDP
             and the AF_XDP copy included);
  same rate  trafgen paced to BENCH_RATE (default 250000pps, below every
             ceiling): CPU time per packet of each receiver at one offered
             rate, as the issue asks. (trafgen paces by whole-microsecond
             gaps: rates of 1e6/N pps are exact, others are not.)
Per run it records:
  offered   packets the generator's veth end transmitted (its tx counter)
  received  packets the receiver reports it received (own counters)
  lost      packets the receiver or its kernel socket reports dropped
  cpu       user+system CPU seconds of the receiving process(es), from
            /proc/<pid>/stat, over the run
  on-CPU    the same from the scheduler's runtime (/proc/<pid>/task/*/schedstat),
            a cross-check of the tick-sampled /proc/<pid>/stat figure
For furui, each run's line also gives the time spent inside batches per
frame and the number of batches (from its erase-latency histogram): the
rest of its CPU is waking up and going back to sleep.
Reported: median and range over runs of received pps and CPU ns/packet,
and furui's CPU-per-packet ratio to each other receiver, measured at the
same rate (the ceiling phase's ratios are printed too, for reference).
Two more phases:
  queues     furui alone on the mix at the same rate, on a veth with one RX
             queue and then two (one worker per queue, pinned to cores 0
             and 1): each queue's in-batch throughput (frames received /
             furui_batch_seconds_total), summed over the queues;
  offline    a deterministic capture (furui-gen --offline-capture: 1 M
             packets, ~20 k flows, 60-1,400 bytes, a quarter domestic),
             read RUNS times by `furui replay`, `softflowd -r` and
             `tcpdump -r -w /dev/null`, interleaved; CPU is user+system
             time of each process (getrusage).
The summary ends with the issue's ratios, each from this one run.
Environment knobs: BENCH_SECONDS, BENCH_RUNS, BENCH_RATE, BENCH_WORKLOADS
and BENCH_RECEIVERS and BENCH_PHASES (comma lists; phases: live, queues,
offline), BENCH_OFFLINE_PACKETS, BENCH_QUEUE_RATE and BENCH_QUEUE_RATE2
(the queues phase's rates for 1 and 2 queues), FURUI_BENCH_CAPTURE (extra
[capture] lines for furui), FURUI_BENCH_INDICATOR (furui's indicator set;
the default selects every generated packet), FURUI_BENCH_HUGE (0: furui's
UMEM on 4 KiB pages) and FURUI_BIN (another furui binary, e.g. a
stripped-down build measured as a lower bound). Traffic stays inside the two
namespaces this script creates; they are deleted at exit.
"""
import json, os, re, signal, statistics, subprocess, sys, tempfile, time

DURATION = float(os.environ.get("BENCH_SECONDS", "5"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
RATE = os.environ.get("BENCH_RATE", "250000pps")
PHASES = (("ceiling", None), ("same rate", RATE))
NS_CAP, NS_GEN = "furui-bench-cap", "furui-bench-gen"
CAP_IF, GEN_IF = "fu-bench-cap", "fu-bench-gen"
ROOT = os.getcwd()
FURUI = os.environ.get("FURUI_BIN", f"{ROOT}/target/release/furui")
GEN = f"{ROOT}/target/release/furui-gen"
TICK = os.sysconf("SC_CLK_TCK")
WORKLOADS = [w for w in os.environ.get("BENCH_WORKLOADS", "udp64,mix650").split(",") if w]
RECEIVERS = [r for r in os.environ.get(
    "BENCH_RECEIVERS", "furui,furui-whole,furui-4k,tcpdump,tcpdump-s96,softflowd,pmacctd").split(",") if r]
BENCH_PHASES = [p for p in os.environ.get("BENCH_PHASES", "live,queues,offline").split(",") if p]
# The queues phase: the offered rate per number of RX queues.
QUEUE_RATES = {1: os.environ.get("BENCH_QUEUE_RATE", "250000pps"), 2: os.environ.get("BENCH_QUEUE_RATE2", "500000pps")}
# furui's UMEM on 2 MiB huge pages (`huge_pages = true`): the rig reserves
# them for the run and gives them back at exit. FURUI_BENCH_HUGE=0: 4 KiB
# pages, the default config.
HUGE = os.environ.get("FURUI_BENCH_HUGE", "1") != "0"
HUGE_PAGES = 64  # two queues' default UMEMs (16 pages each), with room
OFFLINE_PACKETS = int(os.environ.get("BENCH_OFFLINE_PACKETS", "1000000"))


def sh(*a, check=True, **kw):
    return subprocess.run(a, check=check, capture_output=True, text=True, **kw)


def ns(n, *a, **kw):
    return sh("ip", "netns", "exec", n, *a, **kw)


def cleanup():
    for n in (NS_CAP, NS_GEN):
        sh("ip", "netns", "del", n, check=False)


def rig(queues=1):
    cleanup()
    sh("ip", "netns", "add", NS_CAP)
    sh("ip", "netns", "add", NS_GEN)
    for n in (NS_CAP, NS_GEN):
        ns(n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "-n", n, "link", "set", "lo", "up")
    q = ["numtxqueues", str(queues), "numrxqueues", str(queues)] if queues > 1 else []
    sh("ip", "-n", NS_CAP, "link", "add", CAP_IF, *q, "type", "veth", "peer", "name", GEN_IF, *q, "netns", NS_GEN)
    sh("ip", "-n", NS_CAP, "link", "set", CAP_IF, "up")
    sh("ip", "-n", NS_GEN, "link", "set", GEN_IF, "up")
    ns(NS_CAP, "ethtool", "-K", CAP_IF, "gro", "off", check=False)


def tx_packets():
    j = json.loads(sh("ip", "-n", NS_GEN, "-s", "-j", "link", "show", GEN_IF).stdout)
    return j[0]["stats64"]["tx"]["packets"]


def cpu_seconds(pids):
    """user+system CPU seconds of the processes, from /proc/<pid>/stat."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total / TICK


def oncpu_seconds(pids):
    """Seconds the processes' threads ran, from /proc/<pid>/task/*/schedstat:
    the scheduler's own runtime, in nanoseconds. /proc/<pid>/stat's
    utime+stime comes from sampling at each timer tick on kernels with
    tick-based CPU accounting (this one: HZ=250), which misses a process
    that wakes just after a tick and sleeps again before the next; this
    does not."""
    total = 0
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return total / 1e9


def tree(pid):
    """pid and all its descendants (pmacctd forks a plugin process)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            kids = open(f"/proc/{p}/task/{p}/children").read().split()
        except FileNotFoundError:
            kids = []
        todo += [int(k) for k in kids]
    return out


def trafgen_conf(workload, path):
    if workload == "udp64":
        flows = [("--size", "64")]
    else:  # ~650-byte mix: 4 x 64, 3 x 576, 3 x 1500 -> mean 648 bytes
        flows = [("--size", "64")] * 4 + [("--size", "576")] * 3 + [("--size", "1500")] * 3
    with open(path, "w") as f:
        for i, (k, v) in enumerate(flows):
            out = sh(GEN, "--iface", GEN_IF, "--trafgen", "--count", "1", k, v,
                     "--flow", f"203.0.113.{1 + i},198.18.{i}.1,udp,{40000 + i},53").stdout
            f.write(out)
    return sum(int(v) for _, v in flows) / len(flows)


def metrics():
    raw = ns(NS_CAP, "python3", "-c",
             "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9464/metrics').read().decode())",
             check=False).stdout
    m = {}
    for line in raw.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                m[k] = float(v)
            except ValueError:
                pass
    return m


def msum(m, name):
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def furui_config(path, t, capture="", huge=None):
    """The furui config of every phase; `capture` adds [capture] lines."""
    huge = HUGE if huge is None else huge
    open(path, "w").write(f"""
[capture]
interface = "{CAP_IF}"
{"huge_pages = true" if huge else ""}
{capture}
{os.environ.get("FURUI_BENCH_CAPTURE", "")}
[domestic]
prefixes = ["192.0.2.0/24"]
[measures.transit]
enabled = true
not_before = "2026-01-01T00:00:00Z"
not_after = "2099-01-01T00:00:00Z"
[[indicators]]
name = "bench"
prefixes = ["{os.environ.get("FURUI_BENCH_INDICATOR", "203.0.113.0/28")}"]
[records]
path = "{t}/records.jsonl"
""")


class Receiver:
    def __init__(self, name, tmp, queues=1):
        self.name, self.tmp, self.proc, self.queues = name, tmp, None, queues

    def start(self):
        t = self.tmp
        if self.name.startswith("furui"):
            cfg = f"{t}/furui.toml"
            capture = 'snap = "whole"\n' if self.name == "furui-whole" else ""
            if self.queues > 1:
                qs = ", ".join(str(q) for q in range(self.queues))
                capture += f"queues = [{qs}]\ncpus = [{qs}]\n"
            furui_config(cfg, t, capture, huge=False if self.name == "furui-4k" else None)
            cmd = [FURUI, "run", "--config", cfg]
        elif self.name == "tcpdump":
            cmd = ["tcpdump", "-i", CAP_IF, "-n", "-w", "/dev/null", "-B", "32768"]
        elif self.name == "tcpdump-s96":
            cmd = ["tcpdump", "-i", CAP_IF, "-n", "-s", "96", "-w", "/dev/null", "-B", "32768"]
        elif self.name == "softflowd":
            cmd = ["softflowd", "-d", "-i", CAP_IF, "-n", "127.0.0.1:2055", "-c", f"{t}/softflowd.ctl", "-v", "9"]
        elif self.name == "pmacctd":
            conf = f"{t}/pmacctd.conf"
            open(conf, "w").write(f"daemonize: false\npcap_interface: {CAP_IF}\naggregate: src_host, dst_host, src_port, dst_port, proto\nplugins: print\nprint_refresh_time: 60\nprint_output_file: {t}/pmacct.out\nlogfile: {t}/pmacctd.log\n")
            cmd = ["pmacctd", "-f", conf]
        self.log = open(f"{t}/{self.name}.stderr", "w+")
        cores = ",".join(str(c) for c in range(self.queues))
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS_CAP, "taskset", "-c", cores] + cmd,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        time.sleep(2.5 if self.name.startswith("furui") else 1.5)
        if self.proc.poll() is not None:
            self.log.seek(0)
            raise RuntimeError(f"{self.name} did not start: {self.log.read()[-2000:]}")
        self.before = self.counters()

    def pids(self):
        return tree(self.proc.pid)

    def counters(self):
        """(received, lost) by the receiver's own account, where it has one."""
        if self.name.startswith("furui"):
            m = metrics()
            lost = msum(m, "furui_xsk_rx_ring_full_total") + msum(m, "furui_xsk_rx_dropped_total")
            # For the report: time spent inside batches and their number
            # (the rest of furui's CPU is waking up and sleeping).
            self.batch = (msum(m, "furui_erase_latency_seconds_sum"), msum(m, "furui_erase_latency_seconds_count"))
            # Per queue: frames received and seconds inside batches.
            self.per_queue = {q: (m.get(f'furui_frames_received_total{{queue="{q}"}}', 0),
                                  m.get(f'furui_batch_seconds_total{{queue="{q}"}}', 0)) for q in range(self.queues)}
            return msum(m, "furui_frames_received_total"), lost
        if self.name == "softflowd":
            out = ns(NS_CAP, "softflowctl", "-c", f"{self.tmp}/softflowd.ctl", "statistics", check=False).stdout
            rx = re.search(r"Packets processed: (\d+)", out)
            drops = [int(x) for x in re.findall(r"Packets dropped by (?:libpcap|interface): (\d+)", out)]
            return (int(rx.group(1)) if rx else None), (sum(drops) if drops else None)
        return None, None

    def stop(self):
        before_batch = getattr(self, "batch", None)
        before_queues = getattr(self, "per_queue", None)
        after = self.counters()
        if before_queues:
            self.queue_deltas = {q: (self.per_queue[q][0] - before_queues[q][0], self.per_queue[q][1] - before_queues[q][1])
                                 for q in before_queues}
        if before_batch:
            self.batches = (self.batch[0] - before_batch[0], self.batch[1] - before_batch[1])
        recv = lost = None
        if self.name == "pmacctd":
            # ip netns exec and taskset exec in place: proc.pid is the core
            # process; USR1 makes it log pcap's received/dropped counts.
            os.kill(self.proc.pid, signal.SIGUSR1)
            time.sleep(1.0)
        for p in reversed(self.pids()):
            try:
                os.kill(p, signal.SIGINT if self.name.startswith("tcpdump") else signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.seek(0)
        text = self.log.read()
        if self.name.startswith("tcpdump"):
            c = re.search(r"(\d+) packets received by filter", text)
            d = re.search(r"(\d+) packets dropped by kernel", text)
            recv = int(c.group(1)) - (int(d.group(1)) if d else 0) if c else None
            lost = int(d.group(1)) if d else None
            return recv, lost
        if self.name == "pmacctd":
            try:
                log = open(f"{self.tmp}/pmacctd.log").read()
            except FileNotFoundError:
                log = text
            # "stats [iface,0] time=... received_packets=N dropped_packets=M"
            m = re.findall(r"received_packets=(\d+) dropped_packets=(\d+)", log)
            if m:
                r, d = map(int, m[-1])
                return r - d, d
            return None, None
        if after[0] is not None and self.before[0] is not None:
            recv = after[0] - self.before[0]
        if after[1] is not None and self.before[1] is not None:
            lost = after[1] - self.before[1]
        return recv, lost


def run_once(name, workload, conf, tmp, rate, queues=1):
    # A fresh veth pair per run: re-attaching XDP to a veth that already
    # had a program (and AF_XDP sockets) was seen to lose frames in later
    # runs, an artifact no deployment has (it attaches once).
    rig(queues)
    r = Receiver(name, tmp, queues)
    r.start()
    pids = r.pids()
    tx0, cpu0, on0 = tx_packets(), cpu_seconds(pids), oncpu_seconds(pids)
    # start_new_session makes trafgen (ip netns exec and taskset exec in
    # place) the leader of its own process group, with its per-CPU child:
    # killpg reaches both. (A `setsid` in the command would fork it into
    # another group that killpg misses: paced trafgens were seen to outlive
    # their run and skew the next ones.)
    g = subprocess.Popen(["ip", "netns", "exec", NS_GEN, "taskset", "-c", "1", "trafgen",
                          "--dev", GEN_IF, "--conf", conf, "--cpus", "1", "--qdisc-path", "-q"]
                         + (["--rate", rate] if rate else []),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(DURATION)
    os.killpg(g.pid, signal.SIGINT)
    try:
        g.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(g.pid, signal.SIGKILL)
        g.wait()
    # The per-CPU child may linger after the parent: end the whole group.
    try:
        os.killpg(g.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(1.0)  # let the receiver drain its rings
    tx1, cpu1, on1 = tx_packets(), cpu_seconds(r.pids()), oncpu_seconds(r.pids())
    recv, lost = r.stop()
    offered = tx1 - tx0
    extra = {}
    if getattr(r, "batches", None) and recv:
        extra = {"batch_ns_per_frame": r.batches[0] * 1e9 / recv, "batches": int(r.batches[1])}
    if getattr(r, "queue_deltas", None):
        # In-batch throughput: each worker's frames over its time inside
        # batches, summed over the workers (they run side by side).
        extra["queues"] = {q: {"frames": f, "batch_s": s} for q, (f, s) in r.queue_deltas.items()}
        extra["in_batch_pps"] = sum(f / s for f, s in r.queue_deltas.values() if s > 0)
    return {**extra, "offered": offered, "received": recv, "lost": lost, "cpu_s": cpu1 - cpu0,
            "cpu_ns_per_pkt": (cpu1 - cpu0) * 1e9 / offered if offered else None,
            "oncpu_ns_per_pkt": (on1 - on0) * 1e9 / offered if offered else None,
            "offered_pps": offered / DURATION,
            "received_pps": (recv / DURATION) if recv is not None else None}


def med(xs):
    xs = [x for x in xs if x is not None]
    return (statistics.median(xs), min(xs), max(xs)) if xs else (None, None, None)


def fmt(t, unit=""):
    m, lo, hi = t
    if m is None:
        return "n/a"
    return f"{m:,.0f}{unit} [{lo:,.0f}-{hi:,.0f}]"


def cpu_of(cmd):
    """User+system CPU seconds of one run of `cmd` (its own rusage)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError(f"{cmd[0]} failed (status {status})")
    return ru.ru_utime + ru.ru_stime


def offline_phase(tmp):
    """The offline phase: CPU seconds per tool, RUNS runs each, interleaved."""
    pcap = f"{tmp}/offline.pcap"
    sh(GEN, "--offline-capture", pcap, "--offline-packets", str(OFFLINE_PACKETS))
    cfg = f"{tmp}/offline.toml"
    furui_config(cfg, tmp)
    tools = {
        "furui replay": [FURUI, "replay", "--config", cfg, "--pcap", pcap],
        "softflowd -r": ["softflowd", "-r", pcap, "-n", "127.0.0.1:2055", "-v", "9"],
        "tcpdump -r": ["tcpdump", "-r", pcap, "-w", "/dev/null"],
    }
    subprocess.run(["cat", pcap], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    out = {name: [] for name in tools}
    for run in range(RUNS):
        for name, cmd in tools.items():
            out[name].append(cpu_of(["taskset", "-c", "0"] + cmd))
            print(f"offline run {run + 1} {name:14} cpu {out[name][-1]:.3f}s", flush=True)
    os.unlink(pcap)
    return out


def live_summary(results, phase_rates):
    for workload in WORKLOADS:
        for phase, rate in phase_rates:
            print(f"\n{workload}, {phase}" + (f" ({rate})" if rate else " (generator's ceiling)") + ":")
            print(f"  {'receiver':11} {'offered pps':>24} {'received pps':>24} {'lost pkts':>18} {'CPU ns/pkt':>20}"
                  f" {'on-CPU ns/pkt':>20}")
            for name in RECEIVERS:
                rs = results[(workload, phase, name)]
                print(f"  {name:11} {fmt(med([r['offered_pps'] for r in rs])):>24} "
                      f"{fmt(med([r['received_pps'] for r in rs])):>24} {fmt(med([r['lost'] for r in rs])):>18} "
                      f"{fmt(med([r['cpu_ns_per_pkt'] for r in rs])):>20} "
                      f"{fmt(med([r['oncpu_ns_per_pkt'] for r in rs])):>20}")
            if "furui" not in RECEIVERS:
                continue
            f = med([r["cpu_ns_per_pkt"] for r in results[(workload, phase, "furui")]])[0]
            for name in RECEIVERS:
                o = med([r["cpu_ns_per_pkt"] for r in results[(workload, phase, name)]])[0]
                if name != "furui" and f and o:
                    print(f"  furui CPU/packet / {name} CPU/packet = {f / o:.2f}")


def ratios(results, phase_rates, queue_results, offline):
    """The issue's targets, each from this run."""
    print("\nRatios (targets in brackets):")
    same = [p for p, r in phase_rates if r]
    ceiling = [p for p, r in phase_rates if not r]
    for workload in WORKLOADS if results else []:
        if "furui" in RECEIVERS and "softflowd" in RECEIVERS:
            for p in same:
                f = med([r["cpu_ns_per_pkt"] for r in results[(workload, p, "furui")]])[0]
                o = med([r["cpu_ns_per_pkt"] for r in results[(workload, p, "softflowd")]])[0]
                if f and o:
                    print(f"  {workload}: furui CPU/packet / softflowd's at {RATE}: {f / o:.2f}  [<= 1.0]")
            for p in ceiling:
                fr = results[(workload, p, "furui")]
                f = med([r["received_pps"] for r in fr])[0]
                o = med([r["received_pps"] for r in results[(workload, p, "softflowd")]])[0]
                lost = max((r["lost"] or 0) for r in fr)
                if f and o:
                    print(f"  {workload}: at the ceiling, furui received pps / softflowd's: {f / o:.2f}  [>= 1.0],"
                          f" furui's most lost in a run: {lost:,}  [0]")
    if queue_results:
        one = med([r.get("in_batch_pps") for r in queue_results[1]])[0]
        two = med([r.get("in_batch_pps") for r in queue_results[2]])[0]
        if one and two:
            print(f"  2 queues / 1 queue, in-batch throughput: {two / one:.2f}  [>= 1.8]"
                  f"  ({one:,.0f} vs {two:,.0f} frames/s inside batches)")
    if offline:
        f = statistics.median(offline["furui replay"])
        s = statistics.median(offline["softflowd -r"])
        t = statistics.median(offline["tcpdump -r"])
        print(f"  offline: softflowd -r CPU / furui replay CPU: {s / f:.2f}  [>= 5]")
        print(f"  offline: furui replay CPU / tcpdump -r CPU: {f / t:.2f}  [<= 1.25]")


def main():
    if os.geteuid() != 0:
        sys.exit("the bench rig needs root")
    results, queue_results, offline = {}, {}, None
    nr_huge = "/proc/sys/vm/nr_hugepages"
    huge_before = int(open(nr_huge).read())
    if HUGE:
        open(nr_huge, "w").write(str(huge_before + HUGE_PAGES))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if "live" in BENCH_PHASES:
                for workload in WORKLOADS:
                    conf = f"{tmp}/{workload}.trafgen"
                    trafgen_conf(workload, conf)
                    for phase, rate in PHASES:
                        for run in range(RUNS):
                            # Interleave receivers within a run so drift hits all alike.
                            for name in RECEIVERS:
                                res = run_once(name, workload, conf, tmp, rate)
                                results.setdefault((workload, phase, name), []).append(res)
                                print(f"{workload:7} {phase:9} run {run + 1} {name:11} offered {res['offered']:>9,} "
                                      f"received {res['received'] if res['received'] is not None else 'n/a':>9} "
                                      f"lost {res['lost'] if res['lost'] is not None else 'n/a':>7} "
                                      f"cpu {res['cpu_s']:.2f}s"
                                      + (f" (in batches {res['batch_ns_per_frame']:.0f} ns/frame, {res['batches']:,} batches)"
                                         if "batches" in res else ""), flush=True)
            if "queues" in BENCH_PHASES:
                conf = f"{tmp}/queues.trafgen"
                trafgen_conf("mix650", conf)
                for run in range(RUNS):
                    for queues in (1, 2):
                        # The same load per queue: each worker's batches
                        # fill alike, so the figure is the workers' scaling,
                        # not how a batch's fixed cost spreads.
                        res = run_once("furui", "mix650", conf, tmp, QUEUE_RATES[queues], queues)
                        queue_results.setdefault(queues, []).append(res)
                        per = ", ".join(f"queue {q}: {v['frames']:,.0f} frames in {v['batch_s']:.3f} s"
                                        for q, v in res.get("queues", {}).items())
                        print(f"queues  {queues} run {run + 1} received {res['received']:,} lost {res['lost']} "
                              f"in-batch {res.get('in_batch_pps', 0):,.0f} frames/s ({per})", flush=True)
            if "offline" in BENCH_PHASES:
                offline = offline_phase(tmp)
            print()
            print(f"{DURATION:.0f} s per run, {RUNS} runs, median [min-max]; receiver on core 0, trafgen on core 1;"
                  f" furui's UMEM on {'2 MiB huge' if HUGE else '4 KiB'} pages")
            if results:
                live_summary(results, PHASES)
            if queue_results:
                print(f"\nmix650, furui on 1 RX queue at {QUEUE_RATES[1]} and 2 at {QUEUE_RATES[2]}"
                      " (the same load per queue; workers pinned to cores 0 and 1):")
                for queues, rs in sorted(queue_results.items()):
                    print(f"  {queues} queue(s): in-batch {fmt(med([r.get('in_batch_pps') for r in rs]), ' frames/s')}, "
                          f"received {fmt(med([r['received_pps'] for r in rs]), ' pps')}, "
                          f"lost {fmt(med([r['lost'] for r in rs]))}")
            if offline:
                print(f"\noffline, {OFFLINE_PACKETS:,} packets, CPU seconds (user+system), median [min-max]:")
                for name, xs in offline.items():
                    print(f"  {name:14} {statistics.median(xs):.3f} [{min(xs):.3f}-{max(xs):.3f}]"
                          f"  ({statistics.median(xs) * 1e9 / OFFLINE_PACKETS:.0f} ns/packet)")
            ratios(results, PHASES, queue_results, offline)
            with open(f"{ROOT}/target/bench-veth.json", "w") as out:
                json.dump({"live": {f"{w}/{p}/{n}": v for (w, p, n), v in results.items()},
                           "queues": {str(q): v for q, v in queue_results.items()},
                           "offline": offline}, out, indent=1)
    finally:
        cleanup()
        if HUGE:
            open(nr_huge, "w").write(str(huge_before))


if __name__ == "__main__":
    main()
