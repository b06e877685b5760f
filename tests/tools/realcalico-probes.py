#!/usr/bin/env python3
"""Probes for Test-BpfFlow's ground truth, run against a live realcalico harness (setup.sh done).

  realcalico-probes.py OUTDIR     (root; called by capture-realcalico.sh -P)

Adds entries to the harness's own maps in its private bpffs (never /sys/fs/bpf/tc/globals), written
the way Felix writes them (felix/bpf/nat/maps.go NewNATKey/NewNATValue/NewNATBackendKey/Value,
felix/bpf/routes/map.go NewKey/NewValue), then sends one UDP datagram per probe from the workload
"wl" and records what came back: a reply, ICMP port unreachable (ECONNREFUSED on the connected
socket) or nothing. Writes OUTDIR/probes.json. Calico's own programs decide; this only encodes
map entries (its own code, independent of CalicoBpf's encoders) and watches.

Probes (service ids 105-107 and the 10.99.0.0/16 route are not the harness's):
  no-backend       10.0.0.2:53/udp, id 105, count 0          -> the program answers ICMP port unreachable
  missing-backend  10.0.0.3:53/udp, id 106, count 1, no backend entry for ordinal 0
  nodeport         255.255.255.255:30053/udp, id 107 -> HOST:18091, sent to HOST:30053 (an echo server of
                   this script answers on HOST:18091: the harness's servers stop answering once setup.sh ends)
  blackhole        10.99.0.1:53/udp, route 10.99.0.0/16 BLACKHOLE_DROP (0x100)
  no-route         198.51.100.7:53/udp: no Calico route; the host's table black-holes 198.51.100.0/24 for the
                   probe (added here and removed at the end, so nothing leaves the machine)
  host-to-workload HOST:45005 -> WL:45555/udp from the root netns (nothing listens there: the pod's
                   kernel answers ICMP port unreachable if the packet got through)
"""
import json, os, re, socket, struct, subprocess, sys

out = sys.argv[1]
setup = json.load(open(os.path.join(out, "setup.json")))
pin = setup["pin_path"]
wl = next(w for w in setup["workloads"] if w["name"] == "wl")
host = wl["host_ip"]


def hexs(b):
    return [f"0x{x:02x}" for x in b]


def update(m, key, value):
    subprocess.run(["bpftool", "map", "update", "pinned", os.path.join(pin, m), "key", *hexs(key), "value", *hexs(value)], check=True)


def fe_key(ip, port, proto):  # NewNATKeySrc: prefixlen (56 + source prefix 0), addr, port LE, proto, saddr 0.0.0.0, pad
    return struct.pack("<I", 56) + socket.inet_aton(ip) + struct.pack("<HB", port, proto) + socket.inet_aton("0.0.0.0") + b"\0"


def fe_value(sid, count, local, affinity=0, flags=0):
    return struct.pack("<IIIII", sid, count, local, affinity, flags)


def be_key(sid, ordinal):
    return struct.pack("<II", sid, ordinal)


def be_value(ip, port):  # addr (network order), port LE (NewNATBackendValue), pad
    return socket.inet_aton(ip) + struct.pack("<H", port) + b"\0\0"


fe = next(n for n in os.listdir(pin) if n.startswith("cali_v4_nat_fe"))
update(fe, fe_key("10.0.0.2", 53, 17), fe_value(105, 0, 0))
update(fe, fe_key("10.0.0.3", 53, 17), fe_value(106, 1, 1))
update(fe, fe_key("255.255.255.255", 30053, 17), fe_value(107, 1, 1))
update("cali_v4_nat_be", be_key(107, 0), be_value(host, 18091))
update("cali_v4_routes", struct.pack("<I", 16) + socket.inet_aton("10.99.0.0"), struct.pack("<II", 0x100, 0))

PROBES = [("no-backend", "10.0.0.2", 53, 45001), ("missing-backend", "10.0.0.3", 53, 45002),
          ("nodeport", host, 30053, 45003), ("blackhole", "10.99.0.1", 53, 45004), ("no-route", "198.51.100.7", 53, 45006)]
CLIENT = r'''
import errno, json, socket, sys
src, dst, dport, sport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, sport)); s.connect((dst, dport)); s.settimeout(1.0)
s.send(b"probe")
try:
    data = s.recv(100); print(json.dumps({"outcome": "reply", "bytes": len(data)}))
except ConnectionRefusedError:
    print(json.dumps({"outcome": "icmp-port-unreachable", "errno": errno.ECONNREFUSED}))
except socket.timeout:
    print(json.dumps({"outcome": "nothing"}))
'''
echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
echo.bind((host, 18091))


def serve():
    while True:
        d, a = echo.recvfrom(4096)
        echo.sendto(d, a)


import threading
threading.Thread(target=serve, daemon=True).start()

TRACE = "/sys/kernel/tracing/trace"


def trace_lines(since):
    """Calico's debug lines for rcal-h0 stamped at or after since (trace clock = uptime seconds)."""
    try:
        lines = [l.rstrip("\n") for l in open(TRACE, errors="replace") if "rcal-h0" in l]
    except OSError:
        return []
    stamp = lambda l: float(m.group(1)) if (m := re.search(r"\]\s+\S*\s*(\d+\.\d+):", l)) else -1.0
    return [l for l in lines if stamp(l) >= since]


results = []
try:
    # The host's own table drops the no-route probe (TEST-NET-2): the packet must not leave the machine.
    subprocess.run(["ip", "route", "add", "blackhole", "198.51.100.0/24"], check=True)
    for name, dst, dport, sport in PROBES:
        since = float(open("/proc/uptime").read().split()[0])
        r = subprocess.run(["ip", "netns", "exec", wl["netns"], "python3", "-c", CLIENT, wl["wl_ip"], dst, str(dport), str(sport)],
                           capture_output=True, text=True, check=True)
        # Calico's debug programs log each packet: the lines this probe added (the buffer is shared and small).
        lines = trace_lines(since)
        results.append({"name": name, "proto": 17, "src": wl["wl_ip"], "sport": sport, "dst": dst, "dport": dport, **json.loads(r.stdout), "trace": lines[:120]})
        print(f"== probe {name}: {results[-1]['outcome']}")
finally:
    subprocess.run(["ip", "route", "del", "blackhole", "198.51.100.0/24"], check=False)
# From the host (root netns) to the workload: the workload's tc egress program sees it.
since = float(open("/proc/uptime").read().split()[0])
h = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
h.bind((host, 45005)); h.connect((wl["wl_ip"], 45555)); h.settimeout(1.0)
h.send(b"probe")
try:
    h.recv(100); outcome = {"outcome": "reply"}
except ConnectionRefusedError:
    outcome = {"outcome": "icmp-port-unreachable"}
except socket.timeout:
    outcome = {"outcome": "nothing"}
results.append({"name": "host-to-workload", "proto": 17, "src": host, "sport": 45005, "dst": wl["wl_ip"], "dport": 45555, **outcome, "trace": trace_lines(since)[:120]})
print(f"== probe host-to-workload: {outcome['outcome']}")
json.dump({"about": __doc__.strip().splitlines()[0], "probes": results}, open(os.path.join(out, "probes.json"), "w"), indent=1)

# The maps as the probes left them (counters, conntrack, the entries added above).
for n in sorted(os.listdir(pin)):
    r = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", os.path.join(pin, n)], capture_output=True, text=True)
    if r.returncode == 0:
        open(os.path.join(out, "maps", n + ".json"), "w").write(r.stdout)
