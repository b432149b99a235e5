# python3 -c SCRIPT deploydrill-fault-slow QUEUE DELAY LIFETIME PIDFILE: holds every packet of
# netfilter queue QUEUE that carries data or ends a connection (payload, FIN, RST) for DELAY
# seconds, then lets it through; handshakes and pure ACKs pass at once, so each response
# arrives DELAY late. It binds the queue, forks, writes the child's pid to PIDFILE and exits 0;
# the child runs until SIGTERM or LIFETIME seconds, then lets every held packet through. Plain
# Python 3 speaking netlink: nothing to install on the host, and no netem in the kernel needed.
import collections, errno, os, select, signal, socket, struct, sys, time

# python3 -c: argv[0] is "-c", argv[1] the marker that names the process.
queue, delay, life, pidfile = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
NFQ = 3 << 8  # NFNL_SUBSYS_QUEUE, in the netlink message type
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
sock.bind((0, 0))
held = collections.deque()  # (due, packet id): one delay for all, so oldest first


def send(kind, flags, attrs):
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue)  # nfgenmsg, res_id = the queue
    for typ, val in attrs:
        a = struct.pack("=HH", 4 + len(val), typ) + val
        body += a + b"\0" * (-len(a) % 4)
    sock.send(struct.pack("=IHHII", 16 + len(body), NFQ | kind, flags, 0, 0) + body)


def accept(pid):
    send(1, 1, [(2, struct.pack("!II", 1, pid))])  # NFQNL_MSG_VERDICT: NF_ACCEPT


def carries_data(p):
    if len(p) < 20 or p[9] != 6:
        return True  # not the TCP the rule selects: hold it all the same
    ihl = (p[0] & 15) * 4
    if len(p) < ihl + 14:
        return True
    doff = (p[ihl + 12] >> 4) * 4
    return struct.unpack_from("!H", p, 2)[0] > ihl + doff or p[ihl + 13] & 5


def receive():
    """Reads one batch: queues packets, returns the error of an ack (None if there was none)."""
    data, ack = sock.recv(1 << 16), None
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind == 2:  # NLMSG_ERROR: an ack when its error is 0
            ack = struct.unpack_from("=i", data, off + 16)[0]
        elif kind == NFQ:  # NFQNL_MSG_PACKET
            pid, pkt, a = None, b"", off + 20
            while a + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype & 0x7FFF == 1:  # NFQA_PACKET_HDR
                    pid = struct.unpack_from("!I", data, a + 4)[0]
                elif atype & 0x7FFF == 10:  # NFQA_PAYLOAD
                    pkt = data[a + 4 : a + alen]
                a += (alen + 3) & ~3
            if pid is not None:
                if carries_data(pkt):
                    held.append((time.monotonic() + delay, pid))
                else:
                    accept(pid)
        off += (length + 3) & ~3
    return ack


def configure(what, attrs):
    send(2, 5, attrs)  # NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK
    for _ in range(100):
        err = receive()
        if err is not None:
            if err:
                sys.exit("%s netfilter queue %d: %s" % (what, queue, os.strerror(-err)))
            return
    sys.exit("%s netfilter queue %d: no answer from the kernel" % (what, queue))


configure("bind", [(1, struct.pack("!BxH", 1, 0))])  # NFQA_CFG_CMD: NFQNL_CFG_CMD_BIND
# NFQA_CFG_PARAMS: copy 128 bytes (the headers); NFQA_CFG_QUEUE_MAXLEN; NFQA_CFG_MASK and
# NFQA_CFG_FLAGS: fail open, so a full queue lets packets through rather than drop them.
configure("configure", [(2, struct.pack("!IB", 128, 2)), (3, struct.pack("!I", 8192)),
                        (4, struct.pack("!I", 1)), (5, struct.pack("!I", 1))])

child = os.fork()
if child:
    with open(pidfile, "w") as f:
        f.write("%d\n" % child)
    os._exit(0)
os.setsid()
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)


class Stop(Exception):
    pass


def stop(*_):
    raise Stop()


signal.signal(signal.SIGTERM, stop)
end = time.monotonic() + life
try:
    while time.monotonic() < end:
        now = time.monotonic()
        while held and held[0][0] <= now:
            accept(held.popleft()[1])
        wait = min(held[0][0] if held else end, end) - now
        if select.select([sock], [], [], max(wait, 0))[0]:
            try:
                receive()
            except OSError as e:
                if e.errno != errno.ENOBUFS:  # overrun: the kernel dropped messages; go on
                    raise
except Stop:
    pass
finally:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for _, pid in held:  # nothing waits longer than asked, nothing is dropped
        accept(pid)
    try:
        os.unlink(pidfile)
    except OSError:
        pass
